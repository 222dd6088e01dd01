"""online_offline_parity replays the newest complete day that has scored events: a day
without events (a closed store's Sunday, the days after a historical dataset's last event)
has nothing to compare and must not fail the check - it once wedged every later score run."""

from datetime import UTC, datetime, timedelta

import pandas as pd

from ml_assets.defs.serving.checks import parity_day
from ml_assets.lib.core.catalog import BATCH_SCORES, EVENT_FEATURES
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.workspace import Workspace
from ml_assets.specs.fraud import FRAUD_SPEC


def test_parity_day_skips_days_without_scored_events(tmp_path):
    ws = Workspace(DataPaths(tmp_path).ensure(), FRAUD_SPEC)
    busy, empty = datetime(2026, 7, 3, tzinfo=UTC), datetime(2026, 7, 4, tzinfo=UTC)
    for day, rows in ((busy, 2), (empty, 0)):
        for h in range(24):
            hour = day + timedelta(hours=h)
            frame = pd.DataFrame({"event_id": range(rows), "score": [0.5] * rows})
            ws.catalog.table(BATCH_SCORES).write(hour, frame)
            ws.catalog.table(EVENT_FEATURES).write(hour, frame[["event_id"]])
    assert parity_day(ws) == busy
    # a day with a missing feature hour is not complete either
    ws.catalog.table(EVENT_FEATURES).path(busy + timedelta(hours=5)).unlink()
    assert parity_day(ws) is None
