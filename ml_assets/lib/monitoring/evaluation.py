"""Delayed, label-coverage-gated evaluation of each model version by prediction date.

Labels arrive days or weeks after a prediction. A prediction day is "final" only once it is
older than the maturity window *and* its label coverage reaches the threshold; before that it
is "pending": coverage and a clearly marked estimate are reported, and no alarm is possible.
The estimate is confidence-based: with calibrated probabilities p, each row counts as a
positive with weight p and a negative with weight 1 - p, and the expected AUC is the weighted
share of correctly ordered (positive, negative) pairs.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from ml_assets.lib.monitoring.labelable import label_coverage

FINAL, PENDING = "final", "pending"


def label_status(day_end: datetime, horizon: datetime, coverage: float, maturity_days: int,
                 min_coverage: float) -> tuple[str, str]:
    """Whether a prediction day's labels are final yet.

    Parameters
    ----------
    day_end : datetime
        End of the prediction day (UTC).
    horizon : datetime
        Labels known up to here (UTC).
    coverage : float
        Share of the day's labelable rows with a known label (0-1; ``labelable.label_coverage``:
        events never labelled by design or past the label timeout are not counted); NaN when
        the day has no labelable event (nothing to wait for).
    maturity_days : int
        Days after ``day_end`` before labels count as mature.
    min_coverage : float
        Coverage (0-1) a mature day still needs to be final.

    Returns
    -------
    status : {"final", "pending"}
    why : str
        A sentence for the UI.
    """
    matures = day_end + timedelta(days=maturity_days)
    if horizon < matures:
        return PENDING, f"labels mature on {matures:%Y-%m-%d} (known up to {horizon:%Y-%m-%d})"
    if math.isnan(coverage):
        return FINAL, f"no labelable events, matured {matures:%Y-%m-%d}"
    if coverage < min_coverage:
        return PENDING, f"label coverage {coverage:.1%} below {min_coverage:.0%}"
    return FINAL, f"label coverage {coverage:.1%}, matured {matures:%Y-%m-%d}"


def expected_auc(scores: np.ndarray, p: np.ndarray) -> float | None:
    """The AUC expected if each label were Bernoulli(``p``): the confidence-based
    performance estimation of NannyML's CBPE, exact over all pairs (ties count one half,
    self-pairs excluded).

    Parameters
    ----------
    scores : ndarray of float, shape (n_rows,)
        Model scores (only their order matters).
    p : ndarray of float, shape (n_rows,)
        Calibrated probability of a positive per row (0-1).

    Returns
    -------
    float or None
        The expected AUC; None with fewer than two rows or no mixed pairs.
    """
    scores, p = np.asarray(scores, dtype="float64"), np.asarray(p, dtype="float64")
    if len(scores) < 2:
        return None
    q = 1 - p
    order = np.argsort(scores, kind="stable")
    s, ps, qs = scores[order], p[order], q[order]
    uniq, start = np.unique(s, return_index=True)
    q_group = np.add.reduceat(qs, start)
    q_below = np.concatenate([[0.0], np.cumsum(q_group)[:-1]])  # negatives strictly below
    group = np.repeat(np.arange(len(uniq)), np.diff(np.append(start, len(s))))
    # Same-score partners count one half; a row is never its own partner.
    wins = ps * (q_below[group] + 0.5 * (q_group[group] - qs))
    pairs = p.sum() * q.sum() - (p * q).sum()
    return float(wins.sum() / pairs) if pairs > 0 else None


def fit_calibrator(scores: np.ndarray, labels: np.ndarray, min_positives: int):
    """Isotonic map from score to observed positive rate (Zadrozny & Elkan 2002,
    "Transforming classifier scores into accurate multiclass probability estimates").

    Parameters
    ----------
    scores : ndarray of float, shape (n_rows,)
    labels : ndarray of {0, 1}, shape (n_rows,)
    min_positives : int
        Fewer positives (or no negatives) give no calibrator.

    Returns
    -------
    sklearn.isotonic.IsotonicRegression or None
    """
    labels = np.asarray(labels)
    if len(labels) == 0 or labels.sum() < min_positives or labels.sum() == len(labels):
        return None
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)


def calibrate(calibrator, scores: np.ndarray) -> np.ndarray:
    """Calibrated probabilities: ``calibrator.predict(scores)``, or the scores when it is None.

    Parameters
    ----------
    calibrator : IsotonicRegression or None
        From ``fit_calibrator`` (isotonic calibration, Zadrozny & Elkan 2002).
    scores : ndarray of float, shape (n_rows,)

    Returns
    -------
    ndarray of float, shape (n_rows,)
        Probabilities in [0, 1].
    """
    return np.asarray(scores, dtype="float64") if calibrator is None \
        else calibrator.predict(np.asarray(scores, dtype="float64"))


def calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error over equal-count score bins.

    Parameters
    ----------
    y : ndarray of {0, 1}, shape (n_rows,)
    p : ndarray of float, shape (n_rows,)
        Predicted probabilities (0-1).
    n_bins : int

    Returns
    -------
    float
        Row-weighted mean of |observed rate - mean probability| per bin (0-1).
    """
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(n_bins, len(p)))
    return float(sum(abs(y[b].mean() - p[b].mean()) * len(b) for b in bins) / len(p))


def evaluate_day(labels: np.ndarray, scores: np.ndarray, status: str, calibrator,
                 min_positives: int, labelable: np.ndarray | None = None) -> dict:
    """Metrics of one model version on one prediction day.

    Parameters
    ----------
    labels : ndarray of float, shape (n_rows,)
        1/0, NaN where the label is not known yet.
    scores : ndarray of float, shape (n_rows,)
    status : {"final", "pending"}
        From ``label_status``; AUC-type metrics are reported only on a final day.
    calibrator : IsotonicRegression or None
        For the CBPE estimate (``expected_auc``).
    min_positives : int
        A final day's AUC needs at least this many positives.
    labelable : ndarray of bool, shape (n_rows,), optional
        Rows a label is expected for (``labelable.labelable_mask``); None counts every row.

    Returns
    -------
    dict
        ``status``, row and label counts, ``label_coverage`` (0-1, over labelable rows),
        ``labelable_events``/``unlabelable_events`` (rows), ``estimated_auc``, and on a
        final day ``auc``, ``pr_auc``, ``brier``, ``calibration_error``, ``positive_rate`` and
        ``auc_se`` (Hanley-McNeil); unknown values are None.
    """
    labels, scores = np.asarray(labels, dtype="float64"), np.asarray(scores, dtype="float64")
    known = ~np.isnan(labels)
    y, s = labels[known].astype(int), scores[known]
    out = {
        "status": status,
        "rows": int(len(labels)),
        "labeled_rows": int(known.sum()),
        **label_coverage(labels, labelable),
        "positives": int(y.sum()),
        "estimated_auc": expected_auc(scores, calibrate(calibrator, scores)),
        "estimate_calibrated": calibrator is not None,
        "auc": None, "pr_auc": None, "brier": None, "calibration_error": None,
        "mean_score": float(scores.mean()) if len(scores) else None,
        "positive_rate": None,
        "auc_se": None,
    }
    if status == FINAL and len(y):
        both = 0 < y.sum() < len(y)
        out |= {
            "auc": float(roc_auc_score(y, s)) if both and y.sum() >= min_positives else None,
            "pr_auc": float(average_precision_score(y, s)) if both else None,
            "brier": float(brier_score_loss(y, s)),
            "calibration_error": calibration_error(y, s),
            "positive_rate": float(y.mean()),
        }
        if out["auc"] is not None:
            out["auc_se"] = auc_standard_error(out["auc"], int(y.sum()), int(len(y) - y.sum()))
    return out


def auc_standard_error(auc: float | None, positives: int, negatives: int) -> float:
    """Standard error of an AUC from this many positives and negatives.

    Hanley & McNeil (1982), "The meaning and use of the area under a receiver operating
    characteristic (ROC) curve", Radiology 143:29-36. A day with 17 fraud cases has an SE near
    0.05 - as large as the alarm's drop.

    Parameters
    ----------
    auc : float or None
        The AUC, in [0, 1]; None when it could not be computed (one class).
    positives, negatives : int
        Rows of each class behind the AUC.

    Returns
    -------
    float
        The standard error (AUC units); ``inf`` without an AUC or without both classes, so any
        comparison against it stays within noise.
    """
    if auc is None or positives < 1 or negatives < 1:
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc ** 2)
           + (negatives - 1) * (q2 - auc ** 2)) / (positives * negatives)
    return float(np.sqrt(max(var, 0.0)))


def auc_alert(result: dict, reference_auc: float | None, warn_drop: float, error_drop: float,
              noise_sigmas: float = 2.0, per_day: dict | None = None) -> tuple[str, str]:
    """Level and message of one day's AUC against the version's held-out baseline.

    A pending day, or one without a realized AUC, can never alarm. With a per-day baseline on
    the card (``auc_baseline.held_out_per_day``) the day is held to the same statistic - the
    median AUC of one held-out day, ``m`` - within the noise of both sides:
    ``sigma = sqrt(between_day_sd_upper**2 + median_se**2 + auc_se**2)`` (day-to-day variation
    of the per-day AUC net of the held-out days' sampling noise, at its 95% upper confidence
    bound because a few small held-out days estimate it poorly; the uncertainty of ``m``; and
    the day's own Hanley & McNeil 1982 standard error; a random-effects comparison,
    DerSimonian & Laird 1986; cards without the bound use ``between_day_sd``). With
    ``drop = m - auc``:

    - ERROR: ``drop > error_drop`` and ``drop > noise_sigmas * sigma``;
    - WARN: ``drop > warn_drop`` and ``drop > noise_sigmas * sigma``;
    - else ok. At 2 sigmas a day drawn from the held-out process alarms about 2% of the time.

    A card without the per-day baseline (trained before it was recorded, or with fewer than
    ``auc_baseline.MIN_BASELINE_DAYS`` usable held-out days) falls back to the pooled held-out
    AUC: WARN past ``warn_drop`` and beyond one of the day's standard errors (a clean day falls
    short by less than that five days in six: noise, not a finding), ERROR past
    ``error_drop`` and beyond ``noise_sigmas`` of it; the message says so. The pooled AUC runs above a typical day's AUC
    whenever days differ in base rate and score level, so this fallback alarms too often.

    Parameters
    ----------
    result : dict
        Output of ``evaluate_day`` (``status``, ``auc``, ``auc_se``, ``label_coverage``).
    reference_auc : float or None
        Pooled held-out AUC of the version (0-1).
    warn_drop, error_drop : float
        AUC drops (absolute, AUC units) that warn and error.
    noise_sigmas : float
        How many combined standard errors a drop must exceed.
    per_day : dict, optional
        The card's ``metrics.held_out_per_day``; used when it has ``auc_p50``.

    Returns
    -------
    level : {"ok", "warn", "error"}
    message : str
    """
    if result["status"] != FINAL or result["auc"] is None:
        return "ok", f"no alarm: {result['status']}, label coverage {result['label_coverage']:.1%}"
    se = result.get("auc_se") or 0.0
    if per_day and "auc_p50" in per_day:
        center = per_day["auc_p50"]
        between = per_day.get("between_day_sd_upper", per_day["between_day_sd"])
        sigma = float(np.sqrt(between ** 2 + per_day["median_se"] ** 2 + se ** 2))
        drop = center - result["auc"]
        beyond = drop > noise_sigmas * sigma
        level = ("error" if beyond and drop > error_drop else
                 "warn" if beyond and drop > warn_drop else "ok")
        pooled = "n/a" if reference_auc is None else f"{reference_auc:.4f}"
        return level, (f"AUC {result['auc']:.4f} vs held-out per-day median {center:.4f} "
                       f"(p05 {per_day['auc_p05']:.4f} over {per_day['days']} days; pooled "
                       f"{pooled}): drop {drop:+.4f}, noise {sigma:.4f} (day's standard error "
                       f"{se:.4f}, between-day SD up to {between:.4f})")
    if reference_auc is None:
        return "ok", "no alarm: the version has no held-out AUC"
    drop = reference_auc - result["auc"]
    level = "warn" if drop > warn_drop and drop > se else "ok"
    if drop > error_drop and drop > noise_sigmas * se:
        level = "error"
    return level, (f"AUC {result['auc']:.4f} vs pooled held-out {reference_auc:.4f} (drop "
                   f"{drop:+.4f}, standard error {se:.4f}); no per-day held-out baseline on "
                   "this card, so the pooled figure is used")
