"""Landing-file commands: ``landing accept`` records a corrected re-delivery in the control
plane (who, why, old and new checksum; appended and audited), after which the append-only check
and ``reproduce`` expect the accepted version."""

from ml_assets.cli.output import control_result
from ml_assets.lib.core.workspace import Workspace


def cmd_landing_accept(args, ws: Workspace) -> int:
    """``landing accept FILE --reason``: the file's current bytes become its expected version."""
    from ml_assets.lib.ingest import integrity

    return control_result(args.json, lambda: integrity.accept(
        ws.paths, ws.registry, args.file, args.actor, args.reason))


def add_parsers(sub, actor: str) -> None:
    """Register ``landing accept`` on the ``ml-assets`` subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The top-level subparsers.
    actor : str
        Default ``--actor`` for the audit log (``$USER``).
    """
    landing = sub.add_parser("landing", help="landing files: accept a corrected re-delivery "
                                             "(audited; the append-only check turns green)")
    landing.add_argument("action", choices=["accept"],
                         help="accept: the file's current bytes become its expected version")
    landing.add_argument("file", help="the landing file, e.g. landing/events/2026-07-31T00.parquet")
    landing.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    landing.add_argument("--actor", default=actor, help="who (default $USER), for the audit log")
    landing.set_defaults(func=cmd_landing_accept)
