"""Resources shared by every domain: the Parquet lake IO manager and the project context (a
:class:`~ml_assets.lib.core.workspace.Workspace`: data paths, dataset spec, control plane)."""


from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
from upath import UPath

from ml_assets.defs.metadata import add_partition_metadata
from ml_assets.lib.core.catalog import PARQUET
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake_store import put_parquet_files, read_source
from ml_assets.lib.core.lake_table import file_stem
from ml_assets.lib.core.paths import DataPaths, write_parquet_atomic, write_parquet_files_atomic
from ml_assets.lib.core.workspace import Workspace


@dataclass
class PartitionChunks:
    """A range run's output, computed chunk by chunk while the IO manager writes it.

    Each item of ``chunks`` is ``{partition_key: table or None}`` for some partitions of the
    run; together they cover the run exactly once. The lake IO manager writes (and records the
    rows of) each chunk before it asks for the next, so a year's backfill holds one chunk of
    data, not the whole range: the 25M-event demo ran out of memory holding every scored
    partition of its range until the step returned.
    """
    chunks: Iterable[dict[str, pa.Table | pd.DataFrame | None]]


def _local(path: UPath) -> bool:
    return not isinstance(path, UPath) or path.protocol in ("", "file", "local")


class LakeIOManager(dg.UPathIOManager):
    """Parquet per asset partition under ``lake/<asset>/<partition>.parquet``, written atomically;
    file names are the lake catalog's (``lib/core/catalog.py``), so readers find what it wrote.

    Unlike the stock ``UPathIOManager`` it accepts one output covering many partitions (a
    ``{partition_key: DataFrame or Arrow table}`` dict), which single-run backfills over ranges
    produce (Arrow slices of one conversion: ``lake.split_rows``), or such dicts one chunk at a
    time (:class:`PartitionChunks`); a ``None`` value writes nothing for that partition (a
    contract blocked it)."""

    extension = PARQUET

    def get_path_for_partition(self, context, path: UPath, partition: str) -> UPath:
        return self.make_safe_partition_path(path, file_stem(partition))

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame | pa.Table,
                     path: UPath) -> None:
        if not _local(path):  # object stores are atomic per PUT
            put_parquet_files([(path, obj)])
        else:
            write_parquet_atomic(obj, path)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        return pd.read_parquet(read_source(path))

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        chunked = isinstance(obj, PartitionChunks)
        if not context.has_asset_partitions or not (chunked or isinstance(obj, dict)):
            return super().handle_output(context, obj)
        paths = self._get_paths_for_partitions(context)
        if not chunked:  # a whole output is checked before anything is written
            _check_keys(context, set(obj), set(paths), whole=True)
        done, written, rows = set(), 0, 0
        for chunk in obj.chunks if chunked else [obj]:
            _check_keys(context, set(chunk), set(paths) - done, whole=False)
            todo = {paths[key]: data for key, data in chunk.items() if data is not None}
            self._write(context, todo)
            _record_rows(context, chunk)
            done.update(chunk)
            written, rows = written + len(todo), rows + sum(len(t) for t in todo.values())
            del todo, chunk  # a chunk's tables are freed before the next one is computed
        _check_keys(context, done, set(paths), whole=True)
        context.add_output_metadata(
            {"path": dg.MetadataValue.path(str(next(iter(paths.values())).parent))})
        # the range's totals describe the run, not any one partition: logged once
        context.log.info(f"{context.asset_key.to_user_string()}: wrote {written} partition(s), "
                         f"{rows:,} rows")

    def _write(self, context: dg.OutputContext, todo: dict) -> None:
        """Write ``{path: table}`` in one batch: local files as temp files, fsyncs and renames;
        object-store keys as concurrent whole-object PUTs (atomic each)."""
        if all(_local(path) for path in todo):
            write_parquet_files_atomic((Path(path), data) for path, data in todo.items())
        else:
            put_parquet_files(todo.items())


def _check_keys(context: dg.OutputContext, keys: set[str], allowed: set[str],
                whole: bool) -> None:
    """Raise unless every key is one of ``allowed`` (this run's partitions not yet written)
    and, for a ``whole`` output, every allowed partition is there."""
    name = context.asset_key.to_user_string()
    unknown = keys - allowed
    if unknown:
        raise dg.DagsterInvariantViolationError(
            f"{name}: output has partitions {sorted(unknown)[:3]} outside this run's partition "
            "range (or written twice)")
    missing = allowed - keys if whole else set()
    if missing:
        raise dg.DagsterInvariantViolationError(
            f"{name}: output lacks {len(missing)} partition(s) of the run, e.g. "
            f"{sorted(missing)[:3]}")


def _record_rows(context: dg.OutputContext, obj: dict) -> None:
    """Each written partition's own row count on its own materialization, unless the asset
    recorded it (``defs.metadata.record_partitions``, or a ``rows`` of its own meaning)."""
    step, key = context.step_context, context.asset_key
    add_partition_metadata(step, key, {
        partition: {"rows": len(data)} for partition, data in obj.items()
        if data is not None and "rows" not in (step.get_asset_metadata(key, partition) or {})})


class LakeIOManagerFactory(dg.ConfigurableIOManagerFactory):
    data_dir: str

    def create_io_manager(self, context) -> LakeIOManager:
        return LakeIOManager(base_path=UPath(DataPaths(Path(self.data_dir)).lake))


def default_resources(data_dir: str, spec: DatasetSpec) -> dict:
    """The resources every domain's definitions use.

    Parameters
    ----------
    data_dir : str
        Runtime state root; the lake is ``<data_dir>/lake``.
    spec : DatasetSpec
        The dataset spec object. It is held as is by the ``project`` resource (a
        :class:`~ml_assets.lib.core.workspace.Workspace`), never looked up again by name, so a
        modified or user-defined spec reaches every asset, check, job, schedule and sensor.

    Returns
    -------
    dict
        ``io_manager`` (:class:`LakeIOManagerFactory`) and ``project``, a hardcoded resource whose
        value is the Workspace; parameters take it as ``project: dg.ResourceParam[Workspace]``.
    """
    workspace = Workspace.open(data_dir, spec)
    return {
        "io_manager": LakeIOManagerFactory(data_dir=data_dir),
        "project": dg.ResourceDefinition.hardcoded_resource(
            workspace, "Where the data lives, the dataset spec and the control plane"),
    }
