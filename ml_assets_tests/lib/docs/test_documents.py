"""The four documents: every required field is filled from recorded facts and follows them."""

import pytest

from ml_assets.lib.core.registry import Registry
from ml_assets.lib.docs import documents
from ml_assets.lib.monitoring.tables import label_horizon
from ml_assets.lib.release import rollout
from ml_assets_tests.fixtures.shadow_world import CFG, SMALL_WORLD_ROLLOUT, SPEC, day, world_copy

PLACEHOLDERS = ("TODO", "TBD", "FIXME", "<fill", "N/A", "None")


@pytest.fixture(scope="module")
def rolled_out(tmp_path_factory):
    world = world_copy(tmp_path_factory.mktemp("docs") / "w")
    world.use_challenger("honest")
    hz = label_horizon(world.paths)
    rollout.start(world.registry, world.paths, SPEC, "tests", day(45), hz, latency_slo_ms=1e9,
                  cfg=SMALL_WORLD_ROLLOUT)
    rollout.advance(world.registry, world.paths, SPEC, "tests", CFG.end, hz, SMALL_WORLD_ROLLOUT)
    return world


def render(world, version) -> dict[str, dict]:
    out = documents.write_documents(world.paths, SPEC, world.registry, version)
    assert {p.name for p in out.values()} == {f"{n}.md" for n in documents.DOCUMENTS}
    assert all(p.parent == world.paths.docs / "fraud" / version for p in out.values())
    return {n: documents.parse_fields(p.read_text()) for n, p in out.items()}


def test_every_required_field_is_filled_from_recorded_facts(rolled_out):
    world, version = rolled_out, rolled_out.versions["honest"]
    docs = render(world, version)
    for name, fields in docs.items():
        for key in documents.REQUIRED_FIELDS[name]:
            value = fields.get(key, "")
            assert value.strip(), f"{name}: {key} is empty"
            assert not any(p in value for p in PLACEHOLDERS), f"{name}: {key} = {value}"
    card, reg = docs["model_card"], Registry(world.paths.control_db)
    recorded = reg.get_model(version)
    assert card["Dataset SHA-256"] == recorded["dataset_sha256"]
    assert card["Seed"] == str(recorded["seed"])
    assert card["Lockfile SHA-256"] == recorded["lockfile_sha256"]
    assert card["Warm start"].startswith(recorded["training_window"]["warm_start"] + ": ")
    assert card["Current role"] == "champion" and "promote" in card["Deploy date"]
    chk = docs["shadow_checklist"]
    assert chk["Champion"] == world.versions["champion"] and chk["Gate"].startswith("PASSED")
    book = docs["rollback_runbook"]
    assert book["Rollback target"] == world.versions["champion"]
    assert book["Rollback target ready"].startswith("yes")
    assert "$ML_ASSETS_DATA_DIR" in book["Deployment"]
    contract = docs["interface_contract"]
    assert "team:fraud-ml" in contract["Ownership"] and "on-call" in contract["Rollback authority"]
    assert "ms" in contract["Measured latency"]


def test_documents_show_no_python_repr_unknown_token_or_host_path(rolled_out):
    """A reader on another machine sees plain text: no dict/list/bool repr, no ``nan`` or
    ``None``, and commands relative to the deployment's configured data dir, not this host's
    data dir or interpreter."""
    import re
    import sys
    from pathlib import Path

    world = rolled_out
    for version in (world.versions["honest"], world.versions["champion"]):
        for name, render in documents.RENDERERS.items():
            text = render(world.paths, SPEC, world.registry, version)
            for bad in (r"\{'", r"\['", r"\bnan\b", r"\bNone\b", r"\bTrue\b", r"\bFalse\b",
                        re.escape(str(world.paths.root)),
                        re.escape(str(Path(sys.executable).parent))):
                assert not re.search(bad, text), f"{name} of {version}: {bad}"
    book = documents.rollback_runbook(world.paths, SPEC, world.registry, world.versions["honest"])
    assert '`ml-assets --data-dir "$ML_ASSETS_DATA_DIR" drill rollback`' in book


def test_a_runbook_without_a_rollback_target_says_what_to_do_instead(tmp_path):
    """Before any promotion there is no ``previous``: the runbook names no version it does
    not have and no command that would refuse."""
    world = world_copy(tmp_path / "w")
    world.use_challenger("honest")
    assert world.registry.aliases(SPEC.model_name)["previous"] is None
    book = documents.rollback_runbook(world.paths, SPEC, world.registry, world.versions["honest"])
    assert "None" not in book and "curl" not in book
    fields = documents.parse_fields(book)
    assert fields["Rollback target"].startswith("none: no previous version")
    assert "`kill-switch on` and `rollback` refuse" in book
    assert "rollback target none" in book  # the postmortem template


def test_an_unmeasured_metric_reads_not_measured():
    from ml_assets.lib.docs.renderers import _metrics, _per_day, _plain

    m = {"auc": float("nan"), "pr_auc": None, "brier": 0.01, "decision_rate": 0.5, "rows": 10}
    assert _metrics(m).startswith("AUC not measured (one class), PR-AUC not measured")
    day = {"auc_p50": 0.9, "auc_p25": 0.8, "auc_p05": 0.7, "days": 1, "positives_p50": 3,
           "between_day_sd": float("nan")}
    assert _per_day(day).endswith("between-day SD not measured")
    assert _plain({"failures": 0, "worst_disagreement_rate": 0.0032051}) == (
        "failures: 0; worst disagreement rate: 0.003205")
    assert _plain([float("nan"), 0.94227374, 100000.0, True]) == "not measured, 0.9423, 100000, yes"


def test_documents_change_when_the_facts_change(rolled_out, tmp_path):
    import shutil

    from ml_assets.lib.core.paths import DataPaths
    paths = DataPaths(tmp_path / "copy")
    shutil.copytree(rolled_out.paths.root, paths.root)
    reg = Registry(paths.control_db)
    version = rolled_out.versions["honest"]
    before = {n: documents.parse_fields(documents.RENDERERS[n](paths, SPEC, reg, version))
              for n in documents.DOCUMENTS}
    reg.record_drill(SPEC.model_name, "rollback", "tests", True, 412.5, version,
                     rolled_out.versions["champion"], {})
    reg.set_setting("kill_switch", "on", "tests", "incident drill")
    reg.move_aliases(SPEC.model_name, {"champion": rolled_out.versions["champion"],
                                       "previous": version}, "tests", "rollback", "test")
    after = {n: documents.parse_fields(documents.RENDERERS[n](paths, SPEC, reg, version))
             for n in documents.DOCUMENTS}
    assert "412.5 ms" in after["rollback_runbook"]["Last drill"]
    assert before["rollback_runbook"]["Last drill"] != after["rollback_runbook"]["Last drill"]
    assert after["rollback_runbook"]["Kill switch"] == "on"
    assert after["model_card"]["Current role"] == "previous"
    assert before["model_card"]["Current role"] == "champion"


def test_a_challenger_in_shadow_is_documented_as_not_deployed(rolled_out, tmp_path):
    import shutil

    from ml_assets.lib.core.paths import DataPaths
    paths = DataPaths(tmp_path / "copy")
    shutil.copytree(rolled_out.paths.root, paths.root)
    reg = Registry(paths.control_db)
    leaky = rolled_out.versions["leaky"]
    reg.move_aliases(SPEC.model_name, {"challenger": leaky}, "tests", "alias:challenger", "t")
    card = documents.parse_fields(documents.model_card(paths, SPEC, reg, leaky))
    assert card["Deploy date"] == "not deployed: current role challenger"
    chk = documents.parse_fields(documents.shadow_checklist(paths, SPEC, reg, leaky))
    assert chk["Gate"].startswith("not evaluated")


def test_the_card_says_what_its_held_out_period_and_warm_start_mean():
    from ml_assets.lib.docs.renderers import window_fields

    window = {"start": "2026-03-01", "end": "2026-04-01", "warm_start": "2026-03-02",
              "warm": False}
    fields = window_fields({"training_window": window,
                            "held_out_period": {"start": "2026-04-01", "end": "2026-04-15"}})
    assert fields["Held-out period"].startswith("2026-04-01 to 2026-04-15: its events are the "
                                                "test split")
    assert fields["Warm start"].startswith("2026-03-02: first time every feature is in steady")
    assert "window starts before it" in fields["Warm start"]
    # an older card: no held-out period, no warm start recorded - no such lines
    old = window_fields({"training_window": {"start": "2026-03-01", "end": "2026-04-01"}})
    assert list(old) == ["Training window"]
