"""Snapshot of every definition name, so a rename shows up in review.

For each dataset spec the repository ships (the demo and ``examples/``): every asset key with
its group, every check (asset, name, blocking), every job, every schedule with its cron and
every sensor, compared with the committed ``defs_snapshot.json``. Asset and check names key the
UI's history: renaming one loses it.

After an intended change, regenerate the snapshot and commit it with the change::

    .venv/bin/python -m ml_assets_tests.defs.test_defs_snapshot
"""

import json
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.definitions import build_definitions
from ml_assets_tests.fixtures.example_specs import example_specs

SNAPSHOT = Path(__file__).with_name("defs_snapshot.json")


def names(defs: dg.Definitions) -> dict:
    """The reviewable names of ``defs``.

    Parameters
    ----------
    defs : dg.Definitions
        Merged definitions of one spec.

    Returns
    -------
    dict
        ``assets`` {key: group}, ``checks`` [[asset, name, blocking]], ``jobs`` [name],
        ``schedules`` {name: cron}, ``sensors`` [name], all sorted.
    """
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    return {
        "assets": {k.to_user_string(): graph.get(k).group_name
                   for k in sorted(graph.materializable_asset_keys)},
        "checks": sorted([k.asset_key.to_user_string(), k.name,
                          bool(graph.get_check_spec(k).blocking)] for k in graph.asset_check_keys),
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "schedules": {s.name: s.cron_schedule for s in sorted(repo.schedule_defs,
                                                               key=lambda s: s.name)},
        "sensors": sorted(s.name for s in repo.sensor_defs),
    }


def current(data_dir: str) -> dict:
    return {name: names(build_definitions(spec, data_dir))
            for name, spec in sorted(example_specs().items())}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> dict:
    return current(str(tmp_path_factory.mktemp("data")))


def test_names_match_the_committed_snapshot(snapshot):
    assert snapshot == json.loads(SNAPSHOT.read_text()), (
        "definition names changed; if intended, regenerate: "
        ".venv/bin/python -m ml_assets_tests.defs.test_defs_snapshot")


def test_every_job_name_ends_in_job(snapshot):
    jobs = {j for spec in snapshot.values() for j in spec["jobs"]}
    assert jobs and all(j.endswith("_job") for j in jobs), sorted(jobs)


@pytest.mark.parametrize("spec_name", sorted(example_specs()))
def test_every_asset_is_described_owned_grouped_and_kinded(spec_name, tmp_path):
    graph = build_definitions(example_specs()[spec_name], str(tmp_path)).get_repository_def(
    ).asset_graph
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.description and node.owners and node.group_name and node.kinds, key


@pytest.mark.parametrize("spec_name", sorted(example_specs()))
def test_a_check_function_is_named_after_its_check(spec_name, tmp_path):
    for checks_def in build_definitions(example_specs()[spec_name], str(tmp_path)).asset_checks:
        specs = list(checks_def.check_specs)
        if len(specs) == 1:  # a multi-check (one PSI check per feature) cannot share one name
            assert checks_def.node_def.compute_fn.decorated_fn.__name__ == specs[0].name


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        SNAPSHOT.write_text(json.dumps(current(tmp), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}")
