"""A year of hourly history as a user would export it: hourly event CSVs, one labels CSV and a
spec TOML, for the bench's end-to-end section (``year_section``) to run through ``ml-assets``.

Card payments: ~350k events over 365 days (``YearConfig``) with three entity keys (``user_id``,
``merchant_id`` and a nullable ``device_id``, empty on web payments), a nullable attribute
(``rating``, missing on most payments), weekday and hour-of-day seasonality, and a dispute
label known 1 hour to 10 days after its event. Same config, same bytes.

Layout (what ``ml-assets land --events OUT/events --labels OUT/labels.csv`` reads)::

    OUT/events/YYYY-MM-DD/tx-YYYY-MM-DDTHH.csv   one file per UTC hour with events
    OUT/labels.csv                               every dispute decision known by the end
    OUT/spec.toml                                partition_grain = "daily", historical end
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

# Relative traffic by weekday (Monday first) and by UTC hour: quiet nights, an evening peak.
WEEKDAY = np.array([0.9, 0.95, 1.0, 1.0, 1.15, 1.3, 0.8])
HOUR = np.array([0.2, 0.12, 0.08, 0.06, 0.06, 0.1, 0.3, 0.6, 0.9, 1.0, 1.05, 1.1,
                 1.25, 1.15, 1.0, 1.0, 1.1, 1.3, 1.6, 1.8, 1.7, 1.3, 0.8, 0.4])
CHANNELS, CHANNEL_P = ["app", "web", "pos"], [0.55, 0.3, 0.15]
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class YearConfig:
    """Size and shape of the generated history.

    ``events`` is the expected total (Poisson per hour, so the count varies by a few hundred);
    the history runs ``days`` from ``start`` and the spec's ``end`` is its last day's end.
    ``partition_grain`` is the spec's ("daily": 365 partitions a year; "hourly": 8,760).
    """

    events: int = 350_000
    days: int = 365
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    users: int = 20_000
    merchants: int = 2_000
    seed: int = 11
    partition_grain: str = "daily"

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


def _activity(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    weight = rng.lognormal(0.0, sigma, size)
    return weight / weight.sum()


def _events(cfg: YearConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Every event, sorted by time; ``_disputed`` is the outcome its label will carry."""
    # naive UTC until the frame is built: numpy datetime64 arithmetic keeps no zone
    hours = pd.date_range(cfg.start, cfg.end, freq="h", inclusive="left").tz_convert(None)
    weight = WEEKDAY[hours.day_of_week] * HOUR[hours.hour]
    counts = rng.poisson(cfg.events * weight / weight.sum())
    n = int(counts.sum())
    offset = rng.uniform(0, 3600, n)
    ts = (np.repeat(hours.values, counts) + pd.to_timedelta(offset, unit="s").values)
    ts = np.sort(pd.DatetimeIndex(ts).floor("s").values)
    # lognormal activity: some users and merchants are far busier than most
    user = rng.choice(cfg.users, n, p=_activity(rng, cfg.users, 1.0))
    merchant = rng.choice(cfg.merchants, n, p=_activity(rng, cfg.merchants, 1.5))
    channel = rng.choice(len(CHANNELS), n, p=CHANNEL_P)
    device = np.where(channel == 1, -1, user * 3 + rng.integers(0, 3, n))
    amount = np.round(rng.lognormal(3.5, 0.9, n), 2)
    rated = rng.random(n) < 0.25
    rating = np.where(rated, rng.integers(1, 6, n), np.nan)
    risky_user = rng.random(cfg.users) < 0.03
    risky_merchant = rng.random(cfg.merchants) < 0.05
    night = (pd.DatetimeIndex(ts).hour < 5).astype(float)
    logit = (-4.6 + 2.8 * risky_user[user] + 1.5 * risky_merchant[merchant] + 0.8 * night
             + 0.004 * amount + 0.6 * (channel == 1))
    disputed = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return pd.DataFrame({
        "tx_id": pd.Series(np.arange(n)).map("T{:08d}".format),
        "ts": pd.DatetimeIndex(ts, tz="UTC"),
        "user_id": pd.Series(user).map("U{:06d}".format),
        "merchant_id": pd.Series(merchant).map("M{:05d}".format),
        "device_id": pd.Series(device).map("D{:07d}".format).where(device >= 0, ""),
        "amount": amount, "channel": np.array(CHANNELS)[channel], "rating": rating,
        "_disputed": disputed,
    })


def _labels(cfg: YearConfig, events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A dispute decision per event 1 hour to 10 days after it, those known by the end."""
    known = events["ts"] + pd.to_timedelta(rng.uniform(1, 240, len(events)), unit="h")
    out = pd.DataFrame({"tx_id": events["tx_id"], "disputed": events["_disputed"],
                        "decided_at": known.dt.floor("s")})
    return out[out["decided_at"] < cfg.end].sort_values(["decided_at", "tx_id"])


def _write_hourly(events: pd.DataFrame, root: Path) -> int:
    """One CSV per UTC hour with events: the whole table rendered once, cut at hour bounds."""
    table = events.drop(columns="_disputed").assign(ts=events["ts"].dt.strftime(TS_FORMAT))
    header, *lines = table.to_csv(index=False, lineterminator="\n").splitlines(keepends=True)
    hour = events["ts"].dt.floor("h")
    utc = hour.dt.tz_convert(None).to_numpy()
    bounds = np.flatnonzero(np.r_[True, utc[1:] != utc[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):  # a loop over files, not rows
        stamp = hour.iloc[lo]
        folder = root / f"{stamp:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"tx-{stamp:%Y-%m-%dT%H}.csv").write_text(header + "".join(lines[lo:hi]))
    return len(bounds) - 1


def spec_toml(cfg: YearConfig) -> str:
    """The spec of the generated history: its partition grain, count/sum/mean/max/distinct
    windows, time since the previous payment, a label aggregate and a ratio."""
    return f'''# A year of card payments (ml_assets.bench.year_world); label = disputed, known 1h-10d later.
name = "year_payments"
model_name = "dispute_risk"
description = "Card payments over a year; label = disputed, known hours to days later."
event_id = "tx_id"
event_ts = "ts"
entity_keys = ["user_id", "merchant_id", "device_id"]
# web payments carry no device
nullable_keys = ["device_id"]
label = "disputed"
label_ts = "decided_at"
start = {cfg.start:%Y-%m-%dT%H:%M:%SZ}
end = {cfg.end:%Y-%m-%dT%H:%M:%SZ}
owner = "team:bench"
id_type = "string"
landing_completeness = "later_file"
# daily: hourly exports under daily partitions, 365 a year instead of 8,760
partition_grain = "{cfg.partition_grain}"

[[attributes]]
name = "amount"
kind = "numeric"
min_value = 0
max_value = 100_000

[[attributes]]
name = "channel"
kind = "categorical"

[[attributes]]
name = "rating"
kind = "numeric"
nullable = true
min_value = 1
max_value = 5

[[features]]
type = "Numeric"
name = "amount"
column = "amount"

[[features]]
type = "Categorical"
name = "channel"
column = "channel"
vocabulary = ["app", "web", "pos"]

[[features]]
type = "WindowAgg"
name = "user_tx_1d"
entity = "user_id"
agg = "count"
window = "1d"

[[features]]
type = "WindowAgg"
name = "user_amount_sum_7d"
entity = "user_id"
agg = "sum"
column = "amount"
window = "7d"

[[features]]
type = "WindowAgg"
name = "user_amount_mean_30d"
entity = "user_id"
agg = "mean"
column = "amount"
window = "30d"

[[features]]
type = "WindowAgg"
name = "user_amount_max_7d"
entity = "user_id"
agg = "max"
column = "amount"
window = "7d"

[[features]]
type = "WindowAgg"
name = "user_merchants_30d"
entity = "user_id"
agg = "distinct"
column = "merchant_id"
window = "30d"

[[features]]
type = "WindowAgg"
name = "merchant_tx_1h"
entity = "merchant_id"
agg = "count"
window = "1h"

[[features]]
type = "WindowAgg"
name = "device_tx_1d"
entity = "device_id"
agg = "count"
window = "1d"

[[features]]
type = "TimeSincePrevious"
name = "user_hours_since_prev"
entity = "user_id"
within = "30d"
unit = "h"

[[features]]
type = "LabelAgg"
name = "merchant_disputes_30d"
entity = "merchant_id"
agg = "positives"
window = "30d"

[[features]]
type = "Ratio"
name = "amount_vs_user_mean_30d"
numerator = "amount"
denominator = "user_amount_mean_30d"

[model]
seed = 7
max_iter = 60
decision_threshold = 0.2
training_window_days = 60
frozen_reference_rows = 2000

[monitoring]
label_maturity_days = 10

[business_metric]
name = "disputes_avoided"
unit = "EUR"
decision_rate_name = "review_rate"
description = "Disputed amounts avoided by review minus the cost of needless reviews."
value_column = "amount"
tp_rate = 1.0
fp_fixed = 2.0
max_decision_rate = 0.3
min_value_per_1k = 0.0
'''


def write_year(out: Path, cfg: YearConfig = YearConfig()) -> dict:
    """Write the hourly event CSVs, ``labels.csv`` and ``spec.toml`` under ``out``.

    Parameters
    ----------
    out : Path
        Created if missing; existing files of the same names are overwritten.
    cfg : YearConfig
        Size, span and seed; the same config writes the same bytes.

    Returns
    -------
    dict
        ``events``, ``labels`` and ``hourly_files`` counts, ``start``/``end`` (ISO, UTC) and the
        paths ``events_dir``, ``labels_csv`` and ``spec``.
    """
    rng = np.random.default_rng(cfg.seed)
    events = _events(cfg, rng)
    labels = _labels(cfg, events, rng)
    files = _write_hourly(events, out / "events")
    labels.assign(decided_at=labels["decided_at"].dt.strftime(TS_FORMAT)).to_csv(
        out / "labels.csv", index=False, lineterminator="\n")
    (out / "spec.toml").write_text(spec_toml(cfg))
    return {"events": len(events), "labels": len(labels), "hourly_files": files,
            "start": cfg.start.isoformat(), "end": cfg.end.isoformat(),
            "events_dir": str(out / "events"), "labels_csv": str(out / "labels.csv"),
            "spec": str(out / "spec.toml")}
