"""Docs domain: model card, interface contract, runbook and shadow checklist as Markdown,
re-rendered by ``docs_refresh_sensor`` whenever the control plane records a change."""

import dagster as dg

from ml_assets.defs.docs.assets import build_docs_assets
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.docs import documents


def build_docs_refresh(spec: DatasetSpec, job_name: str) -> dg.SensorDefinition:
    """The sensor that re-renders the documents when a fact they render changes.

    Every such fact (a drill, a promotion or rollback, a rollout stage, an alias, the kill
    switch) is written to the control plane together with an audit row in one transaction, so
    the newest audit id is a complete change token: the sensor's cursor is that id, and a new
    id requests one run of the documents' job keyed by it (a re-evaluated tick never runs twice).

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (model name).
    job_name : str
        The job materializing the documents.

    Returns
    -------
    dg.SensorDefinition
        ``docs_refresh_sensor``, RUNNING by default also for a historical dataset: it follows
        the control plane, not the clock.
    """
    @dg.sensor(name="docs_refresh_sensor", job_name=job_name, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Re-renders the documents when the control plane's audit log moves "
                           "(drill, promotion, rollback, rollout stage, kill switch), so the "
                           "runbook and model card never show a stale fact.")
    def docs_refresh_sensor(context: dg.SensorEvaluationContext,
                            project: dg.ResourceParam[Workspace]):
        newest = project.registry.audit_log(limit=1)
        head = str(newest[0]["id"]) if newest else None
        if head is None or head == context.cursor:
            return dg.SkipReason("no control-plane change since the documents were rendered")
        if not documents.documented_versions(project.registry, spec):
            return dg.SensorResult(skip_reason=f"{spec.model_name} has no champion or "
                                               "challenger to document yet", cursor=head)
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"audit-{head}")],
                               cursor=head)

    return docs_refresh_sensor


def build_defs(spec: DatasetSpec) -> dg.Definitions:
    """The generated documents, their job and the sensor that keeps them current.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (model name, owner).

    Returns
    -------
    dg.Definitions
        Without resources: ``ml_assets.definitions`` adds them once for every domain.
    """
    assets = build_docs_assets(spec)
    docs_job = dg.define_asset_job(
        "docs_job", selection=dg.AssetSelection.assets(*assets),
        description="Render the model card, shadow checklist, rollback runbook and interface "
                    "contract of the serving versions from the control plane's facts.")
    return dg.Definitions(assets=assets, jobs=[docs_job],
                          sensors=[build_docs_refresh(spec, docs_job.name)])
