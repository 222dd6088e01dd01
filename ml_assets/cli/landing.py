"""Landing-file commands: ``land`` imports CSV/Parquet files as they come into daily landing
files, a day that already landed getting the export's new rows as a part
(``lib/ingest/importing.py``); ``landing accept`` records a corrected re-delivery in the
control plane (who, why, old and new checksum; appended and audited), after which the
append-only check and ``reproduce`` expect the accepted version."""

from ml_assets.cli.output import control_result, emit, refused
from ml_assets.lib.core.workspace import Workspace


def cmd_landing_accept(args, ws: Workspace) -> int:
    """``landing accept FILE --reason``: the file's current bytes become its expected version."""
    from ml_assets.lib.ingest import integrity

    return control_result(args.json, lambda: integrity.accept(
        ws.paths, ws.registry, args.file, args.actor, args.reason))


def _print_land(report: dict) -> None:
    for feed, r in report.items():
        span = f", {r['first_day']} .. {r['last_day']}" if r["first_day"] else ""
        print(f"{feed}: {len(r['files'])} file(s), {r['rows']} row(s){span}: "
              f"{len(r['written'])} day file(s) written, {len(r['unchanged'])} unchanged")
        for day, counts in r["day_rows"].items():  # days that had landed before this export
            if day in r["parts"] or counts["conflicting"]:
                print(f"  {day}: {counts['new']} new, {counts['already_landed']} already landed, "
                      f"{counts['conflicting']} conflicting (same id, other values: written, "
                      "the ingest quarantines them with reasons)"
                      + (f"; part {r['parts'][day]}" if day in r["parts"] else ""))
        skipped = sum(c["already_landed"] for c in r["day_rows"].values())
        if skipped:
            print(f"  {skipped} row(s) already landed with the same values: not written again")
        if r["repeated_ids"]:
            print(f"  {r['repeated_ids']['rows']} row(s) share their id with another row of this "
                  f"export (e.g. {r['repeated_ids']['example']}): the ingest quarantines the "
                  "repeats with their reason")
        for key, label in (("renamed", "renamed"), ("dropped", "dropped columns"),
                           ("ignored_files", "ignored files (not CSV/Parquet, or hidden)"),
                           ("empty_files", "files without rows"),
                           ("repeated_files", "skipped, same content as"),
                           ("multiline_rows", "rows with a quoted field spanning lines (check "
                                              "for an unclosed quote)")):
            if r[key]:
                print(f"  {label}: {r[key]}")
        for column, why in {**r["padded_ids"], **r["as_text"]}.items():
            print(f"  {column}: {why}")


def cmd_land(args, ws: Workspace) -> int:
    """``land --events/--labels/--reports PATH... [--map SRC=DST]``: daily landing files."""
    from ml_assets.lib.ingest.importing import LandingImportError, land, parse_mapping

    sources = {feed: getattr(args, feed) for feed in ("events", "labels", "reports")
               if getattr(args, feed)}
    try:
        if not sources:
            raise LandingImportError("nothing to land: give --events, --labels or --reports")
        if len(args.delimiter) != 1:
            raise LandingImportError(f"--delimiter {args.delimiter!r}: give one character")
        report = land(ws.paths, ws.spec, sources, parse_mapping(args.map), args.delimiter)
    except LandingImportError as exc:
        if args.json:
            emit({"ok": False, "error": str(exc)}, True, print)
            return 1
        return refused(f"ml-assets land: {exc}")
    emit({"ok": True, **report} if args.json else report, args.json, _print_land)
    return 0


def add_parsers(sub, actor: str) -> None:
    """Register ``land`` and ``landing accept`` on the ``ml-assets`` subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The top-level subparsers.
    actor : str
        Default ``--actor`` for the audit log (``$USER``).
    """
    land = sub.add_parser(
        "land", help="import CSV/Parquet files as they come into daily landing files "
                     "(landing/<feed>/YYYY-MM-DD.parquet, UTC days; a day that already landed "
                     "gets the new rows as a part, YYYY-MM-DD/part-*.parquet); reports what it "
                     "dropped")
    for feed in ("events", "labels", "reports"):
        land.add_argument(f"--{feed}", nargs="+", action="extend", default=[], metavar="PATH",
                          help=f"{feed} sources: .csv, .csv.gz or .parquet files, directories "
                               "(recursive; key=value/ folders below it become columns; dot files "
                               "ignored) or globs (an existing path is never a glob)")
    land.add_argument("--map", action="append", default=[], metavar="SRC=DST",
                      help="rename a source column to a spec column (repeatable)")
    land.add_argument("--delimiter", default=",", metavar="CHAR",
                      help="CSV field separator (default ','; never guessed)")
    land.set_defaults(func=cmd_land)
    landing = sub.add_parser("landing", help="landing files: accept a corrected re-delivery "
                                             "(audited; the append-only check turns green)")
    landing.add_argument("action", choices=["accept"],
                         help="accept: the file's current bytes become its expected version")
    landing.add_argument("file", help="the landing file, e.g. landing/events/2026-07-31T00.parquet")
    landing.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    landing.add_argument("--actor", default=actor, help="who (default $USER), for the audit log")
    landing.set_defaults(func=cmd_landing_accept)
