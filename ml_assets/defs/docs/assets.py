"""Docs group: the four documents of the serving versions, rendered from recorded facts by
``lib/docs/documents.py``, written under ``docs/<model>/<version>/`` and shown in the UI."""

import dagster as dg

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.docs import documents

DESCRIPTIONS = {
    "model_card": "Model card: dataset SHA, window, seed, schema, commit, lockfile, held-out "
                  "and frozen-reference metrics, serving SLO, owner, deploy date, rollback.",
    "shadow_checklist": "Shadow-mode checklist: every gate item with its measured value and "
                        "status, offline vs online, latency, edge cases, sign-off record.",
    "rollback_runbook": "Rollback runbook: exact commands for this deployment, how to verify "
                        "the previous model serves, who to notify, last drill, postmortem.",
    "interface_contract": "Interface contract: API schema, SLOs with measured values, error "
                          "budget and consumption, ownership, rollback authority, signatures.",
}


def build_docs_assets(spec: DatasetSpec) -> list:
    def doc_asset(name: str):
        @dg.asset(name=name, group_name="docs", owners=[spec.owner], kinds={"markdown"},
                  deps=["rollout_state", "shadow_report", "candidate_model"],
                  description=DESCRIPTIONS[name])
        def _doc(project: dg.ResourceParam[Workspace]) -> dg.MaterializeResult:
            registry = project.registry
            versions = documents.documented_versions(registry, spec)
            metadata: dict = {"versions": dg.MetadataValue.json(versions)}
            for version in versions:
                path = documents.document_dir(project.paths, spec, version) / f"{name}.md"
                text = documents.RENDERERS[name](project.paths, spec, registry, version)
                documents.write_text(path, text)
                metadata[version] = dg.MetadataValue.md(text)
                metadata[f"{version} path"] = dg.MetadataValue.path(str(path))
            return dg.MaterializeResult(metadata=metadata)
        return _doc

    return [doc_asset(name) for name in documents.DOCUMENTS]
