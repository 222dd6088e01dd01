"""Which landing files cover a run's partitions, and when a period with no file is empty.

A feed directory (``landing/events``, ``landing/labels``, ``landing/reports``) holds files of
any period: hourly ``YYYY-MM-DDTHH.parquet`` or daily ``YYYY-MM-DD.parquet``. A daily events
file covers its 24 hourly partitions; a daily partition may instead be covered by hourly files
(the most common export), read together, each hour without a file being complete and empty
by the rule below (else the partition is not landed yet, naming that hour). A period may
also land in parts: a directory named like the period (``2026-01-05/``, as Spark and Hive
writers produce, or a second export ``ml-assets land`` adds) holding ``*.parquet`` part files
at any depth; names starting with ``.`` or ``_`` (temp files, ``_SUCCESS``, ``_temporary/``)
are ignored. The period file and every part are read together. Files of two periods of
different length covering the same hour (a daily and an hourly one) are refused, naming both.

Only periods that had data need a file. A period with no file (a partition, or an hour of a
daily partition landed hourly) is *complete and empty* by the dataset's
``landing_completeness`` rule, and otherwise *not landed yet* (the run is refused):

``later_file`` (default)
    once a file of a later period exists in the feed directory (files land in time order; a
    later hour of the same day counts).
    A file whose period starts after now (plus ``FUTURE_TOLERANCE``: a mistyped date such as
    ``2062-03-01.parquet``) completes nothing and is reported (``Layout.notes``); ``_SUCCESS``
    markers are ignored.
``marker``
    once a marker says so; a data file alone completes no other period. Markers:

    - ``_SUCCESS`` in the feed directory, holding one ISO-8601 time with its zone, e.g.
      ``2026-03-06T00:00:00Z``: complete through that time (every period ending at or before
      it is complete). An empty one (Spark's 0-byte marker) is refused; a time after now is
      clamped to now and reported: a marker never completes the future;
    - ``YYYY-MM-DD._SUCCESS`` or ``YYYY-MM-DDTHH._SUCCESS``: that one day or hour (and every
      partition or hour inside it) is complete.

A historical dataset (spec ``end``) follows the same rules: a period is empty only once a later
file (or a marker) says so, so an export landed in pieces is never taken for the whole. Its
last periods, after its last data file, have no later file ever: ``_SUCCESS`` holding a time
(the dataset's end, typically) completes them under either rule; an empty ``_SUCCESS`` still
completes nothing.

The directory is listed once per ``Layout`` (and each period directory once); nothing here
reads a data file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

from ml_assets.lib.core.lake import (
    DAY,
    DAY_FILE_FORMAT,
    HOUR,
    HOUR_FILE_FORMAT,
    period_floor,
    periods_in,
)
from ml_assets.lib.ingest.contracts import ContractError

# file periods a feed may land, finest first, with their name formats
GRAINS = ((HOUR, HOUR_FILE_FORMAT), (DAY, DAY_FILE_FORMAT))
MARKER = "_SUCCESS"
COMPLETENESS = ("later_file", "marker")
# producers' clocks drift: a period starting this little after now is not "in the future"
FUTURE_TOLERANCE = timedelta(hours=1)
_PERIOD = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?:T(?P<hour>\d{2}))?(?P<suffix>\..+)?$")


def _name(ts: datetime, grain: timedelta) -> str:
    return ts.strftime(dict(GRAINS)[grain])


class NotLanded(ContractError):
    """A partition, or an hour of a daily partition landed hourly, has no file and is not
    complete yet by the dataset's rule."""


@dataclass(frozen=True)
class Coverage:
    """What a run over some partitions reads.

    Attributes
    ----------
    files : list of (pathlib.Path, datetime, datetime)
        Each covering file once, with its window ``[lo, hi)`` (UTC), by ``lo``.
    empty : list of datetime
        Partition starts with no file that are complete by the rule: empty partitions.
    """

    files: list[tuple[Path, datetime, datetime]]
    empty: list[datetime]


@dataclass(frozen=True)
class Layout:
    """One listing of a feed directory: its data files, markers and stray formats.

    Build it with :meth:`scan`; ``partition`` is the feed's partition length (1 hour for
    events, 1 day for label feeds).
    """

    folder: Path
    partition: timedelta
    completeness: str
    # (grain, period start) -> its files: the period file first, then its parts by path
    files: dict[tuple[timedelta, datetime], tuple[Path, ...]]
    others: dict[str, list[str]]  # period name -> non-Parquet files of that name (CSV...)
    marked: frozenset[tuple[timedelta, datetime]]  # per-period ``._SUCCESS`` markers
    through: datetime | None  # ``_SUCCESS``: complete through this time (at most ``now``)
    end: datetime | None = None  # a historical dataset's end: ``_SUCCESS`` may close its tail
    now: datetime | None = None  # the scan's clock: files starting after it complete nothing
    notes: tuple[str, ...] = ()  # one line per future-dated file or clamped ``_SUCCESS``

    @classmethod
    def scan(cls, folder: Path, partition: timedelta, completeness: str,
             end: datetime | None = None, now: datetime | None = None) -> Layout:
        """List ``folder`` once.

        Parameters
        ----------
        folder : pathlib.Path
            The feed directory (may not exist yet: nothing has landed).
        partition : timedelta
            The feed's partition length, ``HOUR`` or ``DAY``.
        completeness : {"later_file", "marker"}
            ``DatasetSpec.landing_completeness``.
        end : datetime, optional
            ``DatasetSpec.end_utc``: a historical dataset's end (a ``_SUCCESS`` holding a time
            completes its periods through that time under either rule); None for a live
            dataset.
        now : datetime, optional
            The clock (UTC; default: the wall clock). A data file starting after
            ``now + FUTURE_TOLERANCE`` completes no earlier period; a later ``_SUCCESS`` time
            is clamped to ``now``. Both are reported in ``notes``.

        Raises
        ------
        ContractError
            Under ``marker``: ``_SUCCESS`` does not hold one ISO-8601 time with a zone (an
            empty one included).
        """
        if completeness not in COMPLETENESS:
            raise ValueError(f"landing_completeness {completeness!r} is not one of {COMPLETENESS}")
        now = now or datetime.now(UTC)
        found, others, marked, through, notes = {}, {}, set(), None, []
        for entry in (folder.iterdir() if folder.is_dir() else ()):
            if entry.name == MARKER:
                # later_file ignores it (Spark writes it empty), except a historical dataset's
                # holding a time: the only way to say its file-less last periods are complete
                if completeness == "marker" or (end is not None and entry.stat().st_size):
                    through = _read_marker(entry)
                continue
            m = _PERIOD.match(entry.name)
            if not m:
                continue  # temp files, manifests, anything not named like a period
            grain = HOUR if m["hour"] else DAY
            stem = entry.name[:len(entry.name) - len(m["suffix"] or "")]
            try:  # from the matched digits: strptime cost 30 us a name, a year's 8,760 per scan
                start = datetime(int(m["y"]), int(m["m"]), int(m["d"]), int(m["hour"] or 0),
                                 tzinfo=UTC)
            except ValueError:
                continue  # 2026-13-45: not a period name
            if m["suffix"] == "." + MARKER:
                marked.add((grain, start))
            elif m["suffix"] == ".parquet":
                found.setdefault((grain, start), []).insert(0, entry)
            elif m["suffix"] is None and entry.is_dir():
                parts, stray = _parts(entry)
                if parts:
                    found.setdefault((grain, start), []).extend(parts)
                if stray:
                    others.setdefault(stem, []).extend(stray)
            else:
                others.setdefault(stem, []).append(entry.name)
        files = {k: tuple(v) for k, v in found.items()}
        if through is not None and through > now:
            notes.append(f"{folder.name}/{MARKER} says complete through {through.isoformat()}, "
                         f"after now ({now.isoformat(timespec='seconds')}): taken as now")
            through = now
        notes += [f"{folder.name}/{p.name} starts after now ({now.isoformat(timespec='seconds')})"
                  ": a mistyped date? It completes no earlier period; remove or rename it"
                  for (_, lo), (p, *_) in sorted(files.items()) if lo > now + FUTURE_TOLERANCE]
        return cls(folder, partition, completeness, files, others, frozenset(marked), through,
                   end, now, tuple(notes))

    def _completes(self, lo: datetime, end: datetime) -> bool:
        """Whether a data file starting at ``lo`` completes the periods ending by ``end``
        (``later_file``): it is later, and not dated in the future."""
        return end <= lo <= self.now + FUTURE_TOLERANCE

    @cached_property
    def _latest(self) -> datetime | None:
        """The start of the latest data file not dated in the future: ``later_file``
        completes every period ending by it (one pass over the listing per Layout)."""
        return max((lo for _, lo in self.files if lo <= self.now + FUTURE_TOLERANCE),
                   default=None)

    def _names(self, start: datetime, grain: timedelta) -> list[str]:
        """The file names that would cover the period ``grain`` starting at ``start``: its own
        and those of the longer periods holding it, finest first."""
        return [f"{self.folder.name}/{_name(period_floor(start, g), g)}.parquet"
                for g, _ in GRAINS if g >= grain]

    def candidates(self, start: datetime) -> list[str]:
        """The file names that could cover the partition starting at ``start``: the partition's
        and longer periods', finest first, then its hours' (a daily partition landed hourly)."""
        return self._names(start, self.partition) + [
            f"{self.folder.name}/{_name(h, HOUR)}.parquet"
            for h in periods_in(start, start + self.partition, HOUR) if self.partition > HOUR]

    def shown(self, path: Path) -> str:
        """``path`` as errors name it: from the feed directory (``events/2026-07-01.parquet``)."""
        return str(path.relative_to(self.folder.parent))

    def covering(self, start: datetime) -> list[tuple[Path, datetime, datetime]]:
        """The files covering the partition starting at ``start`` with their window: one
        period's file and parts (the period file first), or the files and parts of the
        shorter periods inside it (a daily partition landed hourly: each hour without a file
        must be complete by the rule), by period; or none.

        Raises
        ------
        NotLanded
            Shorter periods cover part of it and one of the others (the first is named, with
            its file name and the rule) has no file and is not complete yet.
        ContractError
            Periods of two lengths cover one hour; or no Parquet file covers it (or one of its
            hours) but a file of another format has its name (e.g. a CSV export).
        """
        end = start + self.partition
        found = [(g, lo) for g, _ in GRAINS for lo in periods_in(start, end, g)
                 if (g, lo) in self.files]
        whole = bool(found) and found[-1][0] >= self.partition  # GRAINS are finest first
        if whole and len(found) > 1:  # the finest and the longest overlap
            names = " and ".join(self.shown(self.files[k][0]) for k in (found[0], found[-1]))
            raise ContractError(f"{_name(start, self.partition)}: covered by {names}; a period "
                                "must land in files of one period - remove one of them")
        # the hours no file covers: every one when nothing does, none under a whole period
        gaps = [] if whole else [h for h in periods_in(start, end, HOUR)
                                 if (HOUR, h) not in self.files]
        stems = ([] if found else [_name(period_floor(start, g), g) for g, _ in GRAINS
                                   if g >= self.partition]) + [
            _name(h, HOUR) for h in gaps if self.partition > HOUR]
        stray = [n for stem in stems for n in self.others.get(stem, [])]
        if stray:  # e.g. a CSV export: refuse it by name rather than report "no file"
            missing = f"{self.folder.name}/{stems[0]}.parquet"
            raise ContractError(f"{missing}: not found, but {stray} is there; landing files "
                                "must be Parquet (CSV and other formats are refused: they lose "
                                "types and time zones). Convert it and re-deliver.")
        waits = next((h for h in gaps if not self._empty(h, h + HOUR)), None) if found else None
        if waits is not None:
            raise NotLanded(self.waiting(waits, HOUR))
        return [(p, lo, lo + g) for g, lo in found for p in self.files[(g, lo)]]

    def _empty(self, lo: datetime, hi: datetime) -> bool:
        """Whether the period ``[lo, hi)`` (a partition or an hour), if it has no file, is
        empty by the rule."""
        if self.through is not None and hi <= self.through:
            return True
        if self.completeness == "later_file":
            return self._latest is not None and self._latest >= hi
        return any((g, period_floor(lo, g)) in self.marked for g, _ in GRAINS if g >= hi - lo)

    def complete(self, start: datetime) -> bool:
        """Whether the partition starting at ``start``, if it has no file, is empty by the rule."""
        return self._empty(start, start + self.partition)

    def waiting(self, start: datetime, grain: timedelta | None = None) -> str:
        """Why the period starting at ``start`` (the partition, or ``grain``: an hour of a
        daily partition landed hourly) cannot be read yet (one line)."""
        grain = grain or self.partition
        # an hour of a day landed hourly: only its own file (a daily one would cover it twice)
        names = " or ".join(self._names(start, grain)[:1 if grain < self.partition else None])
        ended = (f", or (if the data stops before the dataset's end) for "
                 f"{self.folder.name}/{MARKER} holding {self.end.isoformat()}"
                 if self.end is not None else "")
        rule = ("waits for a file of a later period" + ended
                if self.completeness == "later_file" else
                f"waits for {self.folder.name}/{MARKER} through "
                f"{(start + grain).isoformat()} or a marker "
                f"{self.folder.name}/<period>.{MARKER}")
        partition = _name(period_floor(start, self.partition), self.partition)
        within = (f" (partition {partition} landed "
                  "hourly)" if grain < self.partition else "")
        return (f"{_name(start, grain)}{within}: no landing file ({names}) and not complete "
                f"yet: completeness '{self.completeness}' {rule}"
                + "".join(f"; {n}" for n in self.notes))

    def cover(self, starts: list[datetime]) -> Coverage:
        """The files covering partitions ``starts`` and the ones that are complete and empty.

        Parameters
        ----------
        starts : list of datetime
            Partition starts (UTC), each aligned to ``partition``.

        Returns
        -------
        Coverage

        Raises
        ------
        ContractError
            A partition (or an hour of a daily partition landed hourly) is not landed yet
            (the first one is named, with the file names that would cover it and the rule),
            or ``covering`` refuses one.
        """
        windows, empty, missing = {}, [], []
        for s in starts:
            try:
                found = self.covering(s)
            except NotLanded as exc:
                missing.append(str(exc))
                continue
            if found:
                windows.update((w[0], w) for w in found)
            elif self.complete(s):
                empty.append(s)
            else:
                missing.append(self.waiting(s))
        if missing:
            more = f" (and {len(missing) - 1} later partition(s))" if len(missing) > 1 else ""
            raise ContractError(missing[0] + more)
        return Coverage(sorted(windows.values(), key=lambda w: w[1]), empty)


    def completing(self, end: datetime) -> list[Path]:
        """The files that make file-less partitions before ``end`` complete: the first data
        file starting at or after ``end`` (``later_file``), or every marker (``marker``). A
        copy of the landing (``training.reproduce``) needs them, though it reads none."""
        if self.completeness == "later_file":
            later = [(lo, p) for (_, lo), (p, *_) in self.files.items()
                     if self._completes(lo, end)]
            return [min(later)[1]] if later else []
        return ([self.folder / MARKER] if self.through else []) + [
            self.folder / f"{_name(lo, g)}.{MARKER}" for g, lo in sorted(self.marked)]

    def found(self, starts: list[datetime],
              ) -> dict[datetime, list[tuple[Path, datetime, datetime]]]:
        """``covering`` of each of ``starts`` (empty: no file); the ones ``covering`` refuses
        are left out (reading them raises)."""
        out = {}
        for s in starts:
            try:
                out[s] = self.covering(s)
            except ContractError:
                continue
        return out

    def ready(self, starts: list[datetime]) -> list[list[datetime]]:
        """The partitions among ``starts`` that can be read now, grouped into runs.

        The partitions of one multi-partition period (a daily events file or directory) form
        one run, so a broken file fails one run; every other partition (its own file, the
        hourly files of a daily partition, or complete and empty) is a run of its own.
        Partitions not landed yet (an hour of a daily partition included), or refused by
        ``covering``, are left out.

        Parameters
        ----------
        starts : list of datetime
            Partition starts (UTC), ascending.

        Returns
        -------
        list of list of datetime
            Each run's partition starts, ascending; runs by their first partition.
        """
        runs: dict[object, list[datetime]] = {}
        for s, windows in self.found(starts).items():
            if windows and windows[0][2] - windows[0][1] > self.partition:
                runs.setdefault(windows[0][0], []).append(s)
            elif windows or self.complete(s):
                runs[s] = [s]
        return sorted(runs.values())


def _parts(folder: Path) -> tuple[list[Path], list[str]]:
    """A period directory's Parquet part files (at any depth, by path) and its other data
    files (``2026-01-05/part-0.csv``: refused by name when nothing covers the period); names
    starting with ``.`` or ``_`` below ``folder`` are temp files and markers, ignored."""
    inside = sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith((".", "_")) for part in p.relative_to(folder).parts))
    return ([p for p in inside if p.suffix == ".parquet"],
            [str(p.relative_to(folder.parent)) for p in inside if p.suffix != ".parquet"])


def _read_marker(path: Path) -> datetime:
    text = path.read_text().strip()
    if not text:
        raise ContractError(f"{path}: is empty; under landing_completeness 'marker' it must hold "
                            "the time the directory is complete through, one ISO-8601 time with "
                            "its zone (e.g. 2026-03-06T00:00:00Z)")
    try:
        through = datetime.fromisoformat(text)
    except ValueError:
        through = None
    if through is None or through.tzinfo is None:
        raise ContractError(f"{path}: holds {text[:40]!r}, not one ISO-8601 time with its zone "
                            "(e.g. 2026-03-06T00:00:00Z: complete through that time)")
    return through.astimezone(UTC)

