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
    """One alert record: a failed check, its level, category and route, as written to the alerts dir.

    ``level`` is ``"warn"`` or ``"error"``; ``category`` ``"business"``, ``"diagnostic"`` or
    ``"pipeline"``; ``route`` ``"page"`` or ``"ticket"``; ``created_at`` an ISO timestamp (UTC).
    """
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
        """The record as sorted-key JSON bytes (non-JSON values as ``str``)."""
        return json.dumps(asdict(self), sort_keys=True, default=str).encode()


def classify(asset: str, level: str, blocking: bool) -> tuple[str, str]:
    """Category and route of a failed check.

    Parameters
    ----------
    asset : str
        Asset the check belongs to; ``business_metric`` makes it a business alert.
    level : {"warn", "error"}
    blocking : bool
        Whether the check blocks the pipeline (a broken contract).

    Returns
    -------
    category, route : str
        ``"business"``/``"pipeline"``/``"diagnostic"``; ``"page"`` for an ERROR business or
        pipeline alert, else ``"ticket"``.
    """
    category = "business" if asset in BUSINESS_ASSETS else "pipeline" if blocking else "diagnostic"
    page = level == "error" and category in ("business", "pipeline")
    return category, "page" if page else "ticket"


def make_alert(asset: str, check: str, level: str, blocking: bool, description: str,
               run_id: str, partition: str | None, created_at: str, metadata: dict,
               execution_id: int) -> Alert:
    """An ``Alert`` for one check execution, its id a hash of asset, check, run and execution.

    Parameters
    ----------
    asset, check : str
    level : {"warn", "error"}
    blocking : bool
    description : str
    run_id : str
    partition : str or None
    created_at : str
        ISO timestamp (UTC).
    metadata : dict
    execution_id : int
        Distinguishes executions of the same check in one run.

    Returns
    -------
    Alert
        ``alert_id`` is the first 20 hex chars of the SHA-256, so the same failure seen twice maps
        to the same record.
    """
    category, route = classify(asset, level, blocking)
    alert_id = hashlib.sha256(f"{asset}:{check}:{run_id}:{execution_id}".encode()).hexdigest()[:20]
    return Alert(alert_id, asset, check, level, category, route, description, run_id,
                 partition, created_at, metadata)


def alerts_dir(data_root: Path) -> Path:
    """Directory of alert records under the data root.

    Parameters
    ----------
    data_root : Path

    Returns
    -------
    Path
        ``data_root / "alerts"``.
    """
    return Path(data_root) / "alerts"


def write_alert(directory: Path, alert: Alert) -> bool:
    """Write the record once, atomically, as ``<alert_id>.json``.

    Parameters
    ----------
    directory : Path
    alert : Alert

    Returns
    -------
    bool
        False when the record already exists.
    """
    path = directory / f"{alert.alert_id}.json"
    if path.exists():
        return False
    atomic_write_bytes(path, alert.to_json())
    return True


def read_alerts(directory: Path) -> list[dict]:
    """Every alert record in ``directory``, oldest first.

    Parameters
    ----------
    directory : Path

    Returns
    -------
    list of dict
        One dict per record (``Alert`` fields), sorted by ``created_at``; empty without the directory.
    """
    files = sorted(Path(directory).glob("*.json")) if Path(directory).exists() else []
    return sorted((json.loads(p.read_bytes()) for p in files), key=lambda a: a["created_at"])


AlertHook = Callable[[Alert], None]


def webhook_hook(url: str, timeout: float = 5.0) -> AlertHook:
    """A hook that POSTs each alert as JSON (PagerDuty/Opsgenie/Slack relays accept this shape).

    Parameters
    ----------
    url : str
    timeout : float
        Seconds per request.

    Returns
    -------
    callable
        ``hook(alert)``; raises ``httpx.HTTPStatusError`` on a non-2xx answer.
    """
    import httpx

    def post(alert: Alert) -> None:
        httpx.post(url, content=alert.to_json(), timeout=timeout,
                   headers={"content-type": "application/json"}).raise_for_status()

    return post


def configured_hooks() -> list[AlertHook]:
    """The hooks configured by the environment: a webhook when ``ML_ASSETS_ALERT_WEBHOOK`` is set."""
    url = os.environ.get(WEBHOOK_ENV)
    return [webhook_hook(url)] if url else []
