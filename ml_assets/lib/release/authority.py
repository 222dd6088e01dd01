"""Who may change what serves: the interface contract's rollback authority, enforced.

Every change of the serving state - the kill switch, a rollback, a promotion, a rollout stage, a
rollback drill - passes :func:`authorize` first, whoever calls it (CLI, drill, demo, Dagster).
An identity that is not a printable name is refused before anything is recorded; a printable
one that the contract does not list is refused and the refusal is audited."""

from __future__ import annotations

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.registry import Registry, RegistryError
from ml_assets.lib.core.registry.audit import check_identity
from ml_assets.lib.docs.interface_contract import contract_path, load_contract


class NotAuthorized(RegistryError):
    """The actor is not listed in the contract's rollback authority (the refusal is audited)."""


def authorize(registry: Registry, spec: DatasetSpec, action: str, actor: str,
              target: str) -> None:
    """Refuse ``actor`` unless the contract's ``[rollback_authority] may_act`` lists it.

    Parameters
    ----------
    registry : Registry
        The control plane; a refusal is appended to its audit log as ``refused:<action>``.
    spec : DatasetSpec
        The served dataset; its interface contract holds the list.
    action : str
        ``kill_switch``, ``rollback``, ``promote``, ``rollout`` or ``drill``.
    actor : str
        Who asks.
    target : str
        What the change is about (a version, ``on``/``off``, a stage), for the audit log.

    Raises
    ------
    RegistryError
        The identity is blank or not printable (nothing recorded).
    NotAuthorized
        The contract does not list ``actor`` (by default it lists only Dagster runs); the
        message names the file to list it in.
    ContractError
        The contract's override file is malformed (``load_contract``).
    """
    check_identity(actor, action)
    if not load_contract(spec).may_act(actor):
        why = (f"{actor!r} may not {action.replace('_', ' ')} {spec.model_name}: not listed in "
               f"[rollback_authority] may_act of its interface contract ({contract_path(spec)})")
        registry.audit_refusal(actor, action, str(target), why)
        raise NotAuthorized(why + "; the refusal is in the audit log")
