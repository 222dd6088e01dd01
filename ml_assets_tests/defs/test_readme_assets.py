"""The README's asset table says what the definitions say: every asset of the demo spec, its
group and its partitioning, and no asset that does not exist. It fails when they drift."""

import re
from pathlib import Path

import dagster as dg

from ml_assets.definitions import build_definitions
from ml_assets.specs.fraud import FRAUD_SPEC

README = Path(__file__).parents[2] / "README.md"
GRAIN = {dg.HourlyPartitionsDefinition: "hourly", dg.DailyPartitionsDefinition: "daily"}


def readme_assets(text: str) -> dict[str, tuple[str, str]]:
    """{asset: (group, partitions)} from the table under "## The asset graph": the partitions
    cell's first word (``hourly``, ``daily`` or ``–``); a row may name several assets."""
    section = text.split("## The asset graph", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| group ")]
    return {name: (group.strip(), cell.split()[0])
            for group, assets, cell, _ in rows for name in re.findall(r"`(\w+)`", assets)}


def test_the_readme_asset_table_matches_the_definitions(tmp_path):
    graph = build_definitions(FRAUD_SPEC, str(tmp_path)).get_repository_def().asset_graph
    defined = {key.to_user_string(): (graph.get(key).group_name,
                                      GRAIN.get(type(graph.get(key).partitions_def), "–"))
               for key in graph.materializable_asset_keys}
    assert readme_assets(README.read_text()) == defined
