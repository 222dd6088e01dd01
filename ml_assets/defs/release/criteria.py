"""The success-criteria scorecard (docs): measured reproduce time of the current champion,
rollback-drill age, drift-before-business lead time, and the last three deploys."""

import dagster as dg

from ml_assets.defs.training.reproduce import record_reproduction
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import atomic_write_bytes
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.release import criteria
from ml_assets.lib.training.reproduce import reproduce


def build_criteria_assets(spec: DatasetSpec) -> list:
    @dg.asset(name="success_criteria", group_name="docs", owners=[spec.owner],
              deps=["candidate_model"], kinds={"markdown"},
              description="The playbook's success criteria, measured: retrains the current "
                          "champion from raw (identical? how long?), days since the last "
                          "rollback drill, lead of drift over the business metric in the last "
                          "incident drill, and the last three deploys with their incidents. "
                          "Written to docs/success_criteria.md.")
    def success_criteria(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace]) -> dg.MaterializeResult:
        champion = project.registry.aliases(spec.model_name)["champion"]
        if champion is None:
            raise dg.Failure("no champion yet: materialize candidate_model first")
        record_reproduction(project, reproduce(project, champion))
        card = criteria.scorecard(project)
        text = criteria.render_markdown(card)
        atomic_write_bytes(project.paths.docs / "success_criteria.md", text.encode())
        rep, drill, inc = card["reproduce"], card["rollback_drill"], card["incident_drill"]
        numbers = {"reproduce_seconds": float(rep["seconds"]),
                   "reproduce_identical": int(rep["identical"]),
                   "boring_deploys": sum(int(d["boring"]) for d in card["last_deploys"]),
                   "deploys_shown": len(card["last_deploys"])}
        if drill["days_since_last"] is not None:
            numbers["days_since_rollback_drill"] = float(drill["days_since_last"])
        if inc and inc["min_lead_days"] is not None:
            numbers["drift_lead_days"] = float(inc["min_lead_days"])
        return dg.MaterializeResult(metadata={**numbers, "champion": champion,
                                              "scorecard": dg.MetadataValue.md(text)})

    return [success_criteria]
