"""Where the demo's timeline sits on the calendar: its data ends at the hour ``ml-assets demo``
ran, so schedules, sensors and freshness continue from where the demo stopped.

The generator stays seeded: the timeline is ``days`` whole UTC days, the last one the day the
demo first ran, so the same seed, days and scale give the same bytes at any hour of a day and
the same data shifted by whole days on another (only how many of today's hourly files have
landed differs). The placement is recorded
once in ``<data_dir>/demo.json``; every entry point loads the demo spec with the recorded start
(``ml_assets.specs.loading``), because the spec's start bounds partitions and the feature
look-back: a start that moved with the clock would change every partition key and break
reproducing a model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.lake import day_floor, hour_floor
from ml_assets.lib.core.paths import DataPaths, atomic_write_bytes
from ml_assets.scenarios.synthetic import SyntheticConfig

RECORD = "demo.json"
# Bounds of a record that can be real (a damaged one is refused, never overflows a date).
EARLIEST, LATEST = datetime(2020, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
MAX_DAYS = 3_660


@dataclass(frozen=True)
class DemoPlacement:
    """The demo's generated timeline and how much of it has happened.

    Attributes
    ----------
    cfg : SyntheticConfig
        ``days`` days from ``start`` (a UTC midnight), the last one the day the demo first
        ran.
    landed_until : datetime
        UTC hour, exclusive: files whose period ends by then have landed (hourly events before
        it, daily labels of the days before it); never after ``cfg.end``.
    """

    cfg: SyntheticConfig
    landed_until: datetime


def place(now: datetime, days: int, scale: float, seed: int) -> SyntheticConfig:
    """The timeline of a first ``ml-assets demo`` run at ``now``: ``days`` UTC days, the last
    one ``now``'s.

    Raises
    ------
    ValueError
        As :class:`SyntheticConfig` (``days < 1``, scale out of range) or for a naive ``now``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    start = day_floor(now.astimezone(UTC)) - timedelta(days=days - 1)
    return SyntheticConfig(seed=seed, start=start, days=days, scale=scale)


def landed_until(cfg: SyntheticConfig, now: datetime) -> datetime:
    """The end of what has happened of ``cfg``'s timeline at ``now``: the current UTC hour's
    start, or ``cfg.end`` once the timeline is over."""
    return min(hour_floor(now.astimezone(UTC)), cfg.end)


def record(root: Path, cfg: SyntheticConfig) -> None:
    """Write ``cfg``'s placement to ``<root>/demo.json``, whole, and only where none exists.

    Raises
    ------
    FileExistsError
        When another run recorded one first (two first runs racing).
    """
    body = {"start": cfg.start.isoformat(), "days": cfg.days, "scale": cfg.scale,
            "seed": cfg.seed}
    target = Path(root) / RECORD
    partial = target.with_name(f".{RECORD}.{os.getpid()}")
    atomic_write_bytes(partial, json.dumps(body, indent=1).encode())
    try:
        os.link(partial, target)  # fails when the record exists: never replaced
    finally:
        partial.unlink()


def recorded(root: Path) -> SyntheticConfig | None:
    """The placement ``<root>/demo.json`` records, or None when there is none.

    Raises
    ------
    SpecError
        Naming the file and the key when it is not a JSON object, a key is missing or
        mistyped, the start is not a UTC midnight between 2020 and 2100, or days, scale or
        seed are out of range.
    """
    path = Path(root) / RECORD
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise SpecError(f"{path}: not a JSON object")
    for key, kinds, what in (("start", str, "string"), ("days", int, "whole number"),
                             ("scale", (int, float), "number"), ("seed", int, "whole number")):
        if key not in body:
            raise SpecError(f"{path}: missing key {key!r}")
        if isinstance(body[key], bool) or not isinstance(body[key], kinds):
            raise SpecError(f"{path}: {key} {body[key]!r} is not a {what}")
    try:
        start = datetime.fromisoformat(body["start"])
    except ValueError as exc:
        raise SpecError(f"{path}: start {body['start']!r} is not an ISO-8601 time") from exc
    if start.tzinfo is None or start.utcoffset() or start != day_floor(start):
        raise SpecError(f"{path}: start {body['start']!r} is not a UTC midnight")
    if not EARLIEST <= start < LATEST:
        raise SpecError(f"{path}: start {body['start']} is not between {EARLIEST.date()} and "
                        f"{LATEST.date()}")
    if not 1 <= body["days"] <= MAX_DAYS:
        raise SpecError(f"{path}: days {body['days']} is not between 1 and {MAX_DAYS}")
    try:
        return SyntheticConfig(seed=body["seed"], start=start, days=body["days"],
                               scale=float(body["scale"]))
    except ValueError as exc:
        raise SpecError(f"{path}: {exc}") from exc


def placement(paths: DataPaths, now: datetime, days: int, scale: float,
              seed: int) -> DemoPlacement:
    """The demo's timeline for a run at ``now``: the recorded one when the data directory has
    one (a rerun continues it, landing the hours that have passed), else a new one, recorded.

    Raises
    ------
    SpecError
        When the record is damaged (:func:`recorded`); records other days, scale or seed than
        asked for (those would rewrite landed files); is missing while ``landing/`` already
        holds files (an older demo's or another writer's, on another timeline), or while
        another run writes it; or when less than a day of the timeline has happened.
    ValueError
        As :func:`place`.
    """
    cfg = recorded(paths.root)
    wanted = place(now, days, scale, seed)
    if cfg is None:
        if any(p.is_file() for p in paths.landing.rglob("*")):
            raise SpecError(f"{paths.landing} already holds files but {paths.root / RECORD} "
                            "does not say which demo wrote them: use a fresh --data-dir")
        if landed_until(wanted, now) - wanted.start < timedelta(days=1):
            raise SpecError(f"--days {days} at {now:%H:%M} UTC leaves less than a day of data: "
                            "the demo needs whole days (60 of warm-up by default)")
        paths.root.mkdir(parents=True, exist_ok=True)
        try:
            record(paths.root, wanted)
        except FileExistsError:
            raise SpecError(f"{paths.root / RECORD} was written by another run starting at "
                            "the same time: rerun") from None
        cfg = wanted
    elif (cfg.days, cfg.scale, cfg.seed) != (wanted.days, wanted.scale, wanted.seed):
        raise SpecError(
            f"{paths.root / RECORD}: this data directory holds the demo generated with "
            f"--days {cfg.days} --scale {cfg.scale} --seed {cfg.seed}; rerun with those, "
            "or use a fresh --data-dir")
    return DemoPlacement(cfg, landed_until(cfg, now))
