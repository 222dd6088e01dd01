"""Daily feature drift: each feature's rows over its drift period (a day by default; a week, a
month or trailing days by declaration, ``drift_periods``) against the acting champion's
reference profile (built once per model version from its training window, content-addressed),
graded by ``drift.grade``. A period not yet complete is reported, never alarmed."""

from __future__ import annotations

import bisect
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from ml_assets.lib.core.artifacts import read_verified, recorded_file
from ml_assets.lib.core.catalog import EVENT_FEATURES
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import confined
from ml_assets.lib.core.lake import connect, parquet_relation, read_parquet_files
from ml_assets.lib.core.paths import DataPaths, atomic_write_bytes
from ml_assets.lib.core.policies import MonitoringConfig
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.definitions import UNKNOWN_CATEGORY, Categorical
from ml_assets.lib.monitoring import drift
from ml_assets.lib.monitoring.drift_periods import OFF, DriftPeriod, day_is_whole
from ml_assets.lib.monitoring.scored_events import champion_of, event_files, load_scores


def monitored_periods(spec: DatasetSpec) -> dict[str, DriftPeriod]:
    """Each feature's drift period, features declared "off" left out."""
    periods = {f: spec.monitoring.period_of(f) for f in spec.feature_names}
    return {f: p for f, p in periods.items() if p.kind != OFF}


def _profile_pointer(paths: DataPaths, version: str, spec: DatasetSpec) -> Path:
    # The clean variability in a profile is measured per period kind: other periods, other file.
    periods = json.dumps({f: p.label for f, p in monitored_periods(spec).items()}, sort_keys=True)
    tag = hashlib.sha256(periods.encode()).hexdigest()[:12]
    return confined(paths.artifacts / "drift_profiles",
                    f"{version}-{spec.monitoring.psi_bins}bins-{tag}.json", "model version")


def reference_profile(paths: DataPaths, spec: DatasetSpec, card: dict) -> tuple[drift.DriftProfile, str]:
    """The version's drift profile: built once from its training window, then loaded (verified).

    Rows before the spec's warm-up (``DatasetSpec.warm_start``) are skipped when the window allows.

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    card : dict
        The version's model card (``version``, ``training_window``).

    Returns
    -------
    profile : DriftProfile
    sha256 : str
        Of the stored profile artifact.

    Raises
    ------
    MissingUpstreamError
        An ``event_features`` partition of the training window is missing.
    ArtifactIntegrityError
        A stored profile does not hash to its recorded SHA-256.
    """
    pointer = _profile_pointer(paths, card["version"], spec)
    if pointer.exists():
        ref = json.loads(pointer.read_text())
        path = recorded_file(paths, ref["path"], "drift profile path")  # pointer: data dir
        return drift.DriftProfile.from_bytes(read_verified(path, ref["sha256"])), ref["sha256"]
    w = card["training_window"]
    lo, hi = datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"])
    # Rows before warm-up (windows still filling, label features still gaining late labels)
    # are not what steady-state traffic looks like: the reference skips them when it can.
    warm = spec.warm_start
    lo = warm if lo < warm < hi else lo
    frame = read_parquet_files(event_files(paths, spec, EVENT_FEATURES, lo, hi, True))
    periods = monitored_periods(spec)
    features = [f for f in spec.features if f.name in periods]
    cats = [f for f in features if isinstance(f, Categorical)]
    ts, window = frame[spec.event_ts], (pd.Timestamp(lo), pd.Timestamp(hi))
    keys = {p.label: p.reference_keys(ts, *window) for p in set(periods.values())}
    profile = drift.build_profile(
        frame, [f.name for f in features if not isinstance(f, Categorical)],
        [f.name for f in cats], n_bins=spec.monitoring.psi_bins,
        category_labels={f.name: dict(enumerate([*f.vocabulary, UNKNOWN_CATEGORY])) for f in cats},
        period={f: keys[p.label] for f, p in periods.items()},
        meta={"model_version": card["version"], "window_start": lo.isoformat(),
              "window_end": hi.isoformat(), "feature_schema_version": spec.schema_version})
    sha, path = drift.store_profile(paths.artifacts, profile)
    atomic_write_bytes(pointer, json.dumps({"sha256": sha, "path": str(path.relative_to(
        paths.root))}).encode())
    return profile, sha



def judge_day(profile: drift.DriftProfile, frame: pd.DataFrame, day: pd.Timestamp,
              periods: dict[str, DriftPeriod], cfg: MonitoringConfig, event_ts: str,
              data_start: pd.Timestamp, newest_event: pd.Timestamp | None,
              missing_partitions: list[datetime] = ()) -> pd.DataFrame:
    """Every monitored feature's drift on ``day``, each over its own period.

    A period is judged (severity as ``drift.grade`` says) only when it is complete: ``day``
    closes it, it starts no earlier than the data, none of its partitions is missing, and ``day`` is
    whole (``drift_periods.day_is_whole``). Otherwise its PSI so far is reported with severity "ok",
    ``period_complete`` False and the reason in ``period_note``: never alarmed, never counted
    as unmonitored.

    Parameters
    ----------
    profile : DriftProfile
        The reference (features not in ``periods`` are skipped).
    frame : DataFrame, shape (n_rows, n_columns)
        Feature rows covering every period judged on ``day`` (``event_ts`` and the features).
    day : Timestamp
        Midnight (UTC) of the judged day.
    periods : dict of str to DriftPeriod
    cfg : MonitoringConfig
    event_ts : str
        The event-time column.
    data_start, newest_event : Timestamp
        First time with data and newest event time known in the lake (None: none).
    missing_partitions : list of datetime
        Starts of the feature partitions not built (UTC), sorted.

    Returns
    -------
    DataFrame, one row per feature
        The columns of ``drift.grade`` plus ``period`` (its label), ``period_start``,
        ``period_complete`` (bool) and ``period_note`` ("" when complete).
    """
    by_period: dict[DriftPeriod, list[str]] = {}
    for name in profile.features:
        if name in periods:
            by_period.setdefault(periods[name], []).append(name)
    whole_day = day_is_whole(day, newest_event)
    gaps = pd.DatetimeIndex(sorted(missing_partitions), tz="UTC")
    parts = []
    for period, names in by_period.items():
        start, end, closes = period.bounds(day)
        rows = frame[(frame[event_ts] >= start) & (frame[event_ts] < end)]
        sub = drift.DriftProfile({n: profile.features[n] for n in names}, profile.meta)
        graded = drift.grade(drift.compare(sub, rows, null_quantile=cfg.psi_null_quantile), cfg)
        gap = int(((gaps >= start) & (gaps < end)).sum())
        note = (f"{period.label} to date: judged on its last day" if not closes else
                f"the {period.label} starts before the data ({data_start:%Y-%m-%d})"
                if start < data_start else
                f"{gap} partition(s) of the {period.label} not built" if gap else
                "" if whole_day else
                f"the day is partial: the data ends at {newest_event} ({len(rows)} rows)")
        note = note or ("" if len(rows) else f"no events in the {period.label}: nothing to compare")
        if note:
            graded = graded.assign(severity="ok", unmonitored=False, unmonitored_reason="")
        parts.append(graded.assign(period=period.label, period_start=start,
                                   period_complete=not note, period_note=note))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _newest_event(paths: DataPaths, spec: DatasetSpec, frame: pd.DataFrame, hi: datetime):
    """The newest event time known: in ``frame``, or in the two days of features after it
    (whether the run's last day is whole). A historical dataset's data runs to its ``end``
    once it has any: its last day is whole however early its last event came."""
    later = event_files(paths, spec, EVENT_FEATURES, hi, hi + timedelta(days=2), False)
    found = [connect().execute(f"SELECT max({spec.event_ts}) FROM {parquet_relation(later)}"
                               ).fetchone()[0]] if later else []
    found += [frame[spec.event_ts].max()] if len(frame) else []
    found = [pd.Timestamp(t) for t in found if t is not None and not pd.isna(t)]
    if found and spec.end_utc is not None:
        found.append(pd.Timestamp(spec.end_utc))
    return max(found) if found else None


def feature_drift(ws: Workspace, lo: datetime, hi: datetime) -> dict[datetime, pd.DataFrame]:
    """Per day: one row per monitored feature with PSI, KS, thresholds and severity over the
    feature's drift period against the champion's profile.

    PSI after Yurdakul 2018, KS as ``scipy.stats.ks_2samp`` (see ``drift``); thresholds raised for
    features whose clean reference periods already vary and by what a clean sample of the
    period's size reaches by chance, with effectively unmonitored features flagged
    (``drift.grade``); incomplete periods reported, never alarmed (``judge_day``).

    Parameters
    ----------
    ws : Workspace
        Its registry gives the champion's model card.
    lo, hi : datetime
        Days in [lo, hi), UTC.

    Returns
    -------
    dict of datetime to DataFrame
        Per day the rows of ``judge_day`` plus ``day``, ``model_version`` and
        ``profile_sha256``.

    Raises
    ------
    MissingUpstreamError
        An ``event_features`` or ``batch_scores`` partition in [lo, hi) is missing.
    """
    paths, spec = ws.paths, ws.spec
    periods = monitored_periods(spec)
    data_start = pd.Timestamp(spec.start_utc)
    # Longer periods reach back before lo: partitions missing there leave their periods incomplete.
    starts = [p.bounds(pd.Timestamp(lo))[0] for p in periods.values()]
    back = max(min([pd.Timestamp(lo), *starts]), data_start).to_pydatetime()
    before, missing = ws.catalog.table(EVENT_FEATURES).coverage(back, lo)
    features = read_parquet_files(before + event_files(paths, spec, EVENT_FEATURES, lo, hi, True))
    newest = _newest_event(paths, spec, features, hi)
    scores = load_scores(paths, spec, lo, hi, None)
    registry, profiles, out = ws.registry, {}, {}
    by_day = dict(tuple(scores.groupby("day")))
    # A day without events (a closed store's Sunday) is judged under the acting champion of
    # the nearest scored day: its day period reports "no events", longer periods still close.
    scored = sorted(by_day)
    for day in pd.date_range(lo, hi, freq="D", inclusive="left"):
        if not scored:
            out[day.to_pydatetime()] = pd.DataFrame({"day": pd.Series([], dtype="datetime64[us, UTC]")})
            continue
        nearest = scored[max(bisect.bisect_right(scored, day) - 1, 0)]  # newest <= day
        version = champion_of(by_day[nearest])
        if version not in profiles:
            profiles[version] = reference_profile(paths, spec, registry.get_model(version))
        profile, sha = profiles[version]
        rows = judge_day(profile, features, day, periods, spec.monitoring, spec.event_ts,
                         data_start, newest, missing)
        out[day.to_pydatetime()] = rows.assign(day=day, model_version=version, profile_sha256=sha)
    return out
