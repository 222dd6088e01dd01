"""The incident drill's day loop, run through the Dagster definitions the deployment schedules.

Each simulated day, in the order a real day would: the day's landing files arrive; the hourly
scoring job runs over the day's hours (contracts, features, scores and their blocking checks);
at 01:45 the daily monitoring schedule is evaluated and its run executed; at 02:30 the labels
schedule is evaluated (a missing file is its skip reason - the freshness alarm) and label files
that arrived are ingested; then the label-arrival sensor ticks and its run requests (early label
watch, business metric, delayed evaluation over the days the new labels touch) are executed.
Schedules and sensors are evaluated with the simulated time and their requests run in-process
on a throwaway instance. Alarms are the checks' verdicts: failed checks and failed steps of
each run, plus the per-day rows the monitoring checks judge (a check reports only its worst
day; the drill needs every day to count clean-day alarms)."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from ml_assets.definitions import build_definitions
from ml_assets.defs.monitoring.assets import LABEL_DRIVEN_ASSETS, monitoring_asset_names
from ml_assets.defs.partitions import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    day_key,
    event_range_tags,
    range_tags,
)
from ml_assets.defs.scoring.definitions import EVENT_ASSETS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.stopping import Stopped
from ml_assets.lib.ingest.landing import label_feeds
from ml_assets.lib.monitoring.tables import contiguous_ranges
from ml_assets.lib.release import shadow
from ml_assets.scenarios.incidents import (
    DrillPlan,
    DrillState,
    alarm,
    deploy_models,
    held_label_days,
    new_world,
    record_monitoring_rows,
    redeliver,
    summarize,
    train_at,
)
from ml_assets.scenarios.runner import run, step_failure_message

LABELS_AT = timedelta(hours=2, minutes=30)  # the daily labels schedule's time of day
MONITORING_AT = timedelta(hours=1, minutes=45)


@dataclass
class Pipeline:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    sensor_cursor: str | None = None

    def run(self, selection, tags: dict) -> dg.ExecuteInProcessResult:
        return run(self.defs, self.instance, selection, tags)

    def schedule(self, name: str, at: datetime):
        # ``with``: the context opens its own copy of a persistent instance and must close it
        with dg.build_schedule_context(instance=self.instance, scheduled_execution_time=at,
                                       resources=self.defs.resources) as ctx:
            return self.defs.get_schedule_def(name)(ctx)


def _verdicts(state: DrillState, result: dg.ExecuteInProcessResult, fired: int, d: int,
              with_checks: bool = True) -> None:
    """Failed checks and failed steps of one run become alarms about data day ``d``
    (``with_checks=False``: monitoring runs, whose day-by-day rows are recorded instead)."""
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed] \
        if with_checks else []
    for e in failed:
        alarm(state, fired, d, f"{e.asset_key.to_user_string()}:{e.check_name}",
              e.severity.value.lower(), e.description or "", bool(e.blocking))
    # A failed blocking check also fails its own step; that failure is already an alarm.
    check_steps = {f"{e.asset_key.to_python_identifier()}_{e.check_name}" for e in failed}
    for e in result.all_events:
        if e.is_step_failure and e.step_key not in check_steps:
            alarm(state, fired, d, f"{e.step_key}:step_failed", "error", step_failure_message(e),
                  True)


def run_hours(state: DrillState, pipe: Pipeline, d: int, fired: int) -> bool:
    """The scoring job over day ``d``'s partitions in one range run (as a catch-up would)."""
    result = pipe.run(EVENT_ASSETS, event_range_tags(state.spec, state.day(d), state.day(d + 1)))
    _verdicts(state, result, fired, d)
    if result.success:
        state.scored.add(d)
    return result.success


def run_monitoring(state: DrillState, pipe: Pipeline, d: int) -> None:
    """01:45 on day d+1: the daily monitoring schedule's run for data day d."""
    request = pipe.schedule("daily_monitoring_schedule", state.day(d + 1) + MONITORING_AT)
    if isinstance(request, dg.RunRequest):
        result = pipe.run(monitoring_asset_names(state.spec),
                          {"dagster/partition": request.partition_key})
        _verdicts(state, result, d + 1, d, with_checks=False)
        record_monitoring_rows(state, monitoring_asset_names(state.spec), [d], d + 1)


def run_labels(state: DrillState, pipe: Pipeline, today: int) -> None:
    """02:30: the labels schedule; every label file that has arrived is ingested."""
    held = held_label_days(state, today)
    due = [d for d in range(today) if d not in state.ingested_labels and d not in held]
    for d in due:
        state.arrive_labels(d)
    request = pipe.schedule("daily_labels_schedule", state.day(today) + LABELS_AT)
    if isinstance(request, dg.SkipReason):
        alarm(state, today, today - 1, "raw_labels:freshness", "warn", request.skip_message or "")
    for lo, hi in contiguous_ranges([state.day(d) for d in due]):
        result = pipe.run(label_feeds(state.spec), range_tags(day_key(lo), day_key(hi)))
        _verdicts(state, result, today, state.index(hi))
        if result.success:
            state.ingested_labels.update(range(state.index(lo), state.index(hi) + 1))


def run_label_sensor(state: DrillState, pipe: Pipeline, today: int) -> None:
    """The label-arrival sensor's tick and its runs over the prediction days labels touched."""
    with dg.build_sensor_context(instance=pipe.instance, cursor=pipe.sensor_cursor,
                                 definitions=pipe.defs, resources=pipe.defs.resources) as ctx:
        result = pipe.defs.get_sensor_def("label_arrival_sensor")(ctx)
    if isinstance(result, dg.SkipReason):
        return
    pipe.sensor_cursor = result.cursor
    selection = [a for a in LABEL_DRIVEN_ASSETS if a in monitoring_asset_names(state.spec)]
    for request in result.run_requests:
        lo, hi = (state.index(pd.Timestamp(request.tags[t], tz="UTC"))
                  for t in (RANGE_START_TAG, RANGE_END_TAG))
        _verdicts(state, pipe.run(selection, request.tags), today, hi, with_checks=False)
        record_monitoring_rows(state, selection, range(lo, hi + 1), today)


def run_shadow_gate(state: DrillState, pipe: Pipeline, today: int) -> None:
    """A live challenger's shadow report (the ``shadow_report`` asset) must pass the gate's
    hard limits every day; a failure pauses the rollout before its first step."""
    registry = state.workspace.registry
    challenger = registry.aliases(state.spec.model_name)["challenger"]
    if not challenger:
        return
    pipe.run(["shadow_report"], {"dagster/partition": day_key(state.day(today - 1))})
    report = shadow.recorded(state.paths, challenger)
    failed = [f"{i['item']} {i['value']:.3g}" for i in (report or {}).get("checklist", [])
              if i["item"] in state.spec.shadow.hard_limits and not i["passed"]]
    if failed:
        alarm(state, today, today - 1, "shadow_report:promotion_gate", "error",
              f"{challenger}: " + "; ".join(failed), True)
        registry.move_aliases(state.spec.model_name, {"challenger": None}, getpass.getuser(),
                              "rollout:pause", "incident drill: shadow gate failed")
        state.responses.setdefault(today, []).append(
            f"rollout paused: {challenger} kept out of traffic")


def backfill_history(state: DrillState, pipe: Pipeline) -> None:
    """Everything before the champion's day arrives at once and is backfilled in range runs
    (events, labels, features), then the two models are trained and the champion deployed."""
    b = state.plan.champion_day
    state.arrive_events(0, b)
    for d in range(b):
        state.arrive_labels(d)
    history = event_range_tags(state.spec, state.day(0), state.day(b))
    for selection, tags in [
            (["raw_events"], history),
            (label_feeds(state.spec),
             range_tags(day_key(state.day(0)), day_key(state.day(b - 1)))),
            (["event_features"], history)]:
        result = pipe.run(selection, tags)
        if not result.success:
            raise RuntimeError(f"history backfill of {selection} failed: " + "; ".join(
                step_failure_message(e) for e in result.all_events if e.is_step_failure))
    state.ingested_labels.update(range(b))
    deploy_models(state)


def run_drill(root, spec: DatasetSpec, plan: DrillPlan, log=print) -> dict:
    """Build the world, backfill its history, replay the timeline day by day, score it.

    Raises
    ------
    Stopped
        On SIGINT/SIGTERM, saying in which day or the backfill (the world is scratch).
    """
    state = new_world(root, spec, plan)
    pipe = Pipeline(build_definitions(state.spec, str(state.paths.root)),
                    dg.DagsterInstance.ephemeral())
    broken = {i.day for i in plan.incidents if i.kind == "schema_break"}
    pending: list[int] = []
    phase = f"the history backfill to day {plan.champion_day}"
    try:
        log(f"backfilling history to day {plan.champion_day}")
        backfill_history(state, pipe)
        log(f"history to day {plan.champion_day} backfilled; champion deployed")
        for d in range(plan.champion_day, plan.days):
            phase = f"day {d} of {plan.days}"
            pending = replay_day(state, pipe, d, broken, pending)
            log(f"day {d}: {sum(a.fired_day == d + 1 for a in state.alarms)} alarm(s)")
    except Stopped as exc:
        exc.where = f"during {phase} ({exc.where or 'between runs'})"
        raise
    return summarize(state)


def replay_day(state: DrillState, pipe: Pipeline, d: int, broken: set[int],
               pending: list[int]) -> list[int]:
    """Day ``d`` as a real day runs; returns the days whose scoring is still held."""
    plan = state.plan
    state.arrive_events(d, d + 1)
    if d - 1 in broken:  # yesterday's broken files arrive corrected today
        redeliver(state, d - 1)
    if any(i.kind == "bad_challenger" and i.day == d for i in plan.incidents):
        train_at(state, d, shuffle_labels=True)  # deployed in shadow before the day's traffic
    # Catch up stopped days first (oldest first), then today; a stop holds later days.
    done = []
    for day in [*pending, d]:
        if not run_hours(state, pipe, day, d):
            pending = sorted({*pending, day, d})
            state.responses.setdefault(d, []).append(
                f"scoring of day {day} stopped by a blocking contract")
            break
        done.append(day)
        pending = [p for p in pending if p != day]
    for day in done:
        run_monitoring(state, pipe, day)
    run_labels(state, pipe, d + 1)
    run_label_sensor(state, pipe, d + 1)
    run_shadow_gate(state, pipe, d + 1)
    return pending
