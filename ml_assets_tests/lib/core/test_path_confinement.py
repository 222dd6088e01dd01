"""Item 4 of issue 15: every file name from configuration, a sensor, a spec, the control plane
or a request goes through ``confined``; no name reaches a file outside its directory."""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_assets.lib.core.artifacts import recorded_file
from ml_assets.lib.core.catalog import Catalog
from ml_assets.lib.core.identifiers import UnsafePath, confined
from ml_assets.lib.core.paths import DataPaths

HOSTILE = ["../x.parquet", "../../lake/raw_events/2026-07-01T00.parquet", "/etc/passwd",
           "a/../../b", "..", ".", "", "x\x00.parquet", "x\n.parquet", "..\\..\\x",
           "sub/x.parquet", "./../x", "x/..", "a" * 256, "\ud800.parquet", "//etc/passwd"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_naming_them(tmp_path, name):
    with pytest.raises(UnsafePath, match="microbatch file .* refused"):
        confined(tmp_path, name, "microbatch file")


def test_a_symlink_out_of_the_directory_is_refused(tmp_path):
    base, outside = tmp_path / "base", tmp_path / "outside"
    base.mkdir(), outside.mkdir()
    (base / "link.parquet").symlink_to(outside / "x.parquet")
    (base / "dir").symlink_to(outside)
    for name in ("link.parquet", "dir/x.parquet"):
        with pytest.raises(UnsafePath, match="symlink"):
            confined(base, name, "file", nested=True)
    assert confined(base, "ok.parquet", "file") == base / "ok.parquet"
    assert confined(base, "a/b.parquet", "file", nested=True) == base / "a" / "b.parquet"


_NAME_CHARS = st.sampled_from(["a", "b", ".", "..", "/", "\\", "\x00", "\n", "~", "%2e", " ",
                               "é", "\ud800", "x.parquet"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.text(max_size=40), st.lists(_NAME_CHARS, max_size=8).map("".join)),
       nested=st.booleans())
def test_property_no_name_escapes_its_directory(tmp_path, name, nested):
    """Any text: either refused with UnsafePath, or a path strictly inside the base."""
    base = tmp_path / "base"
    base.mkdir(exist_ok=True)
    try:
        path = confined(base, name, "name", nested=nested)
    except UnsafePath:
        return
    resolved = path.resolve()
    assert resolved.is_relative_to(base.resolve()) and resolved != base.resolve()
    assert "\x00" not in str(path) and (nested or path.parent == base)


def test_catalog_keys_and_cursor_names_stay_in_the_lake(tmp_path):
    catalog = Catalog(tmp_path / "lake")
    with pytest.raises(UnsafePath, match="microbatch_scores key"):
        catalog.table("microbatch_scores").path("../raw_events/2026-07-01T00")
    with pytest.raises(UnsafePath, match="lake file"):
        catalog.path_of("raw_labels/../../control.sqlite")
    with pytest.raises(UnsafePath, match="lake file"):
        catalog.path_of("/etc/passwd")
    assert catalog.path_of("raw_labels/2026-07-01.parquet") == (
        tmp_path / "lake" / "raw_labels" / "2026-07-01.parquet")


@pytest.mark.parametrize("name", ["../x", "../../control", "/etc/passwd", "x\x00", "a/../../x",
                                  "2026-07-01/../../x", "2026-07-01T13/../../../x"])
def test_partitioned_tables_check_every_key_that_is_not_a_partition(tmp_path, name):
    """Partition keys are joined as they are (digits and dashes); any other key is confined."""
    lake = tmp_path / "lake"
    hourly, daily = Catalog(lake).table("raw_events"), Catalog(lake).table("raw_labels")
    assert hourly.path("2026-07-01-13:00") == lake / "raw_events" / "2026-07-01T13.parquet"
    assert daily.path("2026-07-01") == lake / "raw_labels" / "2026-07-01.parquet"
    for table in (hourly, daily):
        with pytest.raises(UnsafePath, match=f"{table.name} key"):
            table.path(name)


def test_paths_recorded_in_the_control_plane_stay_in_artifacts(tmp_path):
    paths = DataPaths(tmp_path).ensure()
    for rel in ("../outside.pkl", "lake/raw_events/x.parquet", "/etc/passwd",
                "artifacts/../control.sqlite"):
        with pytest.raises(UnsafePath, match="artifact_path"):
            recorded_file(paths, rel)
    assert recorded_file(paths, "artifacts/ab.pkl") == Path(paths.artifacts / "ab.pkl")
    os.symlink(tmp_path / "control.sqlite", paths.artifacts / "evil.pkl")
    with pytest.raises(UnsafePath):
        recorded_file(paths, "artifacts/evil.pkl")
