"""The README's "Your own data" walkthrough, run verbatim as a new user types it: generated
CSVs and a spec in the user's own directory (outside the package), six commands, then the
state a user relies on - a champion, scores for every event including those without the
nullable key, daily landing files only for days with events, monitored days, a served answer.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pandas as pd

from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.training.provenance import code_commit

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- ml_assets_tests/cli/test_walkthrough.py runs this block verbatim -->"


def walkthrough() -> str:
    """The bash block right after the README's marker."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    after = text[text.index(MARKER) + len(MARKER):]
    return re.match(r"\s*```bash\n(.*?)```", after, re.DOTALL).group(1)


def test_readme_walkthrough_runs_verbatim(tmp_path):
    block = walkthrough()
    commands = [line for line in block.splitlines()
                if re.match(r"(\.venv/bin/ml-assets|curl) ", line)]
    assert len(commands) <= 6, commands  # the promise: at most six commands
    for name in ("examples", ".venv"):  # the user's directory beside a checkout
        (tmp_path / name).symlink_to(REPO / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_ASSETS_")}
    # the server started in the background stops with the script
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + block
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["model_version"] == "refund_risk-v1" and 0 <= answer["score"] <= 1

    paths = DataPaths(tmp_path / "my_orders" / "data")
    registry = Registry(paths.control_db)
    assert registry.aliases("refund_risk")["champion"] == "refund_risk-v1"
    card = registry.get_model("refund_risk-v1")
    assert card["spec"]["ref"] == str(tmp_path / "my_orders" / "spec.toml")
    assert card["code_dirty"] == code_commit()[1]  # nothing in the package was edited
    assert card["metrics"]["held_out"]["auc"] > 0.6  # abusive customers are learnable

    # one landing file per UTC day with events: no empty files for Sundays (stores closed)
    landed = sorted(p.stem for p in (paths.landing / "events").glob("*.parquet"))
    days = pd.date_range("2026-01-05", "2026-02-14", freq="D")
    assert len(landed) < len(days) and all(re.fullmatch(r"\d{4}-\d\d-\d\d", s) for s in landed)

    features = read_parquet_files(sorted((paths.lake / "event_features").glob("*.parquet")))
    scores = read_parquet_files(sorted((paths.lake / "batch_scores").glob("*.parquet")))
    scored = features[features["ordered_at"] >= pd.Timestamp("2026-02-05", tz="UTC")]
    # every event from the cutoff on is scored, those without a promo code included
    assert set(scores["order_id"]) == set(scored["order_id"])
    assert scored["promo_code"].isna().mean() > 0.5
    quarantine = pd.read_parquet(paths.lake / "quarantine.parquet")
    assert not quarantine["reason"].str.contains("promo_code").any()

    # the dataset's last day is whole at its declared end: its drift is judged, although its
    # last order came hours before midnight
    drift = pd.read_parquet(paths.lake / "feature_drift" / "2026-02-14.parquet")
    judged = drift[drift["period"] == "day"]
    assert len(judged) and judged["period_complete"].all() and judged["psi"].notna().all()
