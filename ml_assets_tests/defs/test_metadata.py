"""Unknown values are left out of Dagster metadata: no -1 sentinel the UI would plot, no
"none" string turning a numeric series into text."""

import math

import dagster as dg
import numpy as np
import pandas as pd

from ml_assets.defs.metadata import known_metadata
from ml_assets.defs.release.rollback import build_rollback_defs
from ml_assets.lib.core.workspace import Workspace
from ml_assets.specs.fraud import FRAUD_SPEC


def test_unknown_values_are_omitted_and_numpy_scalars_become_python():
    md = known_metadata({"a": None, "b": math.nan, "c": np.float64("nan"), "d": pd.NA,
                         "e": np.float64(0.25), "f": np.int64(3), "g": "text",
                         "h": dg.MetadataValue.md("x"), "i": 0.0})
    assert list(md) == ["e", "f", "g", "h", "i"]
    assert type(md["e"]) is float and type(md["f"]) is int


def test_rollback_checks_omit_what_is_unknown_on_an_empty_control_plane(tmp_path):
    workspace = Workspace.open(tmp_path, FRAUD_SPEC)
    checks = {next(iter(c.check_specs)).name: c
              for c in build_rollback_defs(FRAUD_SPEC).asset_checks}
    recency = checks["drill_recency"](project=workspace)
    assert not recency.passed
    assert "age_days" not in recency.metadata  # never drilled: unknown, not -1
    assert recency.metadata["last_successful_drill"].value == "never"
    readiness = checks["rollback_readiness"](project=workspace)
    assert "previous_version" not in readiness.metadata  # no previous model: not "none"
