"""The four documents every shipped model has, rendered as Markdown from recorded facts only:
registry cards, aliases, the recorded shadow report, rollout transitions and drills from the
audit log, and the interface contract file. Nothing is typed in by hand; a fact that does not
exist yet is stated as such (e.g. "not deployed: current role challenger").

Each document opens with a ``| Field | Value |`` table of its required fields
(``REQUIRED_FIELDS``), which ``parse_fields`` reads back.
"""

from __future__ import annotations

from pathlib import Path

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import confined
from ml_assets.lib.core.paths import DataPaths, atomic_write_bytes
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.docs.renderers import (
    interface_contract,
    model_card,
    rollback_runbook,
    shadow_checklist,
)

DOCUMENTS = ("model_card", "shadow_checklist", "rollback_runbook", "interface_contract")
REQUIRED_FIELDS = {
    "model_card": ["Version", "Owner", "Dataset SHA-256", "Training window", "Label cutoff",
                   "Seed", "Feature schema version", "Dataset spec", "Code commit",
                   "Lockfile SHA-256",
                   "Artifact SHA-256", "Held-out metrics", "Held-out per-day AUC",
                   "Frozen-reference metrics",
                   "Serving SLO", "Current role", "Deploy date", "Rollback procedure"],
    "shadow_checklist": ["Challenger", "Champion", "Shadow window", "Days of data",
                         "Label horizon", "Gate", "Items passed", "Recorded decision"],
    "rollback_runbook": ["Deployment", "Champion", "Rollback target", "Rollback target ready",
                         "Kill switch", "Last drill", "Drill age", "Notify"],
    "interface_contract": ["Dataset", "Contract version", "Contract file SHA-256",
                           "Feature schema version", "Latency SLO (predict)",
                           "Measured latency", "Error budget", "Error budget consumed",
                           "Ownership", "Rollback authority", "Signed by"],
}


def parse_fields(markdown: str) -> dict[str, str]:
    """The first ``| Field | Value |`` table of a document, as a dict."""
    out, inside = {}, False
    for line in markdown.splitlines():
        if line.startswith("| Field | Value |"):
            inside = True
        elif inside and line.startswith("|---"):
            continue
        elif inside and line.startswith("| "):
            key, _, value = line[2:-2].partition(" | ")
            out[key] = value.replace("\\|", "|")
        elif inside:
            break
    return out


RENDERERS = {"model_card": model_card, "shadow_checklist": shadow_checklist,
             "rollback_runbook": rollback_runbook, "interface_contract": interface_contract}


def document_dir(paths: DataPaths, spec: DatasetSpec, version: str) -> Path:
    """``docs/<model>/<version>/``; the version comes from the control plane or a run, so it
    must be a bare name inside ``docs/<model>/`` (``UnsafePath`` otherwise)."""
    return confined(paths.docs / spec.model_name, version, "model version")


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_documents(paths: DataPaths, spec: DatasetSpec, registry: Registry,
                    version: str) -> dict[str, Path]:
    """Render and atomically write the four documents under ``document_dir``: name -> file."""
    out = {}
    for name, render in RENDERERS.items():
        out[name] = document_dir(paths, spec, version) / f"{name}.md"
        write_text(out[name], render(paths, spec, registry, version))
    return out


def documented_versions(registry: Registry, spec: DatasetSpec) -> list[str]:
    """Champion and challenger (the versions serving or about to serve)."""
    aliases = registry.aliases(spec.model_name)
    return [v for v in dict.fromkeys((aliases["champion"], aliases["challenger"])) if v]
