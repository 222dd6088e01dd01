"""Load a dataset spec from the user's own file or module, never from a registry of names.

A spec reference is one of:

- ``path/to/spec.py`` or ``path/to/spec.py:NAME``: a Python file, loaded from its path; the
  attribute ``SPEC`` (or ``NAME``) must be a :class:`DatasetSpec`;
- ``package.module:NAME``: an importable module (installed, or on ``PYTHONPATH``);
- ``path/to/spec.toml``: a declarative spec (tables mapped to the spec's dataclasses, below);
- ``card_fraud``: the built-in demo (``ml_assets.specs.fraud:FRAUD_SPEC``), the default.
  Loaded for a data directory ``ml-assets demo`` wrote, the demo (by either name) takes the
  start that directory's ``demo.json`` records (``scenarios/demo_clock.py``).

Any reference may end in ``@YYYY-MM-DD``: the spec with its ``start`` moved to that UTC day
(``origin.ref`` keeps the suffix, so another process loads the same spec).

The loaded spec carries a :class:`SpecOrigin`: the reference that loads it again and the SHA-256
of its source file, recorded on every model card. Every error is one :class:`SpecError` line
naming the file and the key.

TOML layout: top-level keys are :class:`DatasetSpec` fields (``start`` a datetime with an
offset, ``label_ingest_delay``/``warm_up`` durations such as ``"2h30m"`` or ``"60d"``);
``[[attributes]]`` and ``[[features]]`` are arrays of tables (a feature's ``type`` is the class
name in ``lib/features/definitions.py``: ``Numeric``, ``WindowAgg``, ...); ``[model]``,
``[monitoring]``, ``[shadow]``, ``[rollout]`` and ``[business_metric]`` map to their config
dataclasses. Arrays become tuples.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import os
import re
import sys
import tomllib
import traceback
import types
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ml_assets.lib.core.artifacts import sha256_file
from ml_assets.lib.core.datasets import Attribute, DatasetSpec, SpecOrigin, split_start
from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.policies import ModelConfig, MonitoringConfig, RolloutConfig, ShadowConfig
from ml_assets.lib.features.definitions import FeatureDef
from ml_assets.lib.monitoring.business import BusinessMetric
from ml_assets.scenarios import demo_clock

SPEC_ENV = "ML_ASSETS_SPEC"
DEMO_NAME = "card_fraud"  # the one name accepted: an alias of the default, not a registry
DEFAULT_REF = "ml_assets.specs.fraud:FRAUD_SPEC"
DEFAULT_ATTRIBUTE = "SPEC"

FEATURE_TYPES = {cls.__name__: cls for cls in typing.get_args(FeatureDef)}
TABLES = {"model": ModelConfig, "monitoring": MonitoringConfig, "shadow": ShadowConfig,
          "rollout": RolloutConfig, "business_metric": BusinessMetric}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def load_spec(ref: str | os.PathLike, source: str = "--spec",
              data_dir: str | os.PathLike | None = None) -> DatasetSpec:
    """The dataset spec ``ref`` points at, with its :class:`SpecOrigin` set.

    Parameters
    ----------
    ref : str or PathLike
        A spec reference (module docstring); a relative path is relative to the working
        directory.
    source : str, default "--spec"
        Where the reference came from, for the error message (e.g. ``ML_ASSETS_SPEC``).
    data_dir : str or PathLike, optional
        The deployment's data directory: the demo (``card_fraud``) takes the start its
        ``demo.json`` records there.

    Returns
    -------
    DatasetSpec
        ``origin.ref`` is the reference resolved (absolute path, or ``module:NAME``) so another
        process loads the same spec; ``origin.sha256`` hashes the source file's bytes.

    Raises
    ------
    SpecError
        One line naming the file (or module) and the key: no such file or module, the file
        fails to run, no such attribute, not a ``DatasetSpec``, an unknown, mistyped or missing
        TOML key, or a value the spec refuses; a damaged ``demo.json``; a demo start that
        is not a ``YYYY-MM-DD`` date.
    """
    text = os.fspath(ref).strip()
    if text in ("", DEMO_NAME, DEFAULT_REF):
        placed = demo_clock.recorded(Path(data_dir)) if data_dir is not None else None
        text = f"{DEFAULT_REF}@{placed.start:%Y-%m-%d}" if placed else DEFAULT_REF
    text, day = split_start(text)
    if day is not None:
        return _starting(load_spec(text, source), day, source)
    head, sep, tail = text.rpartition(":")
    if text.endswith(".toml"):
        return _load_toml(_existing_file(text, source))
    if text.endswith(".py") or (sep and head.endswith(".py")):
        path = _existing_file(head if sep else text, source)
        return _load_python_file(path, tail if sep else DEFAULT_ATTRIBUTE)
    if sep and head and tail:
        return _load_module(head, tail)
    raise SpecError(f"{source}={text!r} is not a spec reference: use path/to/spec.py[:NAME], "
                    f"path/to/spec.toml, package.module:NAME or {DEMO_NAME!r} (the demo)")


def spec_from_env(environ: typing.Mapping[str, str] = os.environ,
                  data_dir: str | os.PathLike | None = None) -> DatasetSpec:
    """The spec ``$ML_ASSETS_SPEC`` points at (default: the demo, placed as ``data_dir``'s
    ``demo.json`` records); for entry points only.

    Raises
    ------
    SpecError
        As :func:`load_spec`, naming ``ML_ASSETS_SPEC``.
    """
    return load_spec(environ.get(SPEC_ENV, ""), SPEC_ENV, data_dir)


def _starting(spec: DatasetSpec, day: str, source: str) -> DatasetSpec:
    """``spec`` with its start moved to UTC midnight of ``day`` (``YYYY-MM-DD``)."""
    try:
        start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise SpecError(f"{source}=...@{day}: a start must be a YYYY-MM-DD date") from None
    return spec.starting(start)


def _existing_file(text: str, source: str) -> Path:
    path = Path(text).expanduser().resolve()
    if not path.is_file():
        raise SpecError(f"{source}={text!r}: spec file {path} does not exist")
    return path


def _with_origin(spec: object, where: str, ref: str, source_file: Path) -> DatasetSpec:
    if not isinstance(spec, DatasetSpec):
        raise SpecError(f"{where} is a {type(spec).__name__}, not a DatasetSpec")
    return dataclasses.replace(spec, origin=SpecOrigin(ref, sha256_file(source_file)))


def _attribute(module: types.ModuleType, attr: str, where: str, ref: str,
               source_file: Path) -> DatasetSpec:
    if not hasattr(module, attr):
        raise SpecError(f"{where} has no attribute {attr!r}: define {attr} = DatasetSpec(...) "
                        "or name another with :NAME")
    return _with_origin(getattr(module, attr), f"{where}:{attr}", ref, source_file)


def _run_failed(where: Path | str, exc: BaseException) -> SpecError:
    """``exc`` raised while running a spec's code, as one line with the file's line number."""
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else next(
        (f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__))
         if f.filename == str(where)), None)
    message = " ".join(str(exc).split())
    return SpecError(f"{where}{f':{line}' if line else ''}: {type(exc).__name__}: {message}")


def _load_python_file(path: Path, attr: str) -> DatasetSpec:
    # A private module name per path: a user's "spec.py" must not shadow or be shadowed by
    # another module called "spec".
    name = f"_ml_assets_spec_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise SpecError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look a class's module up here
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise _run_failed(path, exc) from exc
    ref = str(path) if attr == DEFAULT_ATTRIBUTE else f"{path}:{attr}"
    return _attribute(module, attr, str(path), ref, path)


def _load_module(module_name: str, attr: str) -> DatasetSpec:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise SpecError(f"module {module_name!r} cannot be imported ({exc}); install it or add "
                        "its directory to PYTHONPATH") from exc
    except Exception as exc:
        raise _run_failed(module_name, exc) from exc
    if not getattr(module, "__file__", None):
        raise SpecError(f"module {module_name!r} has no source file to hash")
    return _attribute(module, attr, module_name, f"{module_name}:{attr}", Path(module.__file__))


# -- declarative (TOML) specs ---------------------------------------------------------------
def _load_toml(path: Path) -> DatasetSpec:
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc
    converters = {
        "attributes": lambda v, key: tuple(
            _build(Attribute, item, f"{key}[{i}]", path) for i, item in enumerate(_array(v, key, path))),
        "features": lambda v, key: tuple(
            _feature(item, f"{key}[{i}]", path) for i, item in enumerate(_array(v, key, path))),
        "start": lambda v, key: _datetime(v, key, path),
        "end": lambda v, key: _datetime(v, key, path),
        "label_ingest_delay": lambda v, key: _duration(v, key, path),
        "warm_up": lambda v, key: _duration(v, key, path),
        **{name: (lambda v, key, cls=cls: _build(cls, v, key, path)) for name, cls in TABLES.items()},
    }
    return _with_origin(_build(DatasetSpec, table, "", path, converters), str(path), str(path),
                        path)


def _build(cls: type, table: object, where: str, path: Path,
           converters: dict[str, typing.Callable] | None = None):
    """``cls(**table)`` after checking keys and types; ``converters[key](value, keypath)``
    turns a TOML value into the field's value first (other arrays become tuples)."""
    if not isinstance(table, dict):
        raise SpecError(f"{path}: {where} must be a table, got {table!r}")
    prefix = f"{where}." if where else ""
    init = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "origin"}
    unknown = sorted(set(table) - set(init))
    if unknown:
        raise SpecError(f"{path}: unknown key {prefix}{unknown[0]}; {cls.__name__} takes "
                        f"{', '.join(sorted(init))}")
    missing = [n for n, f in init.items() if n not in table and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise SpecError(f"{path}: missing required key {prefix}{missing[0]} ({cls.__name__})")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in table.items():
        convert = (converters or {}).get(key)
        value = convert(value, prefix + key) if convert else _tuples(value)
        if not _matches(value, hints[key]):
            raise SpecError(f"{path}: {prefix}{key} = {value!r} has the wrong type: expected "
                            f"{_type_name(hints[key])}")
        values[key] = value
    try:
        return cls(**values)
    except SpecError as exc:
        raise SpecError(f"{path}: {where + ': ' if where else ''}{exc}") from exc


def _feature(table: object, where: str, path: Path) -> FeatureDef:
    if not isinstance(table, dict) or "type" not in table:
        raise SpecError(f"{path}: {where} must be a table with a type key "
                        f"({', '.join(FEATURE_TYPES)})")
    kind = table["type"]
    if kind not in FEATURE_TYPES:
        raise SpecError(f"{path}: {where}.type = {kind!r} is not a feature type; use one of "
                        f"{', '.join(FEATURE_TYPES)}")
    return _build(FEATURE_TYPES[kind], {k: v for k, v in table.items() if k != "type"}, where, path)


def _array(value: object, key: str, path: Path) -> list:
    if not isinstance(value, list):
        raise SpecError(f"{path}: {key} must be an array of tables ([[{key}]]), got {value!r}")
    return value


def _datetime(value: object, key: str, path: Path) -> datetime:
    """A TOML datetime or an ISO 8601 string, with a UTC offset."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise SpecError(f"{path}: {key} = {value!r} is not an ISO 8601 datetime") from exc
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise SpecError(f"{path}: {key} = {value!r} must be a datetime with an offset, e.g. "
                        "2026-03-01T00:00:00Z")
    return value


def _duration(value: object, key: str, path: Path) -> timedelta:
    """``"60d"``, ``"2h30m"``, ``"0d"``: days, hours and minutes, in that order."""
    match = _DURATION.match(value) if isinstance(value, str) and value else None
    if not match:
        raise SpecError(f"{path}: {key} = {value!r} is not a duration; use days, hours and "
                        "minutes in that order, e.g. '60d', '2h30m', '0d'")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def _tuples(value: object) -> object:
    """TOML arrays as tuples, nested: the spec's dataclasses are frozen and hashable."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _matches(value: object, hint: object) -> bool:
    """Whether ``value`` fits the annotation ``hint`` (the shapes the spec dataclasses use)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is object:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(map(_matches, value, args))
    if hint in (int, float):  # a bool is no number here; an int is a float
        return isinstance(value, int | hint) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _type_name(hint: object) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
