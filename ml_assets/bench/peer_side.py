"""The peer tools' side of the bench, run by ANOTHER Python (``--peers-python``, built by
``make bench-peers``): Evidently 0.7 and NannyML do not import on the project's pandas 3.1.

``PYTHON peer_side.py drift|cbpe DIR`` reads the Parquet files the bench wrote to ``DIR``, times
the peer on them and prints one JSON object. Stdlib, pandas and the peer tools only: ml_assets
is not installed in that environment.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import pandas as pd


def _drift(data: Path) -> dict:
    """Evidently's per-column PSI and KS over every column of ``ref`` against ``cur``."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    ref, cur = pd.read_parquet(data / "ref.parquet"), pd.read_parquet(data / "cur.parquet")
    t0 = time.perf_counter()
    definition = DataDefinition(numerical_columns=list(ref.columns))
    r, c = Dataset.from_pandas(ref, definition), Dataset.from_pandas(cur, definition)
    metrics = [ValueDrift(column=col, method=m) for col in ref.columns for m in ("psi", "ks")]
    Report(metrics).run(current_data=c, reference_data=r)
    return {"seconds": time.perf_counter() - t0, "tool": "evidently",
            "version": metadata.version("evidently")}


def _cbpe(data: Path) -> dict:
    """NannyML CBPE (isotonic calibration, ROC AUC) fitted on ``reference``, estimated on
    ``analysis`` in ``chunks`` equal chunks (in row order)."""
    import nannyml as nml

    ref = pd.read_parquet(data / "reference.parquet")
    ana = pd.read_parquet(data / "analysis.parquet")
    chunks = json.loads((data / "chunks.json").read_text())["chunks"]
    t0 = time.perf_counter()
    est = nml.CBPE(metrics=["roc_auc"], y_pred_proba="score", y_pred="pred", y_true="label",
                   problem_type="classification_binary", chunk_size=len(ana) // chunks)
    est.fit(ref)
    result = est.estimate(ana.drop(columns=["label"]))
    seconds = time.perf_counter() - t0
    frame = result.filter(period="analysis").to_df()
    return {"seconds": seconds, "tool": "nannyml", "version": metadata.version("nannyml"),
            "estimated_auc": frame[("roc_auc", "value")].astype(float).tolist()}


def main() -> None:
    warnings.filterwarnings("ignore")
    job, data = sys.argv[1], Path(sys.argv[2])
    print(json.dumps({"drift": _drift, "cbpe": _cbpe}[job](data)))


if __name__ == "__main__":
    main()
