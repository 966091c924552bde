"""The README generator: titles, course map and markers."""

from __future__ import annotations

import json

import nbformat
import pytest

from course_lib import readme, report


def _write(path, first_markdown):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(first_markdown)]
    nbformat.write(nb, path)


def test_notebook_title_and_description(tmp_path):
    path = tmp_path / "05_x.ipynb"
    _write(path, "# 05 · Title here\n\nFirst line\ncontinues.\n\nSecond paragraph.")
    assert readme.notebook_title(path) == ("05 · Title here", "First line continues.")
    _write(path, "no title")
    with pytest.raises(ValueError, match="H1 title"):
        readme.notebook_title(path)


def test_notebook_title_reads_a_source_stored_as_one_string(tmp_path):
    # nbformat writes a cell's source as a list of lines; the format also allows one string
    path = tmp_path / "06_y.ipynb"
    cells = [
        {
            "cell_type": "code",
            "metadata": {},
            "source": "# 00 · not markdown",
            "outputs": [],
            "execution_count": None,
        },
        {"cell_type": "markdown", "metadata": {}, "source": "# 06 · Y\n\nTeaches Y."},
    ]
    path.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    assert readme.notebook_title(path) == ("06 · Y", "Teaches Y.")


def test_render_fills_the_sections(tmp_root):
    _write(tmp_root / "notebooks" / "01_a.ipynb", "# 01 · A\n\nTeaches A.")
    report.record_timing("01_a", full_s=61.0)
    text = (
        "x\n<!-- course-map:start -->\nold\n<!-- course-map:end -->\n"
        "<!-- results:start -->\n<!-- results:end -->\n"
    )
    out = readme.render(text)
    row = "| [01_a](notebooks/01_a.ipynb) | Teaches A. | 1 min 01 s | not measured | not measured"
    assert row in out
    assert (
        "| **whole course** (`make course`) |" in out and "| not measured | not measured |" in out
    )
    assert "old" not in out and "Nothing measured yet" in out
    assert readme.render(out) == out
    with pytest.raises(ValueError, match="results:start"):
        readme.render("<!-- course-map:start --><!-- course-map:end -->")
    report.record_course_time("course_first_run_s", 1827.9)
    assert (
        "| every notebook above in one run, timed by the runner | 30 min 28 s |"
        in readme.render(out)
    )


def test_workshop_plans_add_up_measured_times(tmp_root):
    for stem in ("00_setup_and_tour", "01_baseline"):
        report.record_timing(stem, fast_s=60.0, fast_cached_s=30.0)
    table = readme.plan_table("plan-3h")
    rows = {row[0]: row for row in table.rows}
    assert rows["00_setup_and_tour"][2:4] == ["1 min 00 s", "30 s"]
    assert rows["02_pruning"][2] == "not measured"
    assert rows["total"][3] == "1 min 00 s" and rows["total"][4].endswith("min")
    with pytest.raises(KeyError):
        readme.plan_table("plan-week")


def test_a_whole_course_time_says_which_notebooks_it_missed(tmp_root):
    for stem in ("01_a", "02_b"):
        (tmp_root / "notebooks" / f"{stem}.ipynb").write_text(
            '{"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# T\\n\\nAbout."}],'
            ' "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
        )
    report.record_course_time("course_first_run_s", 600.0, ["01_a"])
    report.record_course_time("course_cached_s", 60.0, ["01_a", "02_b"])
    row = readme.course_map().rows[-1]
    assert row[2] == "10 min 00 s (without 02_b)" and row[3] == "1 min 00 s"
    assert report.load_timings()["course_first_run_s_notebooks"] == ["01_a"]
