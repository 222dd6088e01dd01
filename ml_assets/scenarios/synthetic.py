"""Seeded synthetic card transactions with time-dependent fraud and delayed chargebacks.

Fraud here depends on behaviour over time, so point-in-time features matter: compromised
cards show bursts at new merchants with amounts far above the card's history. Labels
(chargebacks and confirmations) land 7-60 days after the event; half the fraud is also
reported early by the cardholder or issuer (a separate, fraud-only feed, hours after the
event, as card networks' fraud reports are). An incident timeline (schema break, NaN spike, covariate drift,
concept drift, late files) can be switched on by config. Same config, same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (registers pa.compute)
import pyarrow.parquet as pq

from ml_assets.lib.core.paths import DataPaths, atomic_write_bytes

CATEGORIES = ("grocery", "fuel", "restaurant", "travel", "electronics", "fashion",
              "pharmacy", "digital_goods", "gift_cards", "utilities")
COUNTRIES = ("US", "GB", "DE", "FR", "ES", "BR", "IN", "NG")
DEVICES = ("web", "ios", "android")
INCIDENT_KINDS = ("schema_break", "nan_spike", "covariate_drift", "concept_drift", "late_files")
DEFAULT_START = datetime(2026, 7, 1, tzinfo=UTC)
EVENTS_PER_DAY_AT_SCALE_1 = 8_400  # ~1M events over the default 120 days
EARLY_REPORT_SHARE = 0.5  # of fraud, reported by the cardholder/issuer before any chargeback
EARLY_REPORT_MEAN_HOURS = 6.0


@dataclass(frozen=True)
class Incident:
    kind: str
    day: int  # day index from the start (0-based)
    days: int = 1  # how long it lasts (drifts persist until the end when 0)


@dataclass(frozen=True)
class SyntheticConfig:
    seed: int = 7
    start: datetime = DEFAULT_START
    days: int = 120
    scale: float = 1.0
    incidents: tuple[Incident, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"days must be >= 1, got {self.days}")
        if not 0 < self.scale <= 100:
            raise ValueError(f"scale must be in (0, 100], got {self.scale}")
        for inc in self.incidents:
            if inc.kind not in INCIDENT_KINDS:
                raise ValueError(f"incident kind {inc.kind!r} is not one of {INCIDENT_KINDS}")
            if not 0 <= inc.day < self.days:
                raise ValueError(f"incident {inc.kind} day {inc.day} outside 0..{self.days - 1}")

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def active(self, kind: str) -> list[Incident]:
        return [i for i in self.incidents if i.kind == kind]


def _in_incident(day_idx: np.ndarray, inc: Incident) -> np.ndarray:
    stop = np.inf if inc.days <= 0 else inc.day + inc.days
    return (day_idx >= inc.day) & (day_idx < stop)


def generate_frames(cfg: SyntheticConfig) -> tuple[pa.Table, pa.Table]:
    """Return (events, labels) tables; labels hold only what is known by ``cfg.end``."""
    events, labels, _ = generate_all(cfg)
    return events, labels


def generate_all(cfg: SyntheticConfig) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(events, labels, early reports); each holds only what is known by ``cfg.end``."""
    rng = np.random.default_rng(cfg.seed)
    n_legit = int(EVENTS_PER_DAY_AT_SCALE_1 * cfg.days * cfg.scale)
    n_cards = max(50, n_legit // 25)
    n_merchants = max(20, int(5_000 * min(cfg.scale, 4) ** 0.5))
    span_s = cfg.days * 86_400

    # Cards: activity, spending level, home country, preferred device, usual merchants.
    activity = rng.lognormal(0.0, 0.8, n_cards)
    card_mu = rng.normal(3.6, 0.7, n_cards)
    card_country = rng.choice(len(COUNTRIES), n_cards, p=[.45, .12, .1, .08, .07, .07, .06, .05])
    card_device = rng.integers(0, len(DEVICES), n_cards)
    merch_pop = rng.pareto(1.2, n_merchants) + 1
    merch_pop /= merch_pop.sum()
    merch_cat = rng.integers(0, len(CATEGORIES), n_merchants)
    usual = rng.choice(n_merchants, size=(n_cards, 6), p=merch_pop)

    # Legit transactions with hourly seasonality (quiet at night, busy at noon/evening).
    hour_w = 0.25 + np.clip(np.sin((np.arange(24) - 6) / 24 * 2 * np.pi), 0, None) + (
        0.5 * np.exp(-((np.arange(24) - 19) ** 2) / 6))
    hour_w /= hour_w.sum()
    day = rng.integers(0, cfg.days, n_legit)
    hour = rng.choice(24, n_legit, p=hour_w)
    offset_us = (day * 86_400 + hour * 3_600) * 1_000_000 + rng.integers(0, 3_600_000_000, n_legit)
    card = rng.choice(n_cards, n_legit, p=activity / activity.sum())
    is_new = rng.random(n_legit) < 0.12
    merchant = np.where(is_new, rng.choice(n_merchants, n_legit, p=merch_pop),
                        usual[card, rng.integers(0, 6, n_legit)])
    amount = rng.lognormal(card_mu[card], 0.55)
    foreign = rng.random(n_legit) < 0.03
    country = np.where(foreign, rng.integers(0, len(COUNTRIES), n_legit), card_country[card])
    device = np.where(rng.random(n_legit) < 0.9, card_device[card],
                      rng.integers(0, len(DEVICES), n_legit))
    distance = rng.gamma(1.5, 8.0, n_legit) + foreign * rng.gamma(2.0, 800.0, n_legit)
    # A little organic fraud: large amounts abroad at new merchants are riskier.
    z = -7.2 + 1.2 * (amount > np.exp(card_mu[card] + 1.0)) + 1.5 * foreign + 0.9 * is_new
    fraud = rng.random(n_legit) < 1 / (1 + np.exp(-z))

    # Compromised cards: bursts of 2-8 transactions minutes apart at new merchants.
    n_comp = max(3, int(n_cards * 0.04))  # cards already scale with days: ~0.8% fraud
    comp_card = rng.choice(n_cards, n_comp, p=activity / activity.sum())
    # Starts are uniform over the whole span, so the last day is like any other; a burst
    # running past the end is cut there.
    comp_start_us = rng.integers(0, span_s, n_comp) * 1_000_000
    burst_len = rng.integers(2, 9, n_comp)
    b_card = np.repeat(comp_card, burst_len)
    gaps = rng.exponential(20 * 60 * 1_000_000, burst_len.sum()).astype(np.int64)
    starts = np.repeat(comp_start_us, burst_len)
    first = np.r_[0, np.cumsum(burst_len)[:-1]]
    csum = np.cumsum(gaps)
    b_offset = starts + csum - np.repeat(csum[first] - gaps[first], burst_len)
    in_span = b_offset < span_s * 1_000_000
    b_card, b_offset = b_card[in_span], b_offset[in_span]
    nb = len(b_card)
    b_merchant = rng.choice(n_merchants, nb)
    b_amount = rng.lognormal(card_mu[b_card] + 1.3, 0.5)
    b_country = np.where(rng.random(nb) < 0.5, rng.integers(0, len(COUNTRIES), nb),
                         card_country[b_card])
    b_device = rng.integers(0, len(DEVICES), nb)
    b_distance = rng.gamma(2.0, 600.0, nb)

    offset_us = np.concatenate([offset_us, b_offset])
    card = np.concatenate([card, b_card])
    merchant = np.concatenate([merchant, b_merchant])
    amount = np.concatenate([amount, b_amount])
    country = np.concatenate([country, b_country])
    device = np.concatenate([device, b_device])
    distance = np.concatenate([distance, b_distance])
    fraud = np.concatenate([fraud, np.ones(nb, bool)])
    category = merch_cat[merchant]
    is_burst = np.r_[np.zeros(n_legit, bool), np.ones(nb, bool)]
    category = np.where(is_burst & (rng.random(len(card)) < 0.6),
                        rng.choice([4, 7, 8], len(card)), category)
    day_idx = offset_us // (86_400 * 1_000_000)

    # Incidents that change the data itself (schema break and late files change delivery).
    for inc in cfg.active("covariate_drift"):
        m = _in_incident(day_idx, inc)
        amount = np.where(m, amount * 1.8, amount)
        device = np.where(m & (rng.random(len(device)) < 0.3), len(DEVICES), device)
        country = np.where(m & (rng.random(len(country)) < 0.3), 6, country)
    for inc in cfg.active("concept_drift"):
        # Fraudsters change tactics: quiet, domestic, ordinary-sized purchases at usual merchants.
        m = _in_incident(day_idx, inc) & ~is_burst & (rng.random(len(card)) < 0.02)
        fraud = fraud | m
    null_distance = rng.random(len(card)) < 0.01
    for inc in cfg.active("nan_spike"):
        null_distance |= _in_incident(day_idx, inc) & (rng.random(len(card)) < 0.4)
    null_device = rng.random(len(card)) < 0.005

    order = np.lexsort((card, offset_us))
    n = len(order)
    ts_us = int(cfg.start.timestamp() * 1_000_000) + offset_us[order]
    device_names = np.array([*DEVICES, "smart_tv"], dtype=object)[device[order]]
    device_names[null_device[order]] = None
    dist = np.round(distance[order], 3)
    dist[null_distance[order]] = np.nan
    events = pa.table({
        "event_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "event_ts": pa.array(ts_us, pa.timestamp("us", tz="UTC")),
        "card_id": pa.array(card[order].astype(np.int64)),
        "merchant_id": pa.array(merchant[order].astype(np.int64)),
        "amount": pa.array(np.round(amount[order], 2)),
        "merchant_category": pa.array(np.array(CATEGORIES, dtype=object)[category[order]]),
        "country": pa.array(np.array(COUNTRIES, dtype=object)[country[order]]),
        "device": pa.array(device_names, pa.string()),
        "distance_km": pa.array(dist, from_pandas=True),
    })

    # Chargebacks (and confirmations) land 7-60 days later; only those known by the end exist.
    delay_us = ((7 + rng.beta(1.6, 3.0, n) * 53) * 86_400 * 1_000_000).astype(np.int64)
    label_ts = ts_us + delay_us
    known = label_ts < int(cfg.end.timestamp() * 1_000_000)
    labels = pa.table({
        "event_id": pa.array(np.arange(1, n + 1, dtype=np.int64)[known]),
        "label": pa.array(fraud[order][known].astype(np.int8)),
        "label_ts": pa.array(label_ts[known], pa.timestamp("us", tz="UTC")),
    }).sort_by([("label_ts", "ascending"), ("event_id", "ascending")])
    return events, labels, _early_reports(cfg, ts_us, fraud[order])


def _early_reports(cfg: SyntheticConfig, ts_us: np.ndarray, fraud: np.ndarray) -> pa.Table:
    """A minute to a few days after a fraud event, for half of them. Drawn from a stream of
    their own, so events and labels are the same bytes with or without this feed."""
    rng = np.random.default_rng([cfg.seed, 1])
    n = len(ts_us)
    reported = fraud & (rng.random(n) < EARLY_REPORT_SHARE)
    delay_us = ((60 + rng.exponential(EARLY_REPORT_MEAN_HOURS * 3_600, n)) * 1e6).astype(np.int64)
    report_ts = ts_us + delay_us
    keep = reported & (report_ts < int(cfg.end.timestamp() * 1_000_000))
    return pa.table({
        "event_id": pa.array(np.arange(1, n + 1, dtype=np.int64)[keep]),
        "label": pa.array(np.ones(int(keep.sum()), np.int8)),
        "label_ts": pa.array(report_ts[keep], pa.timestamp("us", tz="UTC")),
    }).sort_by([("label_ts", "ascending"), ("event_id", "ascending")])


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _slices(ts: pa.ChunkedArray, start: datetime, step: timedelta, count: int):
    values = ts.cast(pa.int64()).to_numpy()
    bounds = [int((start + i * step).timestamp() * 1_000_000) for i in range(count + 1)]
    cuts = np.searchsorted(values, bounds, side="left")
    for i in range(count):
        yield start + i * step, int(cuts[i]), int(cuts[i + 1])


def write_landing(cfg: SyntheticConfig, paths: DataPaths, until: datetime | None = None) -> dict:
    """Write hourly event files and daily label and early-report files into ``landing/``;
    return a manifest.

    Files already present with identical bytes are left alone, so re-running is a no-op and
    landing data stays append-only. With ``until`` (UTC), only the files whose hour or day
    has ended by then are written (what has happened of the timeline; the manifest counts
    their rows); the rest are the same bytes whenever they are written."""
    paths.ensure()
    until = min(until or cfg.end, cfg.end)
    events, labels, reports = generate_all(cfg)
    schema_break_days = {d for inc in cfg.active("schema_break")
                         for d in range(inc.day, inc.day + max(inc.days, 1))}
    late_days = {inc.day: max(inc.days, 1) for inc in cfg.active("late_files")}
    files, arrivals, rows = {}, {}, {"events": 0, "labels": 0, "early_reports": 0}
    hours = (until - cfg.start) // timedelta(hours=1)
    days = (until - cfg.start) // timedelta(days=1)
    for hour, lo, hi in _slices(events["event_ts"], cfg.start, timedelta(hours=1), hours):
        part = events.slice(lo, hi - lo)
        rows["events"] += hi - lo
        day_i = (hour - cfg.start).days
        if day_i in schema_break_days:
            part = part.rename_columns(["amount_usd" if c == "amount" else c
                                        for c in part.column_names])
        path = paths.landing_events_file(hour)
        arrival = hour + timedelta(hours=1, minutes=5) + timedelta(days=late_days.get(day_i, 0))
        files[str(path.relative_to(paths.root))] = _write_if_changed(path, _parquet_bytes(part))
        arrivals[str(path.relative_to(paths.root))] = arrival.isoformat()
    for name, table, file_of in (("labels", labels, paths.landing_labels_file),
                                 ("early_reports", reports, paths.landing_reports_file)):
        for day, lo, hi in _slices(table["label_ts"], cfg.start, timedelta(days=1), days):
            rows[name] += hi - lo
            path = file_of(day)
            files[str(path.relative_to(paths.root))] = _write_if_changed(
                path, _parquet_bytes(table.slice(lo, hi - lo)))
            arrivals[str(path.relative_to(paths.root))] = (
                day + timedelta(days=1, hours=2)).isoformat()
    manifest = {
        "config": {**asdict(cfg), "start": cfg.start.isoformat(),
                   "incidents": [asdict(i) for i in cfg.incidents]},
        **rows,
        # labels are sorted by label_ts, so the landed ones are the first rows
        "fraud_rate_of_known_labels": float(
            pa.compute.mean(labels["label"].slice(0, rows["labels"])).as_py() or 0.0),
        "files": files,
        "arrivals": arrivals,
    }
    atomic_write_bytes(paths.landing / "_manifest.json",
                       json.dumps(manifest, indent=1, sort_keys=True).encode())
    return manifest


def _write_if_changed(path: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if not (path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == digest):
        atomic_write_bytes(path, data)
    return digest
