"""The one Markdown-table builder: escaping, number format, unknown values, empty tables."""

import math

from ml_assets.lib.core.markdown import cell, table


def test_cells_escape_pipes_and_newlines_and_write_unknown_as_a_dash():
    assert cell("a|b\nc") == "a\\|b c"
    assert cell(0.123456) == "0.1235"
    assert cell(None) == "-"
    assert cell(math.nan) == "-"
    assert cell(3) == "3"


def test_table_has_header_rule_and_one_line_per_row():
    assert table(["k", "v"], [["a", 1.5], ["b", None]]) == (
        "| k | v |\n|---|---|\n| a | 1.5 |\n| b | - |")


def test_empty_table_is_the_header_or_the_given_text():
    assert table(["k"], []) == "| k |\n|---|"
    assert table(["k"], [], empty="_no rows_") == "_no rows_"
