"""The interface contract of a user's spec: schema from the spec, operational terms from the
documented defaults, overridden by ``<spec stem>_contract.toml`` beside the spec's file; the
demo's contract is what its file says, as before (issue 16 item 2)."""

import json
import shutil
import tomllib

import pytest
from starlette.testclient import TestClient

from ml_assets.cli.main import main
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.docs import renderers
from ml_assets.lib.docs.interface_contract import (
    CONTRACTS_DIR,
    DEFAULT_LATENCY_MS,
    DEFAULT_MAY_ACT,
    DRILL_EVERY_DAYS,
    ContractError,
    contract_path,
    load_contract,
)
from ml_assets.lib.release.authority import NotAuthorized, authorize
from ml_assets.lib.release.rollback import DRILL_MAX_AGE
from ml_assets.serving.app import create_app
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets.specs.loading import load_spec
from ml_assets_tests.fixtures.example_specs import SUPPORT_TICKETS

DEMO_FILE = CONTRACTS_DIR / "fraud_contract.toml"


@pytest.fixture
def user_spec(tmp_path):
    """The support-tickets spec copied to ``tmp_path/spec.py``: a user's spec, no contract yet."""
    shutil.copy(SUPPORT_TICKETS, tmp_path / "spec.py")
    return tmp_path / "spec.py"


def _with_override(spec_file, text: str):
    """The spec at ``spec_file`` with ``text`` as its override file beside it."""
    spec_file.with_name(f"{spec_file.stem}_contract.toml").write_text(text)
    return load_spec(spec_file)


def test_the_example_spec_gets_a_full_contract_from_defaults_without_a_file():
    spec = load_spec(SUPPORT_TICKETS)
    contract = load_contract(spec)
    assert contract.path is None
    assert contract_path(spec) == SUPPORT_TICKETS.with_name("spec_contract.toml")
    cfg = contract.config
    assert set(cfg) == set(tomllib.loads(DEMO_FILE.read_text()))  # every table the demo has
    assert cfg["contract"] == {"dataset": "support_tickets", "version": 1,
                               "signed_by": ["team:support-analytics"]}
    assert set(cfg["ownership"].values()) == {"team:support-analytics"}
    assert contract.entity_types == {"customer_id": "string"}  # from spec.id_type
    assert contract.slo("predict") == DEFAULT_LATENCY_MS["predict"]
    assert cfg["rollback_authority"]["may_act"] == list(DEFAULT_MAY_ACT)
    assert cfg["rollback_authority"]["drill_every_days"] == DRILL_EVERY_DAYS == DRILL_MAX_AGE.days
    schema = contract.input_schema()
    assert schema["ticket_id"]["type"] == "string"
    assert schema["message_chars"] == {"type": "number", "required": True, "nullable": False,
                                       "minimum": 0, "maximum": 1_000_000}
    assert contract.output_schema()["event_id"] == {"type": "string"}
    json.dumps(contract.as_dict())  # GET /contract serves it


def test_the_defaults_do_not_leak_between_specs():
    first = load_contract(load_spec(SUPPORT_TICKETS))
    first.config["slo"]["latency_ms"]["predict"]["p99"] = 1.0
    assert load_contract(load_spec(SUPPORT_TICKETS)).slo("predict")["p99"] == 50.0


@pytest.mark.parametrize("kind", ["py", "toml"])
def test_an_override_file_beside_the_spec_changes_an_slo_and_keeps_the_rest(tmp_path, kind):
    source = SUPPORT_TICKETS.with_suffix(f".{kind}")
    spec_file = tmp_path / f"tickets.{kind}"
    shutil.copy(source, spec_file)
    spec = _with_override(spec_file, "[slo.latency_ms.predict]\np99 = 80\n"
                                     "[rollback_authority]\nmay_act = ['alice']\n")
    contract = load_contract(spec)
    assert contract.path == tmp_path / "tickets_contract.toml"
    assert contract.slo("predict") == {**DEFAULT_LATENCY_MS["predict"], "p99": 80}
    assert contract.slo("lookup") == DEFAULT_LATENCY_MS["lookup"]
    assert contract.may_act("alice") and not contract.may_act("dagster:bob")
    assert contract.config["ownership"]["wrong_predictions"] == "team:support-analytics"


@pytest.mark.parametrize(("text", "message"), [
    ("[input]\nentity_types = { customer_id = 'integer' }\n",
     r"input\.entity_types\.customer_id = 'integer' contradicts the spec's id_type 'string': "
     r'write customer_id = "string" or leave it out'),
    ("[contract]\ndataset = 'card_fraud'\n",
     r"contract\.dataset = 'card_fraud' contradicts the spec's name 'support_tickets'"),
    ("[input]\nentity_types = { card_id = 'string' }\n",
     r"unknown key input\.entity_types\.card_id; \[input\.entity_types\] takes customer_id"),
    ("[slo.latency_ms.predict]\np999 = 80.0\n",
     r"unknown key slo\.latency_ms\.predict\.p999; \[slo\.latency_ms\.predict\] takes clients, "
     r"p50, p95, p99"),
    ("[support]\ncontact = 'x'\n", r"unknown key support; the contract has tables contract, "),
    ("[slo.latency_ms.predict]\np99 = 'fast'\n",
     r"slo\.latency_ms\.predict\.p99 = 'fast' must be a number > 0, e.g. p99 = 50\.0"),
    ("[error_budget]\nmax_5xx_rate = 5\n", r"max_5xx_rate = 5 must be a rate in \(0, 1\]"),
    ("[input]\nunknown_fields = 'drop'\n", r"must be one of 'reject', 'ignore'"),
    ("slo = 3\n", r"slo must be a table: write \[slo\]"),
    ("[behaviour]\nunknown_entity = 'reject'\n", r"contradicts what the server does"),
    ("[slo\n", r"not valid TOML"),
])
def test_a_contradicting_unknown_or_mistyped_key_is_one_line_naming_file_and_key(
        user_spec, text, message):
    spec = _with_override(user_spec, text)
    with pytest.raises(ContractError, match=message) as err:
        load_contract(spec)
    assert str(err.value).startswith(f"{user_spec.with_name('spec_contract.toml')}: ")
    assert "\n" not in str(err.value)


def test_the_demo_contract_is_its_file_as_before():
    """The package's file overrides every default, so the merged config is the file's, key
    order included (the rendered documents list it in that order)."""
    on_file = tomllib.loads(DEMO_FILE.read_text())
    for spec in (load_spec("card_fraud"), FRAUD_SPEC):  # from its module, and built in code
        contract = load_contract(spec)
        assert contract.path == DEMO_FILE
        assert json.dumps(contract.config) == json.dumps(on_file)


def test_the_documents_of_a_spec_without_a_file_state_the_defaults(tmp_path):
    spec = load_spec(SUPPORT_TICKETS)
    paths = DataPaths(tmp_path)
    text = renderers.interface_contract(paths, spec, Registry(paths.control_db), "escalation-v1")
    assert f"defaults (no override file {contract_path(spec).name})" in text
    assert str(contract_path(spec).parent) not in text  # no path of this host
    assert "p50 15.0 / p95 35.0 / p99 50.0 ms" in text and "team:support-analytics" in text


def test_the_default_authority_admits_dagster_runs_and_tells_a_person_what_to_write(tmp_path):
    spec = load_spec(SUPPORT_TICKETS)
    registry = Registry(DataPaths(tmp_path).control_db)
    authorize(registry, spec, "rollout", "dagster:alice", "1")
    with pytest.raises(NotAuthorized, match=r"'alice' may not kill switch escalation: not listed "
                       r"in \[rollback_authority\] may_act of its interface contract \(.*"
                       r"spec_contract\.toml\)"):
        authorize(registry, spec, "kill_switch", "alice", "on")


def test_the_serving_app_starts_for_the_example_spec_without_a_contract_file(tmp_path):
    spec = load_spec(SUPPORT_TICKETS)
    app = create_app(DataPaths(tmp_path), spec, log_predictions=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        served = client.get("/contract").json()
        assert served["contract"]["dataset"] == "support_tickets"
        assert served["input_schema"]["customer_id"]["type"] == "string"
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/health").status_code == 503  # no model yet: the contract's answer


def test_serve_with_a_malformed_override_is_one_line_saying_what_to_write(user_spec, tmp_path,
                                                                          capsys):
    _with_override(user_spec, "[error_budget]\nwindow_days = 'monthly'\n")
    code = main(["--data-dir", str(tmp_path / "data"), "--spec", str(user_spec), "serve"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""  # the contract is loaded before the "serving ... on" banner
    assert err == (f"ml-assets serve: {user_spec.with_name('spec_contract.toml')}: "
                   "error_budget.window_days = 'monthly' must be an integer > 0, e.g. "
                   "window_days = 30\n")
