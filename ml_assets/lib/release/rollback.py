"""Promotion, rollback and the kill switch, with the rollback-readiness rule: a model only
replaces the champion if the model it replaces could be served again at once - its artifact is
present and matches its SHA-256, and its features are still computable by the current
declarations. Every change is one audited control-plane transaction."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd

from ml_assets.lib.core.artifacts import recorded_file, sha256_file
from ml_assets.lib.core.catalog import BATCH_SCORES, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import UnsafePath
from ml_assets.lib.core.lake_store import read_source
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry, RegistryError
from ml_assets.lib.release.authority import authorize
from ml_assets.lib.scoring.batch import NotScorableError, check_features_computable

KILL_SWITCH = "kill_switch"
DRILL_MAX_AGE = timedelta(days=90)
#: A drill's kill-switch flip is leased for this long; a drill that has not closed it by then
#: died (``kill -9``, a lost host): the flip is flagged and reverted by the next reader.
DRILL_LEASE_FOR = timedelta(minutes=5)
LEASE_EXPIRY_ACTOR = "lease-expiry"


class RollbackRefused(RegistryError):
    """A promotion, rollback or kill-switch flip would leave no safe model to fall back to."""


@dataclass
class Readiness:
    """Whether ``version`` can be served now (``ok``) and, if not, every reason."""
    version: str | None
    ok: bool
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def readiness(registry: Registry, paths: DataPaths, spec: DatasetSpec,
              version: str | None) -> Readiness:
    """Can ``version`` be served right now? Checks bytes (not unpickling) and features."""
    if version is None:
        return Readiness(None, False, ["no version is set for this role"])
    try:
        card = registry.get_model(version)
    except RegistryError as exc:
        return Readiness(version, False, [str(exc)])
    reasons = []
    try:
        path = recorded_file(paths, card["artifact_path"])
    except UnsafePath as exc:
        return Readiness(version, False, [str(exc)])
    if not path.exists():
        reasons.append(f"artifact {card['artifact_path']} is missing")
    elif sha256_file(path) != card["artifact_sha256"]:
        reasons.append(f"artifact {card['artifact_path']} does not match its registered sha256 "
                       f"{card['artifact_sha256'][:12]}... (tampered or corrupt)")
    try:
        check_features_computable(card, spec)
    except NotScorableError as exc:
        reasons.append(str(exc))
    return Readiness(version, not reasons, reasons)


def rollback_readiness(registry: Registry, paths: DataPaths, spec: DatasetSpec) -> Readiness:
    """Is there a model to roll back to (the ``previous`` alias) and is it servable?"""
    return readiness(registry, paths, spec, registry.aliases(spec.model_name)["previous"])


def promote(registry: Registry, paths: DataPaths, spec: DatasetSpec, version: str, actor: str,
            reason: str) -> dict:
    """Make ``version`` champion; the replaced champion becomes ``previous``. Refused (with
    every reason) unless both the candidate and the model it replaces are servable.

    Parameters
    ----------
    version : str
        The candidate. ``actor`` and ``reason`` are audited; the kill switch is reset to off.

    Raises
    ------
    NotAuthorized, RollbackRefused
        ``actor`` not in ``may_act``; ``version`` already champion, or either not servable.
    """
    authorize(registry, spec, "promote", actor, version)
    aliases = registry.aliases(spec.model_name)
    champion = aliases["champion"]
    if version == champion:
        raise RollbackRefused(f"{version} is already champion; nothing to promote")
    problems = [f"candidate {version}: {r}"
                for r in readiness(registry, paths, spec, version).reasons]
    if champion is not None:
        problems += [f"current champion {champion} (would become previous) is not "
                     f"rollback-ready: {r}"
                     for r in readiness(registry, paths, spec, champion).reasons]
    if problems:
        raise RollbackRefused("promotion of " + version + " refused: " + "; ".join(problems))
    changes = {"champion": version, "previous": champion}
    if aliases["challenger"] == version:
        changes["challenger"] = None
    return registry.move_aliases(spec.model_name, changes, actor, "promote", reason,
                                 settings={KILL_SWITCH: "off"}, expect={"champion": champion})


def rollback(registry: Registry, paths: DataPaths, spec: DatasetSpec, actor: str,
             reason: str, from_version: str) -> dict:
    """Make ``previous`` champion again (and the rolled-back model ``previous``, so the
    rollback itself can be undone). The kill switch is reset: the champion is now safe.

    A rollback swaps two aliases, so repeating it undoes it. ``from_version`` is the champion
    the caller decided to roll back: two people rolling back the same bad model a few seconds
    apart get one rollback, and the second is refused instead of swapping the bad model back.

    Raises
    ------
    NotAuthorized, RollbackRefused
        ``actor`` not in ``may_act``; the champion is no longer ``from_version``; ``previous``
        not servable.
    """
    authorize(registry, spec, "rollback", actor, "previous")
    aliases = registry.aliases(spec.model_name)
    if aliases["champion"] != from_version:
        raise RollbackRefused(
            f"rollback from {from_version} refused: the champion is now "
            f"{aliases['champion'] or '(none)'} (previous {aliases['previous'] or '(none)'}); "
            "it changed since you looked - check `status` before acting again")
    ready = readiness(registry, paths, spec, aliases["previous"])
    if not ready.ok:
        raise RollbackRefused("rollback refused: previous model "
                              f"{aliases['previous'] or '(none)'} is not servable: "
                              + "; ".join(ready.reasons))
    return registry.move_aliases(
        spec.model_name, {"champion": aliases["previous"], "previous": from_version},
        actor, "rollback", reason, settings={KILL_SWITCH: "off"},
        expect={"champion": from_version, "previous": aliases["previous"]})


def set_kill_switch(registry: Registry, paths: DataPaths, spec: DatasetSpec, on: bool,
                    actor: str, reason: str) -> dict:
    """On: serve ``previous`` from the next request. Refused when ``previous`` is not servable
    (an on switch pointing at nothing would be a false sense of safety)."""
    if not reason:
        raise RollbackRefused("the kill switch needs a --reason for the audit log")
    authorize(registry, spec, "kill_switch", actor, "on" if on else "off")
    if on:
        ready = rollback_readiness(registry, paths, spec)
        if not ready.ok:
            raise RollbackRefused("kill switch refused: previous model "
                                  f"{ready.version or '(none)'} is not servable: "
                                  + "; ".join(ready.reasons))
    # A person takes the switch over from a running (or dead) drill: its lease must not
    # revert their decision later. Cleared first, so a crash in between reverts nothing.
    registry.close_drill_flip(actor, f"superseded by a manual kill-switch change: {reason}",
                              restore=False)
    registry.set_setting(KILL_SWITCH, "on" if on else "off", actor, reason)
    return {"kill_switch": "on" if on else "off", **registry.aliases(spec.model_name)}


def drill_flip(registry: Registry, now: datetime | None = None) -> dict | None:
    """The open drill flip (a drill switched the kill switch on and has not switched it back).

    Parameters
    ----------
    registry : Registry
        The control plane.
    now : datetime, optional
        The time to judge the lease by (UTC; default now).

    Returns
    -------
    dict or None
        The lease (``actor``, ``pid``, ``host``, ``opened_at``, ``expires_at``, ...) with
        ``expired`` (bool) and ``message`` (what a person should know); None when no drill
        flip is open.
    """
    lease = registry.drill_lease()
    if lease is None:
        return None
    expired = (now or datetime.now(UTC)) >= datetime.fromisoformat(lease["expires_at"])
    message = (f"rollback drill by {lease['actor']} (pid {lease['pid']} on {lease['host']}) "
               f"switched the kill switch on at {lease['opened_at']}; lease "
               + (f"EXPIRED at {lease['expires_at']}: the drill died without switching it "
                  "back" if expired else f"open until {lease['expires_at']}"))
    return {**lease, "expired": expired, "message": message}


def expire_drill_flip(registry: Registry, now: datetime | None = None) -> dict | None:
    """Revert a dead drill's flip: if the open drill flip's lease has expired, switch the kill
    switch back off (only if it is still on as the drill left it), clear the lease and record
    the drill as failed, audited as ``lease-expiry``.

    Parameters
    ----------
    registry : Registry
        The control plane.
    now : datetime, optional
        The time to judge the lease by (UTC; default now).

    Returns
    -------
    dict or None
        The closed lease with ``restored`` settings; None when nothing had expired.
    """
    flip = drill_flip(registry, now)
    if flip is None or not flip["expired"]:
        return None
    closed = registry.close_drill_flip(LEASE_EXPIRY_ACTOR, flip["message"],
                                       only_if={KILL_SWITCH: "on"})
    if closed is None:  # the drill (or another reader) closed it a moment ago
        return None
    registry.record_drill(flip["model_name"], flip["kind"], flip["actor"], False, None,
                          flip["champion"], flip["previous"],
                          {"errors": [flip["message"]], "closed_by": LEASE_EXPIRY_ACTOR,
                           "restored": closed["restored"]})
    return closed


def drill_status(registry: Registry, spec: DatasetSpec, now: datetime | None = None) -> dict:
    """Age of the last successful rollback drill against the 90-day rule; not ok while a
    drill's kill-switch flip is open past its lease (whatever the last drill's age)."""
    now = now or datetime.now(UTC)
    flip = drill_flip(registry, now)
    if flip is not None and flip["expired"]:
        return {"ok": False, "last_successful_drill": None, "age_days": None,
                "reason": flip["message"], "drill_flip": flip}
    last = registry.drills(spec.model_name, limit=1, only_ok=True)
    if not last:
        return {"ok": False, "last_successful_drill": None, "age_days": None,
                "reason": "no successful rollback drill recorded"}
    age = now - datetime.fromisoformat(last[0]["ts"])
    ok = age <= DRILL_MAX_AGE
    return {"ok": ok, "last_successful_drill": last[0]["ts"],
            "age_days": round(age.total_seconds() / 86_400, 2),
            "reason": "ok" if ok else f"last successful drill is {age.days} days old (> 90)"}


# -- rollback drill -----------------------------------------------------------------------
def probe_event_id(paths: DataPaths, spec: DatasetSpec, versions: list[str]):
    """An event with precomputed scores from every given version (newest partition first)."""
    for path in Catalog(paths.lake).table(BATCH_SCORES).files()[::-1][:48]:
        df = pd.read_parquet(read_source(path), columns=[spec.event_id, "model_version"])
        counts = df[df["model_version"].isin(versions)].groupby(spec.event_id).size()
        both = counts[counts == len(set(versions))]
        if len(both):
            return both.index.tolist()[0]
    raise RollbackRefused(f"no event has scores from all of {versions}; rescore batch_scores "
                          "so the previous model has scores to serve")


def _wait_for(client, path: str, version: str, timeout_s: float) -> float | None:
    """Poll until ``version`` answers; seconds waited, or None on timeout. Any non-200 fails."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        r = client.get(path)
        r.raise_for_status()
        if r.json()["model_version"] == version:
            return time.perf_counter() - t0
    return None


def check_drill_allowed(registry: Registry, spec: DatasetSpec, actor: str) -> dict:
    """The checks that refuse a rollback drill before anything is flipped: run them before
    starting a server for it (minutes on a large lake), so a refusal comes at once.

    Parameters
    ----------
    registry : Registry
    spec : DatasetSpec
    actor : str
        Who drills; must be in the contract's ``may_act``.

    Returns
    -------
    dict
        The model's aliases (``champion``, ``previous``...), after reverting the flip of an
        earlier drill whose lease expired.

    Raises
    ------
    NotAuthorized, RollbackRefused
        ``actor`` not in ``may_act``; another drill's flip is open; the kill switch is on.
    """
    authorize(registry, spec, "drill", actor, "kill_switch")
    expire_drill_flip(registry)  # an earlier drill that died: revert its flip first
    open_flip = drill_flip(registry)
    if open_flip is not None:
        raise RollbackRefused(f"another drill is running: {open_flip['message']}")
    if registry.get_setting(KILL_SWITCH, "off") == "on":
        raise RollbackRefused("kill switch is already on (an incident?); not drilling now")
    return registry.aliases(spec.model_name)


def run_rollback_drill(registry: Registry, paths: DataPaths, spec: DatasetSpec, base_url: str,
                       actor: str, timeout_s: float = 60.0, confirm_requests: int = 20,
                       lease_for: timedelta = DRILL_LEASE_FOR) -> dict:
    """Flip the kill switch, verify through the HTTP serving path that ``previous`` answers,
    flip back, verify the champion answers again, and record the drill.

    The flip is written with a lease (``lease_for``) in the same transaction: if this process
    dies before flipping back, the next reader past the lease (``drill_lease_sensor``,
    ``ml-assets status``, the next drill) reverts it and records the drill as failed, and
    ``/health``, ``drill_recency`` and ``rollback_readiness`` flag it until then.

    Parameters
    ----------
    base_url : str
        The serving app (``/scores/<event_id>`` and ``/health``).
    timeout_s : float
        Seconds to wait for each expected version to answer.
    confirm_requests : int
        Requests after the flip that must all be answered by ``previous``.

    Returns
    -------
    dict
        ``ok``, the two versions, ``time_to_effect_ms``/``restore_ms`` (ms), ``errors``,
        ``drill_id``. A failure after the checks below is a failed drill, not an exception.

    Raises
    ------
    NotAuthorized, RollbackRefused
        ``actor`` not in ``may_act``; another drill's flip is open; the kill switch is on.
    """
    aliases = check_drill_allowed(registry, spec, actor)
    champion, previous = aliases["champion"], aliases["previous"]
    result = {"ok": False, "champion_version": champion, "previous_version": previous,
              "time_to_effect_ms": None, "restore_ms": None, "url": base_url, "errors": []}
    flipped = False
    try:
        ready = rollback_readiness(registry, paths, spec)
        if not ready.ok:
            raise RollbackRefused("previous model is not servable: " + "; ".join(ready.reasons))
        probe = f"/scores/{probe_event_id(paths, spec, [champion, previous])}"
        with httpx.Client(base_url=base_url, timeout=5.0) as client:
            if _wait_for(client, probe, champion, timeout_s) is None:
                raise RollbackRefused(f"serving at {base_url} does not answer with {champion}")
            t0 = time.perf_counter()
            opened = datetime.now(UTC)
            lease = {"kind": "rollback", "model_name": spec.model_name, "actor": actor,
                     "pid": os.getpid(), "host": socket.gethostname(),
                     "opened_at": opened.isoformat(),
                     "expires_at": (opened + lease_for).isoformat(),
                     "champion": champion, "previous": previous,
                     "restore": {KILL_SWITCH: "off"}}
            if not registry.open_drill_flip(lease, {KILL_SWITCH: "on"}, actor,
                                            "rollback drill"):
                raise RollbackRefused("another drill opened a flip a moment ago")
            flipped = True
            waited = _wait_for(client, probe, previous, timeout_s)
            if waited is None:
                raise RollbackRefused(f"{previous} did not answer within {timeout_s:.0f}s")
            result["time_to_effect_ms"] = round((time.perf_counter() - t0) * 1e3, 2)
            answers = {client.get(probe).json()["model_version"]
                       for _ in range(confirm_requests)}
            if answers != {previous}:
                raise RollbackRefused(f"after the flip the service answered with {answers}")
            health = client.get("/health").json()
            if health["model_version"] != previous or health.get("degraded"):
                raise RollbackRefused(f"health disagrees after the flip: {health['model_version']}"
                                      f" degraded={health.get('degraded')}")
            t1 = time.perf_counter()
            registry.close_drill_flip(actor, "rollback drill: restore")
            flipped = False
            if _wait_for(client, probe, champion, timeout_s) is None:
                raise RollbackRefused(f"{champion} did not answer again after the switch was off")
            result["restore_ms"] = round((time.perf_counter() - t1) * 1e3, 2)
        result["ok"] = True
    except Exception as exc:  # any failure is a failed drill, recorded as such
        result["errors"].append(f"{type(exc).__name__}: {exc}")
    finally:
        if flipped:
            registry.close_drill_flip(actor, "rollback drill: restore")
    result["drill_id"] = registry.record_drill(
        spec.model_name, "rollback", actor, result["ok"], result["time_to_effect_ms"],
        champion, previous, {k: result[k] for k in ("restore_ms", "url", "errors")})
    return result
