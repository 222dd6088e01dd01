"""Success-criteria drills that need Dagster: the "rerun training from 6 weeks ago" scenario and
the incident-timeline replay. Each runs in its own data directory and returns plain dicts."""

import time
from datetime import datetime, timedelta

from ml_assets.defs.partitions import day_key, event_range_tags, range_tags
from ml_assets.defs.training.definitions import TRAINING_ASSETS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.landing import label_feeds
from ml_assets.lib.release.rollback import promote
from ml_assets.lib.training.reproduce import reproduce
from ml_assets.scenarios.runner import dagster_instance, materialize, training_config
from ml_assets.scenarios.synthetic import SyntheticConfig, write_landing


def champion_as_of(registry: Registry, spec: DatasetSpec, at: datetime) -> str | None:
    """The version serving at simulated time ``at`` under nightly retrain-and-promote: the
    newest model whose label cutoff is not after ``at``."""
    models = [m for m in registry.list_models(spec.model_name)
              if datetime.fromisoformat(m["label_cutoff"]) <= at]
    return max(models, key=lambda m: m["label_cutoff"])["version"] if models else None


def nightly_retraining(ws: Workspace, defs, start: datetime, end: datetime, first_model_day: int,
                       every_days: int = 1, log=print) -> list[dict]:
    """Ingest and featurize [start, end) in ranges, then walk the nights from
    ``first_model_day``: train as of that midnight, promote the new model (a nightly deploy)
    and score the days until the next night with it. Returns one row per night."""
    spec, paths = ws.spec, ws.paths
    instance = dagster_instance(paths)
    last_day = end - timedelta(days=1)
    for name, selection, tags in [
        ("ingest events", ["raw_events"], event_range_tags(spec, start, end)),
        ("ingest labels", label_feeds(spec), range_tags(day_key(start), day_key(last_day))),
        ("build features", ["event_features"], event_range_tags(spec, start, end)),
    ]:
        log(f"{name}: {materialize(defs, instance, selection, tags):.1f}s")
    registry, nights = ws.registry, []
    night = start + timedelta(days=first_model_day)
    while night < end:
        t0 = time.perf_counter()
        materialize(defs, instance, list(TRAINING_ASSETS), None, training_config(night, spec))
        aliases = registry.aliases(spec.model_name)
        if aliases["challenger"]:
            promote(registry, paths, spec, aliases["challenger"], actor="demo",
                    reason=f"nightly retraining {night:%Y-%m-%d}")
        champion = registry.aliases(spec.model_name)["champion"]
        until = min(night + timedelta(days=every_days), end)
        # Monitoring-style checks on the scores (parity, drift) are findings here, not stops;
        # a blocking contract still fails the step.
        materialize(defs, instance, ["batch_scores"],
                    event_range_tags(spec, night, until),
                    fail_on_checks=False)
        nights.append({"night": day_key(night), "champion": champion,
                       "seconds": round(time.perf_counter() - t0, 2)})
        log(f"night {day_key(night)}: champion {champion} ({nights[-1]['seconds']:.1f}s)")
        night = until
    return nights


def six_weeks_ago(ws: Workspace, cfg: SyntheticConfig, defs, first_model_day: int,
                  every_days: int = 1, weeks_back: int = 6, log=print) -> dict:
    """Run ``cfg.days`` of data with nightly retraining, then reproduce from raw the model that
    was champion ``weeks_back`` weeks before the end - after later data, labels and models.

    Parameters
    ----------
    ws : Workspace
        The world's data directory and dataset spec.
    cfg : SyntheticConfig
        The generated data (``cfg.days`` days from ``cfg.start``).
    defs : dagster.Definitions
        ``build_definitions(ws.spec, ws.paths.root)``.
    first_model_day : int
        Day index of the first nightly training.
    every_days : int, default 1
        Days between retrains.
    weeks_back : int, default 6
        How long before the end the reproduced model was champion.
    log : callable, default print
        Receives progress lines.

    Returns
    -------
    dict
        The reproduction result (``ReproduceResult.as_dict()``) with the version, the day it was
        champion, its label cutoff, the number of later models and nights, and seconds.

    Raises
    ------
    RuntimeError
        When no model was champion ``weeks_back`` weeks before the end.
    StepFailed
        When a pipeline run fails.
    """
    spec, paths = ws.spec, ws.paths
    t0 = time.perf_counter()
    write_landing(cfg, paths)
    nights = nightly_retraining(ws, defs, cfg.start, cfg.end, first_model_day, every_days, log)
    registry = ws.registry
    at = cfg.end - timedelta(weeks=weeks_back)
    version = champion_as_of(registry, spec, at)
    if version is None:
        raise RuntimeError(f"no model was champion at {at:%Y-%m-%d}; start retraining earlier")
    result = reproduce(ws, version)
    card = registry.get_model(version)
    later = [m["version"] for m in registry.list_models(spec.model_name)
             if m["label_cutoff"] > card["label_cutoff"]]
    log(f"reproduced {version} (champion on {at:%Y-%m-%d}): identical={result.identical} "
        f"in {result.seconds:.1f}s")
    return {"version": version, "champion_on": day_key(at),
            "label_cutoff": card["label_cutoff"], "later_models": len(later),
            "current_champion": registry.aliases(spec.model_name)["champion"],
            "nights": len(nights), "pipeline_seconds": round(time.perf_counter() - t0, 1),
            **result.as_dict()}
