"""A command opening the Dagster instance under the data directory writes its ``dagster.yaml``
first: with ``DAGSTER_HOME`` set (as ``make ui`` and Dagster users do) Dagster otherwise warns
on stderr, on every command, that the file is missing."""

import os
import subprocess
import sys


def test_status_prints_no_missing_dagster_yaml_warning(tmp_path):
    home = tmp_path / "data" / "dagster_home"
    (home / "history").mkdir(parents=True)  # an instance that has run something, no config
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "ml_assets.cli.main", "--data-dir",
                           str(tmp_path / "data"), "status"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "aliases:" in done.stdout
    assert "dagster.yaml" not in done.stderr, done.stderr
    assert (home / "dagster.yaml").exists()
