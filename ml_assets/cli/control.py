"""Control-plane commands: ``kill-switch``, ``promote``, ``rollback``, ``rollout`` and ``drill
rollback``. Each acts through the workspace's registry; a refusal exits 1 with the reason."""

from ml_assets.cli.output import control_result
from ml_assets.lib.core.workspace import Workspace


def cmd_kill_switch(args, ws: Workspace) -> int:
    """``kill-switch on|off --reason``: on serves the previous model from the next request."""
    from ml_assets.lib.release import rollback

    return control_result(args.json, lambda: rollback.set_kill_switch(
        ws.registry, ws.paths, ws.spec, args.state == "on", args.actor, args.reason))


def cmd_promote(args, ws: Workspace) -> int:
    """``promote VERSION``: champion if the current champion is rollback-ready."""
    from ml_assets.lib.release import rollback

    return control_result(args.json, lambda: rollback.promote(
        ws.registry, ws.paths, ws.spec, args.version, args.actor, args.reason))


def cmd_rollback(args, ws: Workspace) -> int:
    """``rollback --from VERSION``: the previous model replaces champion VERSION."""
    from ml_assets.lib.release import rollback

    return control_result(args.json, lambda: rollback.rollback(
        ws.registry, ws.paths, ws.spec, args.actor, args.reason, args.from_version))


def cmd_drill_rollback(args, ws: Workspace) -> int:
    """``drill rollback``: flip, verify through the HTTP serving path, flip back (exit 1 unless
    the drill passed). Without ``--url`` a server is started on localhost for the drill."""
    from datetime import timedelta

    from ml_assets.serving.app import rollback_drill

    lease = timedelta(seconds=args.lease_seconds)

    def drill() -> dict:
        return rollback_drill(ws.registry, ws.paths, ws.spec, args.actor, args.url,
                              lease_for=lease)

    return control_result(args.json, drill)


def cmd_rollout(args, ws: Workspace) -> int:
    """``rollout shadow|1|5|25|50|100|pause``: move the challenger's staged rollout (stage 1 needs
    the shadow gate, later stages their dwell; ``--override`` is audited)."""
    from ml_assets.lib.monitoring.tables import label_horizon
    from ml_assets.lib.release import rollout

    registry, paths, spec = ws.registry, ws.paths, ws.spec
    as_of, horizon = rollout.data_end(paths, spec), label_horizon(paths)

    def act() -> dict:
        if as_of is None:
            raise rollout.RolloutRefused("no batch_scores yet: nothing has been shadowed")
        if args.stage == "1":
            st = rollout.start(registry, paths, spec, args.actor, as_of, horizon,
                               override=args.override, reason=args.reason or "")
        else:
            st = rollout.step(registry, paths, spec, args.stage, args.actor, as_of, horizon,
                              override=args.override, reason=args.reason or "")
        return {"version": st["version"], "stage": st["stage"], "since": st["since"],
                **registry.aliases(spec.model_name)}

    return control_result(args.json, act)


def add_parsers(sub, actor: str) -> None:
    """Register the control commands on the ``ml-assets`` subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The top-level subparsers.
    actor : str
        Default ``--actor`` for the audit log (``$USER``).
    """
    kill = sub.add_parser("kill-switch", help="on: serve the previous model from the next request")
    kill.add_argument("state", choices=["on", "off"])
    kill.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    kill.set_defaults(func=cmd_kill_switch)
    promote = sub.add_parser("promote", help="make VERSION champion if the current champion "
                                             "is rollback-ready (it becomes previous)")
    promote.add_argument("version")
    promote.add_argument("--reason", default="promoted from the CLI")
    promote.set_defaults(func=cmd_promote)
    back = sub.add_parser("rollback", help="make the previous model champion again")
    back.add_argument("--from", dest="from_version", required=True, metavar="VERSION",
                      help="the champion you are rolling back (refused if it has changed "
                           "since, e.g. a colleague already rolled it back)")
    back.add_argument("--reason", default="rollback from the CLI")
    back.set_defaults(func=cmd_rollback)
    roll = sub.add_parser("rollout", help="move the challenger's staged rollout (1 needs the "
                                          "shadow gate; later stages need their dwell)")
    roll.add_argument("stage", choices=["shadow", "1", "5", "25", "50", "100", "pause"])
    roll.add_argument("--override", action="store_true",
                      help="go ahead although the gate or the stage evidence says no (audited)")
    roll.add_argument("--reason", help="why (required with --override; in the audit log)")
    roll.set_defaults(func=cmd_rollout)
    for p in (kill, promote, back, roll):
        p.add_argument("--actor", default=actor, help="who (default $USER), for the audit log")
