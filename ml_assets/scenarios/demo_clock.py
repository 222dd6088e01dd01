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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.lake import day_floor, hour_floor
from ml_assets.lib.core.paths import DataPaths, atomic_write_bytes
from ml_assets.scenarios.synthetic import SyntheticConfig

RECORD = "demo.json"


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
    """Write ``cfg``'s placement to ``<root>/demo.json`` (atomically)."""
    body = {"start": cfg.start.isoformat(), "days": cfg.days, "scale": cfg.scale,
            "seed": cfg.seed}
    atomic_write_bytes(Path(root) / RECORD, json.dumps(body, indent=1).encode())


def recorded(root: Path) -> SyntheticConfig | None:
    """The placement ``<root>/demo.json`` records, or None when there is none.

    Raises
    ------
    SpecError
        Naming the file and the key when it is not JSON, a key is missing or mistyped, or the
        start is not a UTC midnight.
    """
    path = Path(root) / RECORD
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        start = datetime.fromisoformat(body["start"])
        cfg = SyntheticConfig(seed=int(body["seed"]), start=start, days=int(body["days"]),
                              scale=float(body["scale"]))
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not JSON ({exc})") from exc
    except KeyError as exc:
        raise SpecError(f"{path}: missing key {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{path}: {exc}") from exc
    if start.tzinfo is None or start.utcoffset() or start != day_floor(start):
        raise SpecError(f"{path}: start {body['start']!r} is not a UTC midnight")
    return cfg


def placement(paths: DataPaths, now: datetime, days: int, scale: float,
              seed: int) -> DemoPlacement:
    """The demo's timeline for a run at ``now``: the recorded one when the data directory has
    one (a rerun continues it, landing the hours that have passed), else a new one, recorded.

    Raises
    ------
    SpecError
        When the record is damaged (:func:`recorded`); records other days, scale or seed than
        asked for (those would rewrite landed files); or is missing while ``landing/`` already
        holds files (an older demo's or another writer's, on another timeline).
    ValueError
        As :func:`place`.
    """
    cfg = recorded(paths.root)
    wanted = place(now, days, scale, seed)
    if cfg is None:
        if any(p.is_file() for p in paths.landing.rglob("*")):
            raise SpecError(f"{paths.landing} already holds files but {paths.root / RECORD} "
                            "does not say which demo wrote them: use a fresh --data-dir")
        record(paths.root, wanted)
        cfg = wanted
    elif (cfg.days, cfg.scale, cfg.seed) != (wanted.days, wanted.scale, wanted.seed):
        raise SpecError(
            f"{paths.root / RECORD}: this data directory holds the demo generated with "
            f"--days {cfg.days} --scale {cfg.scale} --seed {cfg.seed}; rerun with those, "
            "or use a fresh --data-dir")
    return DemoPlacement(cfg, landed_until(cfg, now))
