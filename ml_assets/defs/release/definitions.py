"""Release domain: the challenger's shadow report and promotion gate, the staged rollout, the
rollback drill, and the success-criteria scorecard."""

import dagster as dg

from ml_assets.defs.release.assets import build_rollout_assets, build_rollout_checks
from ml_assets.defs.release.criteria import build_criteria_assets
from ml_assets.defs.release.rollback import build_rollback_defs
from ml_assets.lib.core.datasets import DatasetSpec


def build_defs(spec: DatasetSpec) -> dg.Definitions:
    """``shadow_report`` (``shadow_job``), ``rollout_state`` and ``promotion_gate``; the rollback
    drill (asset, checks, ``rollback_drill_job``, monthly schedule); ``success_criteria``
    (``rollout_job`` runs it after ``rollout_state``).

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec; its ``shadow`` and ``rollout`` policies drive the gate and stages.

    Returns
    -------
    dg.Definitions
        Without resources: ``ml_assets.definitions`` adds them once for every domain.
    """
    shadow_job = dg.define_asset_job(
        "shadow_job", selection=dg.AssetSelection.assets("shadow_report"),
        description="Compare the challenger's shadow scores with the champion's, day by day.")
    rollout_job = dg.define_asset_job(
        "rollout_job", selection=dg.AssetSelection.assets("rollout_state", "success_criteria"),
        description="Walk the rollout stages over the data seen since the last run, then "
                    "measure the playbook's success criteria.")
    rollout = dg.Definitions(assets=[*build_rollout_assets(spec), *build_criteria_assets(spec)],
                             asset_checks=build_rollout_checks(spec),
                             jobs=[shadow_job, rollout_job])
    return dg.Definitions.merge(rollout, build_rollback_defs(spec))
