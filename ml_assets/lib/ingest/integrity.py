"""Landing data is append-only: the first checksum seen for a landing file is kept forever.

Ingest records the SHA-256 of every landing file it reads in the control plane's ledger
(``Registry.record_landing_checksums``, guarded against UPDATE and DELETE). A file whose bytes
later differ from the ledger - or from the generator's ``landing/_manifest.json`` when the
ledger never saw it - was rewritten, and every consumer that cares (reproduce, status) can say
which file and since when.

A corrected re-delivery is not a silent rewrite once a person accepts it (``accept``, the
``ml-assets landing accept`` command): the acceptance (who, why, old and new checksum) is
appended and audited, and from then on the accepted checksum is the one expected.

The ledger also knows which files no ingest has read: a landing file covering partitions that
are already in the lake but absent from the ledger landed after its partitions were ingested
(under ``later_file`` an hour without a file is ingested as empty once a later file exists;
its file arriving afterwards is a late delivery). ``late_files`` names them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ml_assets.lib.core.artifacts import sha256_file
from ml_assets.lib.core.catalog import BATCH_SCORES, EVENT_FEATURES, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import day_floor
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry, RegistryError
from ml_assets.lib.features.definitions import feature_warm_up
from ml_assets.lib.ingest.landing import feed_layouts
from ml_assets.lib.ingest.landing_layout import Layout

MANIFEST = "_manifest.json"


@dataclass(frozen=True)
class FileProblem:
    """One landing file whose bytes do not match the checksum it should have."""

    path: str  # relative to the data directory
    problem: str  # "rewritten" | "missing" | "unrecorded"
    expected_sha256: str | None
    actual_sha256: str | None
    source: str  # where the expected checksum came from: "ledger" | "acceptance" | "manifest" | "-"
    recorded_at: str | None = None

    def as_dict(self) -> dict:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    def describe(self) -> str:
        """One line for an operator; a rewritten file names the ``landing accept`` command."""
        if self.problem == "rewritten":
            return (f"{self.path} was rewritten after it landed: sha256 {self.actual_sha256[:12]}"
                    f"... != {self.expected_sha256[:12]}... recorded in the {self.source}"
                    + (f" at {self.recorded_at}" if self.recorded_at else "")
                    + f" (a corrected re-delivery? `ml-assets landing accept {self.path} "
                      "--reason ...`)")
        if self.problem == "missing":
            return f"{self.path} is missing (recorded in the {self.source})"
        return f"{self.path} has no recorded checksum (neither ledger nor manifest)"


def _source(row: dict) -> str:
    return "acceptance" if row.get("accepted_by") else "ledger"


def manifest_checksums(paths: DataPaths) -> dict[str, str]:
    """Checksums the generator (or a delivery process) wrote next to the landing files.

    Parameters
    ----------
    paths : DataPaths
        The data directory; the manifest is ``landing/_manifest.json``.

    Returns
    -------
    dict
        ``{path relative to the data directory: sha256 hex}``; empty without a manifest.
    """
    path = paths.landing / MANIFEST
    return json.loads(path.read_bytes()).get("files", {}) if path.exists() else {}


def record(paths: DataPaths, registry: Registry, files: list[Path],
           actor: str) -> list[FileProblem]:
    """Record first-seen checksums of existing landing files in the ledger.

    Parameters
    ----------
    paths : DataPaths
        The data directory the files are under (ledger paths are relative to it).
    registry : Registry
        The control plane holding the ledger.
    files : list of pathlib.Path
        Landing files just ingested; missing ones are skipped.
    actor : str
        Who ingested them (``recorded_by``).

    Returns
    -------
    list of FileProblem
        The files rewritten since they were first recorded (their recorded checksum is kept).
    """
    rels = {str(Path(f).resolve().relative_to(paths.root.resolve())): Path(f)
            for f in files if Path(f).exists()}
    digests = {rel: (sha256_file(f), f.stat().st_size) for rel, f in rels.items()}
    known = registry.landing_checksums(list(rels))
    new = [(rel, sha, size) for rel, (sha, size) in digests.items() if rel not in known]
    if new:
        registry.record_landing_checksums(new, actor)
    return [FileProblem(rel, "rewritten", known[rel]["sha256"], sha, _source(known[rel]),
                        known[rel]["recorded_at"])
            for rel, (sha, _) in digests.items()
            if rel in known and known[rel]["sha256"] != sha]


def expected_checksums(paths: DataPaths, registry: Registry,
                       rel_paths: list[str]) -> dict[str, tuple[str, str, str | None]]:
    """The checksum each landing file should have: the ledger's first-seen one, else the
    manifest's.

    Parameters
    ----------
    paths : DataPaths
        The data directory (its ``landing/_manifest.json`` is the fallback source).
    registry : Registry
        The control plane holding the ledger.
    rel_paths : list of str
        Landing files, relative to the data directory.

    Returns
    -------
    dict
        ``{path: (sha256, source, recorded_at)}`` with source ``"ledger"``, ``"acceptance"``
        (a corrected re-delivery accepted since) or ``"manifest"``;
        paths known to neither are left out.
    """
    recorded = registry.landing_checksums(rel_paths)
    manifest = manifest_checksums(paths)
    out = {}
    for rel in rel_paths:
        if rel in recorded:
            out[rel] = (recorded[rel]["sha256"], _source(recorded[rel]),
                        recorded[rel]["recorded_at"])
        elif rel in manifest:
            out[rel] = (manifest[rel], "manifest", None)
    return out


def compare(rel: str, expected: tuple[str, str, str | None] | None,
            actual: str | None) -> FileProblem | None:
    """The problem with one file given its expected and actual checksum (None: no problem).

    Parameters
    ----------
    rel : str
        The file, relative to the data directory.
    expected : (sha256, source, recorded_at) or None
        As in ``expected_checksums``; None when neither ledger nor manifest knows the file.
    actual : str or None
        The file's SHA-256 hex digest now; None when it is missing.

    Returns
    -------
    FileProblem or None
        ``"unrecorded"``, ``"missing"`` or ``"rewritten"``; None if it matches (or is
        neither expected nor present).
    """
    if expected is None:
        return None if actual is None else FileProblem(rel, "unrecorded", None, actual, "-")
    sha, source, at = expected
    if actual is None:
        return FileProblem(rel, "missing", sha, None, source, at)
    return None if actual == sha else FileProblem(rel, "rewritten", sha, actual, source, at)


def verify(paths: DataPaths, registry: Registry, rel_paths: list[str]) -> list[FileProblem]:
    """Compare landing files with the ledger (first) or the manifest.

    Parameters
    ----------
    paths : DataPaths
        The data directory the files are under.
    registry : Registry
        The control plane holding the ledger.
    rel_paths : list of str
        Landing files, relative to the data directory.

    Returns
    -------
    list of FileProblem
        Every deviation (rewritten, missing, unrecorded), in ``rel_paths`` order.
    """
    expected = expected_checksums(paths, registry, rel_paths)
    problems = []
    for rel in rel_paths:
        path = paths.root / rel
        problem = compare(rel, expected.get(rel), sha256_file(path) if path.exists() else None)
        if problem:
            problems.append(problem)
    return problems


def accept(paths: DataPaths, registry: Registry, file: str, actor: str, reason: str) -> dict:
    """Accept the current bytes of a re-delivered landing file as its expected version.

    Parameters
    ----------
    paths : DataPaths
        The data directory.
    registry : Registry
        The control plane holding the ledger (the acceptance is appended and audited there).
    file : str
        The landing file: relative to the data directory (``landing/events/<hour>.parquet``)
        or absolute; it must resolve inside ``landing/``.
    actor, reason : str
        Who accepts it and why (both required, both audited).

    Returns
    -------
    dict
        The acceptance: path, old and new checksum, size, when, who, why.

    Raises
    ------
    RegistryError
        The path leaves ``landing/``, the file does not exist, was never ingested, or already
        has the expected checksum; or actor/reason is blank.
    """
    given = Path(file)
    path = given if given.is_absolute() else paths.root / given
    landing = paths.landing.resolve()
    if not path.resolve().is_relative_to(landing) or path.resolve() == landing:
        raise RegistryError(f"{file!r} refused: landing files are inside {landing}")
    if not path.is_file():
        raise RegistryError(f"{file!r}: no such landing file")
    rel = str(path.resolve().relative_to(paths.root.resolve()))
    return registry.accept_landing_file(rel, sha256_file(path), path.stat().st_size, actor, reason)


@dataclass(frozen=True)
class LateFile:
    """A landing file no ingest has read although partitions it covers are in the lake."""

    path: str  # relative to the data directory
    asset: str  # the lake table its partitions belong to
    lo: datetime  # the file's period [lo, hi), UTC
    hi: datetime
    ingested: tuple[str, ...]  # the partitions (stems) it covers that are already ingested
    window: timedelta  # the spec's longest feature window: later hours read these rows too
    built_until: datetime | None = None  # end of the newest event_features partition built
    scored: bool = False  # batch_scores exist from its period on: the reruns rescore too

    def as_dict(self) -> dict:
        """The fields as a JSON-ready dict (times ISO-8601, the window in hours)."""
        return {**asdict(self), "lo": self.lo.isoformat(), "hi": self.hi.isoformat(),
                "built_until": self.built_until.isoformat() if self.built_until else None,
                "ingested": list(self.ingested), "window": self.window / timedelta(hours=1),
                "description": self.describe()}

    def describe(self) -> str:
        """One line for an operator: the file, what was ingested without it, the commands."""
        first, to = day_floor(self.lo), day_floor(self.hi - timedelta(microseconds=1)) + \
            timedelta(days=1)
        rebuild = day_floor(to + self.window - timedelta(microseconds=1)) + timedelta(days=1)
        # only features already built need rebuilding (a range past them would be refused)
        rebuild = min(rebuild, day_floor(self.built_until - timedelta(microseconds=1))
                      + timedelta(days=1)) if self.built_until is not None else to
        steps = "features score" if self.scored else "features"
        more = f" (and {len(self.ingested) - 1} more)" if len(self.ingested) > 1 else ""
        return (f"{self.path} landed after {self.asset}/{self.ingested[0]}{more} was ingested "
                f"without it (a late delivery): reingest it with `ml-assets run ingest {steps} "
                f"--from {first:%Y-%m-%d} --to {to:%Y-%m-%d}`"
                + (f"; the features of the following partitions within the longest feature "
                   f"window ({_span(self.window)}) read it too: `ml-assets run {steps} --from "
                   f"{to:%Y-%m-%d} --to {rebuild:%Y-%m-%d}`"
                   if self.window and rebuild > to else ""))


def _span(window: timedelta) -> str:
    """``14 days`` or ``36 hours``: a window in the unit an operator thinks in."""
    if window % timedelta(days=1) == timedelta(0):
        return f"{window.days} days"
    return f"{window / timedelta(hours=1):g} hours"


def late_files(paths: DataPaths, registry: Registry, spec: DatasetSpec,
               layouts: list[tuple[str, Layout]] | None = None) -> list[LateFile]:
    """Landing files not in the ledger that landed after partitions they cover were written.

    Every ingest run records the files it read (the append-only checks), so such a file
    arrived after its partitions were written - as empty (``later_file``) or from other
    files - and nothing will read it unless its partitions are rerun. "Landed" is the file's
    inode change time (a copy keeping its producer's mtime still counts from its arrival);
    comparing it with the partition's write keeps lakes written without the ledger (fixtures,
    benchmarks) from reporting every file. One listing per feed directory and lake table and
    one ledger query; only unrecorded files over ingested partitions are stat'ed.

    Parameters
    ----------
    paths : DataPaths
        The data directory.
    registry : Registry
        The control plane holding the ledger.
    spec : DatasetSpec
        Its feeds, completeness rule and feature windows.
    layouts : list of (str, Layout), optional
        ``(lake table, its feed's layout)`` already listed; default: every feed of ``spec``
        (``landing.feed_layouts``).

    Returns
    -------
    list of LateFile
        By feed, then by period start.
    """
    layouts = feed_layouts(paths, spec) if layouts is None else layouts
    recorded = registry.landing_checksums()
    catalog, root = Catalog(paths.lake, spec.partition_grain), paths.root.resolve()
    window = feature_warm_up(spec.features, timedelta(0))
    features = catalog.table(EVENT_FEATURES)
    built = features.latest()
    built_until = built + features.step if built is not None else None
    scored = catalog.table(BATCH_SCORES).latest()
    out = []
    for asset, layout in layouts:
        table = catalog.table(asset)
        ingested = {p.stem for p in table.files()}
        for (grain, lo), period in sorted(layout.files.items(), key=lambda kv: kv[0][1]):
            starts = [s for s in (lo + i * table.step for i in range(max(1, grain // table.step)))
                      if table.stem(s) in ingested]
            # each part of a period is a delivery of its own: one that landed after the
            # period's partitions were ingested is late, whatever the other parts did
            for path in period if starts else ():
                rel = str(path.resolve().relative_to(root))
                if rel in recorded:
                    continue
                info = path.stat()
                landed = max(info.st_mtime_ns, info.st_ctime_ns)
                stems = [table.stem(s) for s in starts
                         if table.path(s).stat().st_mtime_ns < landed]
                if stems:
                    out.append(LateFile(rel, asset, lo, lo + grain, tuple(stems), window,
                                        built_until, scored is not None and scored >= lo))
    return out
