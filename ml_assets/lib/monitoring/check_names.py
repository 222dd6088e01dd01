"""Monitoring check names, written once: the Dagster checks (``defs/monitoring/checks.py``) and
``ml-assets monitor`` (``cli/monitor_report.py``) both name what they judge from here, so the
report and the UI never disagree. Renaming one loses its history in the Dagster UI."""

SCORE_SHIFT = "score_shift"  # on prediction_drift
AUC_VS_HELD_OUT = "auc_vs_held_out"  # on delayed_evaluation
MISSED_POSITIVE_REPORTS = "missed_positive_reports"  # on early_label_watch
BUSINESS_THRESHOLDS = "business_thresholds"  # on business_metric


def psi_check(feature: str) -> str:
    """The name of the PSI check of one feature on ``feature_drift``.

    Parameters
    ----------
    feature : str
        A declared feature name.

    Returns
    -------
    str
        ``psi_<feature>``.
    """
    return f"psi_{feature}"
