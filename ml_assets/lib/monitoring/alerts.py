"""Structured alert records from failed checks, and the hook point a team wires to paging.

Each alert is one JSON file named by its id (a hash of the check execution), written
atomically, so a sensor that sees the same failure twice writes it once. Business alerts
(the metric the model exists to move) at ERROR page; diagnostic ones (drift, prediction
shift, delayed AUC) open a ticket; broken contracts stop the pipeline and page.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ml_assets.lib.core.paths import atomic_write_bytes

WEBHOOK_ENV = "ML_ASSETS_ALERT_WEBHOOK"
BUSINESS_ASSETS = frozenset({"business_metric"})


@dataclass(frozen=True)
class Alert:
    alert_id: str
    asset: str
    check: str
    level: str  # "warn" | "error"
    category: str  # "business" | "diagnostic" | "pipeline"
    route: str  # "page" | "ticket"
    description: str
    run_id: str
    partition: str | None
    created_at: str
    metadata: dict

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, default=str).encode()


def classify(asset: str, level: str, blocking: bool) -> tuple[str, str]:
    """(category, route) of a failed check."""
    category = "business" if asset in BUSINESS_ASSETS else "pipeline" if blocking else "diagnostic"
    page = level == "error" and category in ("business", "pipeline")
    return category, "page" if page else "ticket"


def make_alert(asset: str, check: str, level: str, blocking: bool, description: str,
               run_id: str, partition: str | None, created_at: str, metadata: dict,
               execution_id: int) -> Alert:
    category, route = classify(asset, level, blocking)
    alert_id = hashlib.sha256(f"{asset}:{check}:{run_id}:{execution_id}".encode()).hexdigest()[:20]
    return Alert(alert_id, asset, check, level, category, route, description, run_id,
                 partition, created_at, metadata)


def alerts_dir(data_root: Path) -> Path:
    return Path(data_root) / "alerts"


def write_alert(directory: Path, alert: Alert) -> bool:
    """Write the record once; False when it already exists."""
    path = directory / f"{alert.alert_id}.json"
    if path.exists():
        return False
    atomic_write_bytes(path, alert.to_json())
    return True


def read_alerts(directory: Path) -> list[dict]:
    files = sorted(Path(directory).glob("*.json")) if Path(directory).exists() else []
    return sorted((json.loads(p.read_bytes()) for p in files), key=lambda a: a["created_at"])


AlertHook = Callable[[Alert], None]


def webhook_hook(url: str, timeout: float = 5.0) -> AlertHook:
    """POST each alert as JSON (PagerDuty/Opsgenie/Slack relays accept this shape)."""
    import httpx

    def post(alert: Alert) -> None:
        httpx.post(url, content=alert.to_json(), timeout=timeout,
                   headers={"content-type": "application/json"}).raise_for_status()

    return post


def configured_hooks() -> list[AlertHook]:
    url = os.environ.get(WEBHOOK_ENV)
    return [webhook_hook(url)] if url else []
