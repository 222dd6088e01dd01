"""A spec loads from the user's own file or module (``ml_assets/specs/loading.py``), never from
a registry of names: .py files, ``package.module:NAME``, declarative TOML and the demo default;
every error is one ``SpecError`` line naming the file and the key; the model card records the
spec's reference and source hash; the CLI and Dagster take the same references."""

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_assets.lib.core.artifacts import dataset_sha256, sha256_file
from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.training import provenance
from ml_assets.lib.training.candidate import train_candidate
from ml_assets.lib.training.reproduce import environment_causes
from ml_assets.lib.training.splits import assign_splits
from ml_assets.lib.training.train import TrainingWindow
from ml_assets.specs import fraud
from ml_assets.specs.loading import DEFAULT_REF, load_spec, spec_from_env
from ml_assets_tests.fixtures.example_specs import REPO_ROOT, SUPPORT_TICKETS

BIN = REPO_ROOT / ".venv" / "bin"

ORDERS_PY = '''
from datetime import UTC, datetime, timedelta

from ml_assets.lib.core.datasets import Attribute, DatasetSpec
from ml_assets.lib.core.policies import ModelConfig, MonitoringConfig
from ml_assets.lib.features.definitions import Numeric, WindowAgg

SPEC = DatasetSpec(
    name="orders", model_name="returns", event_id="order_id", event_ts="ordered_at",
    entity_keys=("customer_id",), id_type="string",
    attributes=(Attribute("amount", "numeric", min_value=0), Attribute("status", "categorical")),
    label="returned", label_ts="returned_at",
    features=(Numeric("amount", column="amount"),
              WindowAgg("customer_orders_7d", entity="customer_id", agg="count", window="7d")),
    start=datetime(2026, 1, 1, tzinfo=UTC), owner="team:returns",
    model=ModelConfig(max_iter=10, training_window_days=10),
    monitoring=MonitoringConfig(drift_periods=(("amount", "week"),)),
    label_ingest_delay=timedelta(hours=2, minutes=30), warm_up=timedelta(days=60),
    unlabelable_when=(("status", "in", ("cancelled",)),))
OTHER = SPEC
'''

ORDERS_TOML = '''
name = "orders"
model_name = "returns"
event_id = "order_id"
event_ts = "ordered_at"
entity_keys = ["customer_id"]
id_type = "string"
label = "returned"
label_ts = "returned_at"
start = "2026-01-01T00:00:00+00:00"
owner = "team:returns"
label_ingest_delay = "2h30m"
warm_up = "60d"
unlabelable_when = [["status", "in", ["cancelled"]]]

[[attributes]]
name = "amount"
kind = "numeric"
min_value = 0

[[attributes]]
name = "status"
kind = "categorical"

[[features]]
type = "Numeric"
name = "amount"
column = "amount"

[[features]]
type = "WindowAgg"
name = "customer_orders_7d"
entity = "customer_id"
agg = "count"
window = "7d"

[model]
max_iter = 10
training_window_days = 10

[monitoring]
drift_periods = [["amount", "week"]]
'''


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_python_file_loads_its_spec_attribute_or_a_named_one(tmp_path):
    path = write(tmp_path / "orders.py", ORDERS_PY)
    spec = load_spec(path)
    assert spec.name == "orders" and spec.warm_up == timedelta(days=60)
    assert spec.origin.ref == str(path) and spec.origin.sha256 == sha256_file(path)
    other = load_spec(f"{path}:OTHER")
    assert other == spec and other.origin.ref == f"{path}:OTHER"


def test_a_module_attribute_loads_and_hashes_the_module_file(tmp_path, monkeypatch):
    write(tmp_path / "user_orders_spec.py", ORDERS_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = load_spec("user_orders_spec:SPEC")
    assert spec.name == "orders"
    assert spec.origin.ref == "user_orders_spec:SPEC"
    assert spec.origin.sha256 == sha256_file(tmp_path / "user_orders_spec.py")


def test_a_toml_spec_loads_to_the_same_spec_as_its_python_twin(tmp_path):
    toml_spec = load_spec(write(tmp_path / "orders.toml", ORDERS_TOML))
    assert toml_spec == load_spec(write(tmp_path / "orders.py", ORDERS_PY))
    assert toml_spec.origin.sha256 == sha256_file(tmp_path / "orders.toml")
    py_example, toml_example = load_spec(SUPPORT_TICKETS), load_spec(
        SUPPORT_TICKETS.with_suffix(".toml"))
    assert toml_example == py_example
    assert toml_example.schema_version == py_example.schema_version


def test_the_demo_is_the_default_and_card_fraud_its_only_alias(monkeypatch):
    monkeypatch.delenv("ML_ASSETS_SPEC", raising=False)
    for spec in (load_spec("card_fraud"), load_spec(""), spec_from_env()):
        assert spec == fraud.FRAUD_SPEC
        assert spec.origin.ref == DEFAULT_REF == "ml_assets.specs.fraud:FRAUD_SPEC"
        assert spec.origin.sha256 == sha256_file(Path(fraud.__file__))
    monkeypatch.setenv("ML_ASSETS_SPEC", str(SUPPORT_TICKETS))
    assert spec_from_env().name == "support_tickets"
    with pytest.raises(SpecError, match="'support_tickets' is not a spec reference"):
        load_spec("support_tickets")  # no registry of other names


TOML_ERRORS = [
    ("colour = 'red'\n" + ORDERS_TOML, "unknown key colour; DatasetSpec takes"),
    (ORDERS_TOML + "colour = 'red'\n", "unknown key monitoring.colour"),  # after [monitoring]
    (ORDERS_TOML.replace("max_iter = 10", "max_iters = 10"), "unknown key model.max_iters"),
    (ORDERS_TOML.replace('type = "WindowAgg"', 'type = "Window"'),
     "features[1].type = 'Window' is not a feature type"),
    (ORDERS_TOML.replace('owner = "team:returns"', "owner = 3"),
     "owner = 3 has the wrong type: expected str"),
    (ORDERS_TOML.replace("max_iter = 10", "max_iter = 10.5"),
     "model.max_iter = 10.5 has the wrong type: expected int"),
    (ORDERS_TOML.replace('label = "returned"\n', ""), "missing required key label"),
    (ORDERS_TOML.replace('"2h30m"', '"2.5h"'), "label_ingest_delay = '2.5h' is not a duration"),
    (ORDERS_TOML.replace('"2026-01-01T00:00:00+00:00"', "2026-01-01T00:00:00"),
     "start = datetime.datetime(2026, 1, 1, 0, 0) must be a datetime with an offset"),
    (ORDERS_TOML.replace('window = "7d"', 'window = "7w"'),
     "feature 'customer_orders_7d': window '7w' is invalid"),
    (ORDERS_TOML.replace('name = "amount"\nkind', 'name = "amount"\nkinds'),
     "unknown key attributes[0].kinds"),
    ('partition_grain = "weekly"\n' + ORDERS_TOML,
     "partition_grain 'weekly' is not 'hourly' or 'daily'"),
    ("name = [", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), TOML_ERRORS)
def test_a_bad_toml_spec_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("ref", "source", "message"), [
    ("missing.py", "", "--spec='{tmp}/missing.py': spec file {tmp}/missing.py does not exist"),
    ("orders.py:NOPE", ORDERS_PY, "{tmp}/orders.py has no attribute 'NOPE'"),
    ("orders.py", "SPEC = 3\n", "{tmp}/orders.py:SPEC is a int, not a DatasetSpec"),
    ("orders.py", "x = 1\nSPEC = undefined_name\n",
     "{tmp}/orders.py:2: NameError: name 'undefined_name' is not defined"),
    ("orders.py", "SPEC = (\n", "{tmp}/orders.py:1: SyntaxError"),
    ("orders.py", ORDERS_PY.replace('"7d"', '"7w"'),
     "{tmp}/orders.py:8: SpecError: feature 'customer_orders_7d': window '7w' is invalid"),
])
def test_a_bad_python_spec_is_one_line_naming_the_file_and_key(tmp_path, ref, source, message):
    if source:
        write(tmp_path / ref.split(":")[0], source)
    with pytest.raises(SpecError) as err:
        load_spec(str(tmp_path / ref))
    assert str(err.value).startswith(message.format(tmp=tmp_path)), str(err.value)
    assert "\n" not in str(err.value)


def test_a_module_that_does_not_import_says_so():
    with pytest.raises(SpecError, match=r"module 'no_such_spec_module' cannot be imported"):
        load_spec("no_such_spec_module:SPEC")
    with pytest.raises(SpecError, match=r"ml_assets.specs.fraud has no attribute 'SPEC'"):
        load_spec("ml_assets.specs.fraud:SPEC")


def test_the_card_records_the_spec_and_a_spec_outside_the_checkout_leaves_it_clean(
        tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"  # a clean checkout standing in for the package's repo
    checkout.mkdir()
    write(checkout / "README", "clean\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for argv in (["init", "-q"], ["add", "README"], ["commit", "-qm", "init"]):
        subprocess.run([*git, *argv], cwd=checkout, check=True, capture_output=True)
    monkeypatch.setattr(provenance, "REPO_ROOT", checkout)
    user = tmp_path / "user"
    user.mkdir()
    spec = load_spec(write(user / "orders.py", ORDERS_PY))

    rng = np.random.default_rng(3)
    n = 600
    ts = spec.start_utc + pd.to_timedelta(np.sort(rng.integers(0, 10 * 86_400, n)), unit="s")
    amount = rng.gamma(2.0, 50.0, n)
    frame = pd.DataFrame({"order_id": [f"O{i}" for i in range(n)], "ordered_at": ts,
                          "amount": amount, "customer_orders_7d": rng.integers(0, 5, n),
                          "returned": (amount + rng.normal(0, 40, n) > 120).astype("int8")})
    splits = frame[["order_id"]].assign(split=assign_splits(
        frame["order_id"], spec.model.split_salt, spec.model.split_fractions))
    end = spec.start_utc + timedelta(days=10)
    card = train_candidate(DataPaths(tmp_path / "data").ensure(), spec, frame, splits, frame,
                           TrainingWindow(spec.start_utc, end, end), dataset_sha256(frame))
    assert card["spec"] == {"ref": str(user / "orders.py"),
                            "sha256": sha256_file(user / "orders.py")}
    assert card["code_dirty"] is False
    assert datetime.fromisoformat(card["trained_at"]).tzinfo == UTC


def test_the_cli_takes_a_spec_file_without_editing_the_package(tmp_path):
    path = write(tmp_path / "orders.toml", ORDERS_TOML)
    done = subprocess.run([BIN / "ml-assets", "--data-dir", tmp_path / "data", "--spec", path,
                           "status", "--json"], capture_output=True, text=True, check=True)
    assert '"dataset": "orders"' in done.stdout
    missing = tmp_path / "missing.toml"
    bad = subprocess.run([BIN / "ml-assets", "--data-dir", tmp_path / "data", "--spec", missing,
                          "status"], capture_output=True, text=True)
    # one line naming the spec's fault, not an argparse usage message
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.strip().endswith(f"spec file {missing} does not exist")


def test_dagster_loads_the_spec_ml_assets_spec_points_at(tmp_path):
    env = {**os.environ, "ML_ASSETS_SPEC": "examples/support_tickets/spec.py",
           "ML_ASSETS_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run([BIN / "dagster", "definitions", "validate", "-w", "workspace.yaml"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All code locations passed validation" in done.stderr + done.stdout


def test_reproduce_names_a_changed_spec_file():
    recorded = {"spec": {"ref": "/specs/orders.py", "sha256": "a" * 64}}

    def kinds(new: dict) -> list[str]:
        return [c.kind for c in environment_causes(recorded, new)]

    assert kinds({"spec": {"ref": "/specs/orders.py", "sha256": "b" * 64}}) == ["spec_changed"]
    assert kinds(recorded) == []


def test_reproduce_names_a_moved_start_but_not_a_moved_checkout():
    recorded = {"spec": {"ref": "/a/specs/orders.py@2026-07-06", "sha256": "a" * 64}}

    def kinds(ref: str) -> list[str]:
        return [c.kind for c in environment_causes(recorded, {"spec": {"ref": ref,
                                                                        "sha256": "a" * 64}})]

    assert kinds("/a/specs/orders.py@2026-07-01") == ["spec_changed"]
    assert kinds("/a/specs/orders.py") == ["spec_changed"]
    assert kinds("/elsewhere/specs/orders.py@2026-07-06") == []
