"""The eng/DS interface contract as data: the API schema derived from the dataset spec
(fields, types, nulls, ranges) plus its operational terms (SLOs, error budget, ownership and
rollback authority). Those terms have documented defaults (``default_config``); a
``<spec file stem>_contract.toml`` beside the spec's source file overrides any of them
(``contract_path``). The serving app validates every request against it, and the benchmark
reports against its SLOs."""

from __future__ import annotations

import copy
import importlib
import json
import math
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.type_names import plain_value_type

#: Where a spec built in code (no ``origin``, e.g. the demo's ``FRAUD_SPEC`` imported directly)
#: finds its override file: the package's own specs directory, as ``<model_name>_contract.toml``.
CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "specs"
CONTRACT_SUFFIX = "_contract.toml"
_JSON_TYPES = {"integer": int, "string": str}
#: The one spelling of an integer id in a path: ASCII digits, no sign but one '-', no leading
#: zeros (``str.isdigit`` also accepts '²' and '١٢', which ``int`` then rejects or reads as 12).
_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]*")
#: The instants a timestamp may hold: the feature code, the lake and the prediction log all use
#: nanosecond timestamps, so anything outside pandas' range is refused, not crashed on.
_TS_RANGE = (pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC"))


class ContractError(SpecError):
    """An interface contract override file the spec or the schema refuses; one line naming the
    file and the key, and what to write instead."""


class RequestError(ValueError):
    """A request the contract rejects: HTTP status, a stable error code and the field."""

    def __init__(self, status: int, code: str, detail: str, field: str | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.field = status, code, detail, field

    def body(self) -> dict:
        """The JSON error body: ``{"error": code, "field": field or None, "detail": text}``."""
        return {"error": self.code, "field": self.field, "detail": self.detail}


@dataclass(frozen=True)
class InterfaceContract:
    """The contract of one model: its dataset ``spec``, the merged ``config`` (the defaults of
    ``default_config`` overridden by the file, same tables as ``specs/fraud_contract.toml``) and
    ``path``, the override file read (None: every term is a default)."""

    spec: DatasetSpec
    config: dict
    path: Path | None = None

    # -- schema --------------------------------------------------------------------------
    @property
    def entity_types(self) -> dict[str, str]:
        """``{entity key: "integer" | "string"}``, the JSON type of each key in a request."""
        return self.config["input"]["entity_types"]

    def input_schema(self) -> dict:
        """``{field: {"type", "required", "nullable", "minimum"?, "maximum"?}}`` of a request
        event, from the spec (attribute bounds in the spec's units, e.g. USD for amounts)."""
        spec, fields = self.spec, {}
        fields[spec.event_id] = {"type": "integer" if spec.id_type == "int64" else "string",
                                 "required": True, "nullable": False}
        fields[spec.event_ts] = {"type": "string", "format": "ISO-8601 with timezone",
                                 "required": not self.config["input"]["event_ts_optional"],
                                 "nullable": False}
        for key in spec.entity_keys:
            # a nullable key may be null or left out: scored with an empty history for it
            nullable = key in spec.nullable_keys
            fields[key] = {"type": self.entity_types[key], "required": not nullable,
                           "nullable": nullable}
        for a in spec.attributes:
            f = {"type": "number" if a.kind == "numeric" else "string",
                 "required": not a.nullable, "nullable": a.nullable}
            if a.min_value is not None:
                f["minimum"] = a.min_value
            if a.max_value is not None:
                f["maximum"] = a.max_value
            fields[a.name] = f
        return fields

    def output_schema(self) -> dict:
        """``{field: {"type", ...}}`` of a score response (``score`` a probability, 0-1)."""
        return {
            "event_id": {"type": self.input_schema()[self.spec.event_id]["type"]},
            "model_version": {"type": "string", "example": f"{self.spec.model_name}-v3"},
            "role": {"type": "string", "enum": ["champion", "challenger", "previous",
                                                 "last_good"],
                     "meaning": "challenger only for entities in its rollout arm"},
            "score": {"type": "number", "minimum": 0.0, "maximum": 1.0, "nullable": False},
            "decision": {"type": "boolean"},
            "source": {"type": "string", "enum": ["batch", "microbatch", "realtime"]},
            "kill_switch": {"type": "boolean"},
            "unknown_entities": {"type": "array", "items": "string", "only": "realtime"},
            "degraded": {"type": "string", "nullable": True,
                         "meaning": "set when the resolved model failed verification and the "
                                    "last good model answered instead"},
        }

    def errors(self) -> dict:
        """``{"<HTTP status> <error code>": meaning}`` of every error the API returns."""
        return {
            "400 invalid_json": "body is not one JSON object in UTF-8 (or is nested too "
                                "deeply, or holds an unpaired surrogate)",
            "413 payload_too_large": f"body over {self.max_body_bytes} bytes",
            "408 request_timeout": "the body did not arrive within the server's body timeout "
                                   "(a client that never finishes its headers is disconnected)",
            "422 invalid_field": "a field is missing, null where not allowed, of the wrong type, "
                                 "NaN/infinite, out of range or not in the schema; `field` names it; "
                                 "a path id that is not the canonical ASCII integer",
            "404 unknown_event": "no precomputed score for this event id",
            "503 no_servable_model": "no model could be loaded and verified",
        }

    @property
    def max_body_bytes(self) -> int:
        """The largest request body accepted, in bytes (``[input] max_body_bytes``)."""
        return int(self.config["input"]["max_body_bytes"])

    def may_act(self, actor: str) -> bool:
        """Whether the rollback authority lists ``actor`` among who may change what serves.

        Parameters
        ----------
        actor : str
            An identity as the audit log records it.

        Returns
        -------
        bool
            True when ``[rollback_authority] may_act`` names it exactly or by a ``"prefix:*"``
            entry; False otherwise, and always when the contract lists nobody (fail closed).
        """
        for entry in self.config["rollback_authority"].get("may_act", []):
            if actor == entry or entry.endswith(":*") and actor.startswith(entry[:-1]) \
                    and len(actor) > len(entry) - 1:
                return True
        return False

    def slo(self, path: str) -> dict[str, float]:
        """The latency SLO of one API path (KeyError if the contract has none).

        Parameters
        ----------
        path : str
            ``"lookup"`` or ``"predict"`` (a table of ``[slo.latency_ms]``).

        Returns
        -------
        dict
            ``p50``/``p95``/``p99`` in milliseconds and ``clients`` (concurrent clients).
        """
        return dict(self.config["slo"]["latency_ms"][path])

    def as_dict(self) -> dict:
        """The merged config plus input/output schemas, errors and the feature schema version."""
        return {**self.config, "input_schema": self.input_schema(),
                "output_schema": self.output_schema(), "errors": self.errors(),
                "feature_schema_version": self.spec.schema_version}

    # -- validation ----------------------------------------------------------------------
    def parse_path_value(self, name: str, kind: str, raw: str):
        """A path parameter (event id, entity value) as the contract's type.

        Parameters
        ----------
        name : str
            The field it fills (named in the error).
        kind : str
            Its contract type: ``"integer"`` or ``"string"``.
        raw : str
            The decoded path segment.

        Returns
        -------
        int or str
            An int64 for an integer field (only the canonical spelling: ASCII digits, an
            optional leading '-', no leading zeros, no '-0'), else the text.

        Raises
        ------
        RequestError
            422 ``invalid_field`` naming ``name`` for anything else ('²', '--5', '+5', '05').
        """
        if kind != "integer":
            return raw
        if len(raw) > 20 or not _CANONICAL_INT.fullmatch(raw):
            raise RequestError(422, "invalid_field", f"{name} must be an integer in ASCII "
                               "digits (e.g. 42 or -7)", field=name)
        value = int(raw)
        if not -(2**63) <= value < 2**63:
            raise RequestError(422, "invalid_field", f"{name} is out of the int64 range",
                               field=name)
        return value

    def parse_body(self, raw: bytes) -> dict:
        """The request body as one JSON object.

        Parameters
        ----------
        raw : bytes
            The body as received (UTF-8 JSON; at most ``max_body_bytes``).

        Raises
        ------
        RequestError
            413 ``payload_too_large``; 400 ``invalid_json`` for bad JSON, nesting deeper than
            the interpreter's recursion limit, an unpaired surrogate or a non-object.
        """
        if len(raw) > self.max_body_bytes:
            raise RequestError(413, "payload_too_large",
                               f"body is {len(raw)} bytes; the limit is {self.max_body_bytes}")
        try:
            # NaN/Infinity literals parse to floats so validation can name the field.
            payload = json.loads(raw, parse_constant=float)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc
        except RecursionError as exc:  # '[' x 3000 fits the size limit but not the stack
            raise RequestError(400, "invalid_json", "body is nested too deeply") from exc
        try:
            # "\ud800" parses to a lone surrogate that no response or log can encode later.
            json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RequestError(400, "invalid_json", "body holds an unpaired UTF-16 surrogate "
                               "escape") from exc
        except RecursionError as exc:
            raise RequestError(400, "invalid_json", "body is nested too deeply") from exc
        if not isinstance(payload, dict):
            raise RequestError(400, "invalid_json", "body must be one JSON object (one event)")
        return payload

    def validate_event(self, payload: dict, now: datetime | None = None) -> dict:
        """The event as the feature code expects it, or a RequestError naming the field.

        Parameters
        ----------
        payload : dict
            The parsed body (``parse_body``).
        now : datetime, optional
            UTC-aware; default the current time. A missing optional event time becomes
            ``now``; one later than ``now`` + ``future_tolerance_seconds`` is refused.

        Returns
        -------
        dict
            Every schema field (absent nullable ones as None); numbers as float, the event time
            as a UTC ``pd.Timestamp`` in nanoseconds.

        Raises
        ------
        RequestError
            422 ``invalid_field`` naming the first bad field (see ``errors``).
        """
        schema = self.input_schema()
        unknown = sorted(set(payload) - set(schema))
        if unknown and self.config["input"]["unknown_fields"] == "reject":
            raise RequestError(422, "invalid_field", f"unexpected field(s) {unknown}; the "
                               "input schema is at GET /contract", field=unknown[0])
        event = {}
        for name, f in schema.items():
            value = payload.get(name)
            if value is None:
                if f["required"] and name not in payload:
                    raise RequestError(422, "invalid_field", f"{name} is required", field=name)
                if not f["nullable"] and name in payload:
                    raise RequestError(422, "invalid_field", f"{name} may not be null", field=name)
                event[name] = None
                continue
            event[name] = self._check_value(name, f, value)
        return self._with_timestamp(event, now or datetime.now(UTC))

    @staticmethod
    def _check_value(name: str, f: dict, value):
        kind = f["type"]
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RequestError(422, "invalid_field", f"{name} must be a number, got "
                                   f"{plain_value_type(value)}", field=name)
            try:
                number = float(value)  # a 400-digit JSON integer does not fit a double
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise RequestError(422, "invalid_field", f"{name} must be a finite number "
                                   "(NaN, infinity and values beyond a double are refused)",
                                   field=name)
            if "minimum" in f and number < f["minimum"] or "maximum" in f and number > f["maximum"]:
                raise RequestError(422, "invalid_field", f"{name}={number} is outside "
                                   f"[{f.get('minimum')}, {f.get('maximum')}]", field=name)
            return number
        expected = _JSON_TYPES[kind]
        if isinstance(value, bool) or not isinstance(value, expected):
            article = "an" if kind == "integer" else "a"
            raise RequestError(422, "invalid_field", f"{name} must be {article} {kind}, got "
                               f"{plain_value_type(value)}", field=name)
        if kind == "integer" and not -(2**63) <= value < 2**63:
            raise RequestError(422, "invalid_field", f"{name} is out of the int64 range",
                               field=name)
        return value

    def _with_timestamp(self, event: dict, now: datetime) -> dict:
        name = self.spec.event_ts
        raw = event.get(name)
        if raw is None:
            event[name] = pd.Timestamp(now)
            return event
        try:
            if not raw.isascii():  # fromisoformat reads '２０２６' as 2026
                raise ValueError("only ASCII characters are allowed")
            parsed = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise RequestError(422, "invalid_field", f"{name} is not ISO-8601: {exc}",
                               field=name) from exc
        if parsed.tzinfo is None:
            raise RequestError(422, "invalid_field", f"{name} needs a timezone, e.g. "
                               "'2026-08-01T12:00:00+00:00'", field=name)
        try:
            ts = pd.Timestamp(parsed).tz_convert("UTC").as_unit("ns")
        except (ValueError, OverflowError) as exc:  # year 1, year 9999 - 14:00
            raise RequestError(422, "invalid_field", f"{name} is outside {_TS_RANGE[0]} .. "
                               f"{_TS_RANGE[1]}", field=name) from exc
        tolerance = timedelta(seconds=self.config["input"]["future_tolerance_seconds"])
        if ts > pd.Timestamp(now) + tolerance:
            raise RequestError(422, "invalid_field", f"{name} is in the future", field=name)
        event[name] = ts
        return event


#: Latency SLOs at the HTTP client in milliseconds, per path, with the concurrent closed-loop
#: clients they hold at: what the demo's server meets on a 2-core machine (``ml-assets bench``),
#: so a new model starts from figures the serving code is known to reach, not a wish.
DEFAULT_LATENCY_MS = {"lookup": {"clients": 10, "p50": 2.0, "p95": 4.0, "p99": 5.0},
                      "predict": {"clients": 50, "p50": 15.0, "p95": 35.0, "p99": 50.0}}
#: Requests per second each path must sustain (measured by the same benchmark).
DEFAULT_THROUGHPUT_RPS = {"lookup": 500, "predict": 200}
#: The kill switch is read from the control plane on every request; 1 s leaves room for a
#: request already in flight.
DEFAULT_KILL_SWITCH_MS = 1000
#: 99.9% of requests without a 5xx over a rolling 30 days: a common first budget, loose enough
#: for one bad deploy a month, tight enough to page on a broken model file.
DEFAULT_ERROR_BUDGET = {"max_5xx_rate": 0.001, "window_days": 30}
#: Request limits: ``event_ts`` may be left out (the server's clock is used); 5 minutes of clock
#: skew is tolerated; 16 KiB holds any one event; unknown fields are refused so a misspelt
#: optional field is not silently scored as null.
DEFAULT_INPUT = {"event_ts_optional": True, "future_tolerance_seconds": 300,
                 "max_body_bytes": 16384, "unknown_fields": "reject"}
#: Who may change what serves when nobody is listed: only this project's own Dagster runs (the
#: rollout walk and the monthly drill, which act under the spec's policies). People are named
#: by the deployment, in the override file: an authority list nobody wrote admits no person.
DEFAULT_MAY_ACT = ("dagster:*",)
#: What the server does (``serving/``), stated in the contract; not a setting.
BEHAVIOUR = {"unknown_entity": "score_with_empty_history", "unknown_category": "unknown_bucket",
             "model_unavailable": "503_no_servable_model"}
#: How often the rollback is drilled: the ``drill_recency`` check's limit
#: (``release/rollback.DRILL_MAX_AGE``), stated in the contract; not a setting.
DRILL_EVERY_DAYS = 90
_UNKNOWN_FIELDS = ("reject", "ignore")


def default_config(spec: DatasetSpec) -> dict:
    """The contract of ``spec`` when no file overrides anything.

    Parameters
    ----------
    spec : DatasetSpec

    Returns
    -------
    dict
        Tables ``contract``, ``input``, ``behaviour``, ``slo``, ``error_budget``,
        ``ownership``, ``rollback_authority`` (the layout of ``specs/fraud_contract.toml``):
        the module's ``DEFAULT_*`` constants; ``spec.owner`` signs, owns wrong predictions,
        5xx and both together, and promotes; entity key types follow ``spec.id_type``.
    """
    owner, wire = spec.owner, "integer" if spec.id_type == "int64" else "string"
    return copy.deepcopy({
        "contract": {"dataset": spec.name, "version": 1, "signed_by": [owner]},
        "input": {"entity_types": {k: wire for k in spec.entity_keys}, **DEFAULT_INPUT},
        "behaviour": BEHAVIOUR,
        "slo": {"kill_switch_time_to_effect_ms": DEFAULT_KILL_SWITCH_MS,
                "latency_ms": DEFAULT_LATENCY_MS, "throughput_rps": DEFAULT_THROUGHPUT_RPS},
        "error_budget": DEFAULT_ERROR_BUDGET,
        "ownership": {"wrong_predictions": owner, "service_errors_5xx": owner,
                      "up_but_predictions_bad": owner},
        "rollback_authority": {"kill_switch": "on-call engineer, no escalation needed",
                               "rollback": f"on-call engineer; notify {owner} within 1 hour",
                               "promote": f"{owner} after shadow sign-off",
                               "drill_every_days": DRILL_EVERY_DAYS,
                               "may_act": list(DEFAULT_MAY_ACT)},
    })


def contract_path(spec: DatasetSpec) -> Path:
    """Where the override file of ``spec``'s contract is (it need not exist).

    Returns
    -------
    pathlib.Path
        ``<stem>_contract.toml`` beside the spec's source file (``origin``: a ``.py`` or
        ``.toml`` path, or the file of ``package.module``); for a spec without an origin (built
        in code), ``CONTRACTS_DIR / <model_name>_contract.toml``. The demo's is
        ``ml_assets/specs/fraud_contract.toml`` either way.
    """
    if spec.origin is None:
        return CONTRACTS_DIR / f"{spec.model_name}{CONTRACT_SUFFIX}"
    ref = spec.origin.source_ref
    head = ref.rpartition(":")[0]
    if ref.endswith((".py", ".toml")):
        source = Path(ref)
    elif head.endswith(".py"):
        source = Path(head)
    else:  # package.module:NAME, which load_spec imported already
        source = Path(importlib.import_module(head).__file__)
    return source.with_name(source.stem + CONTRACT_SUFFIX)


def load_contract(spec: DatasetSpec) -> InterfaceContract:
    """The interface contract of ``spec``'s model: defaults, overridden by its file if any.

    Parameters
    ----------
    spec : DatasetSpec

    Returns
    -------
    InterfaceContract
        ``default_config(spec)`` with every key of ``contract_path(spec)`` (when it exists)
        in place of the default; ``path`` is that file or None.

    Raises
    ------
    ContractError
        One line naming the file and the key: not valid TOML, an unknown key, a value of the
        wrong type or out of range, or one contradicting the spec (``[contract] dataset``,
        ``[input] entity_types``) or the code (``[behaviour]``, ``drill_every_days``).
    """
    path = contract_path(spec)
    config = default_config(spec)
    if not path.is_file():
        return InterfaceContract(spec, config)
    try:
        override = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: not valid TOML: {exc}") from exc
    fixed = {"contract.dataset": f"the spec's name {spec.name!r}",
             "input.entity_types": f"the spec's id_type {spec.id_type!r}",
             "behaviour": "what the server does",
             "rollback_authority.drill_every_days": "the drill_recency check's limit"}
    _merge(config, override, path, "", fixed)
    return InterfaceContract(spec, config, path)


def _merge(base: dict, override: dict, path: Path, where: str, fixed: dict[str, str]) -> None:
    """Put ``override``'s values into ``base`` in place, refusing keys ``base`` lacks, other
    types, bad values and changes to a ``fixed`` key or table (``{key path: why}``)."""
    for key, value in override.items():
        keypath = f"{where}.{key}" if where else key
        if key not in base:
            takes = f"[{where}] takes" if where else "the contract has tables"
            raise ContractError(f"{path}: unknown key {keypath}; {takes} {', '.join(base)}")
        default = base[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ContractError(f"{path}: {keypath} must be a table: write [{keypath}]")
            _merge(default, value, path, keypath, fixed)
            continue
        ok, what = _fits(key, value, default)
        if not ok:
            raise ContractError(f"{path}: {keypath} = {value!r} must be {what}, e.g. "
                                f"{key} = {json.dumps(default)}")  # JSON is TOML for these
        why = next((w for k, w in fixed.items() if keypath == k or keypath.startswith(k + ".")),
                   None)
        if why and value != default:
            raise ContractError(f"{path}: {keypath} = {value!r} contradicts {why}: write "
                                f"{key} = {json.dumps(default)} or leave it out")
        base[key] = value


def _fits(key: str, value: object, default: object) -> tuple[bool, str]:
    """Whether ``value`` may replace ``default`` under ``key``, and what is expected."""
    if key == "unknown_fields":
        return value in _UNKNOWN_FIELDS, f"one of {', '.join(map(repr, _UNKNOWN_FIELDS))}"
    if isinstance(default, bool):  # before the numbers: a bool is an int
        return isinstance(value, bool), "true or false"
    if isinstance(default, str):
        return isinstance(value, str) and bool(value.strip()), "a non-empty string"
    if isinstance(default, list):
        return (isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value),
                "an array of non-empty strings")
    integer = isinstance(default, int)
    number = isinstance(value, int if integer else int | float) and not isinstance(value, bool)
    kind = "an integer" if integer else "a number"
    if key == "max_5xx_rate":
        return number and 0 < value <= 1, "a rate in (0, 1]"
    if key == "future_tolerance_seconds":
        return number and value >= 0, f"{kind} >= 0"
    return number and value > 0, f"{kind} > 0"
