"""One benchmark task per process: ``python -m ml_assets.bench.worker TASK`` reads its
arguments as JSON on stdin and prints its result (with its own peak RSS) as one JSON line."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

from ml_assets.specs.fraud import FRAUD_SPEC

from .measure import peak_rss_mb
from .world import build_world, world_config, world_dir


def _world(a: dict):
    cfg = world_config(a["size"], a["days"])
    return cfg, world_dir(Path(a["cache"]), cfg)


def task_world(a: dict) -> dict:
    cfg, root = _world(a)
    return build_world(root, cfg, FRAUD_SPEC)


def task_features_ml_assets(a: dict) -> dict:
    from .feature_tasks import ml_assets_side

    cfg, root = _world(a)
    return ml_assets_side(root, cfg, FRAUD_SPEC, Path(a["out"]), a["threads"])


def task_features_pandas(a: dict) -> dict:
    from .feature_tasks import pandas_side

    _, root = _world(a)
    return pandas_side(root, FRAUD_SPEC, Path(a["out"]))


def task_compare(a: dict) -> dict:
    from .feature_tasks import compare_outputs

    return compare_outputs([Path(p) for p in a["ours"]], Path(a["theirs"]), FRAUD_SPEC)


def task_features_spark(a: dict) -> dict:
    from .feature_tasks import spark_side

    cfg, root = _world(a)
    return spark_side(root, cfg, FRAUD_SPEC, a["threads"])


def task_micro(a: dict) -> dict:
    from .micro_features import run_side

    _, root = _world(a)
    return run_side(a["side"], root, Path(a["out"]), a["threads"])


def task_micro_compare(a: dict) -> dict:
    from .micro_features import compare_sides

    return compare_sides(a["outputs"])


def task_ingest(a: dict) -> dict:
    from .ingest_task import ingest_task

    cfg, root = _world(a)
    return ingest_task(root, cfg, FRAUD_SPEC, Path(a["work"]))


def task_scoring(a: dict) -> dict:
    from .scoring_task import scoring_task

    cfg, root = _world(a)
    return scoring_task(root, cfg, FRAUD_SPEC, [Path(p) for p in a["features"]],
                        Path(a["out"]), a["threads"])


def task_drift(a: dict) -> dict:
    from ml_assets.bench.drift_bench import run_drift_bench

    return run_drift_bench(n_ref=a["n_ref"], n_cur=a["n_cur"], n_features=a["n_features"],
                           repeats=a["repeats"], peers_python=a["peers_python"],
                           threads=a["threads"])


def task_estimation(a: dict) -> dict:
    from ml_assets.bench.estimation_bench import run_estimation_bench

    return run_estimation_bench(a["n_rows"], a["chunks"], a["peers_python"], a["threads"])


TASKS = {name[5:]: fn for name, fn in globals().items() if name.startswith("task_")}


def main() -> None:
    warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")
    task, args = sys.argv[1], json.loads(sys.stdin.read())
    result = TASKS[task](args)
    result.update(peak_rss_mb=peak_rss_mb(), omp_num_threads=os.environ.get("OMP_NUM_THREADS"))
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
