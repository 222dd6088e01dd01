"""The Spark dialect's tests (``ml_assets_tests/spark_env/``) import pyspark, which only the
Spark driver's environment has: this runs them there (``$ML_ASSETS_SPARK_PYTHON``, set by
``make test``) as one test of the main run. Never a skip: an unset variable fails, naming it."""

import os
import subprocess
from pathlib import Path

from ml_assets.lib.features.spark_sql import SPARK_PYTHON_ENV

REPO = Path(__file__).resolve().parents[3]
SPARK_TESTS = REPO / "ml_assets_tests" / "spark_env"


def test_the_spark_tests_pass_in_the_spark_environment():
    python = os.environ.get(SPARK_PYTHON_ENV)
    assert python, (f"{SPARK_PYTHON_ENV} is unset: run the suite with `make test`, which builds "
                    ".venv-spark and points it there")
    done = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(SPARK_TESTS)], cwd=REPO, capture_output=True, text=True,
                          timeout=1200, check=False)
    tail = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    assert " passed" in done.stdout and "skipped" not in done.stdout, tail
