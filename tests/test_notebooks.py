"""The stored notebooks: outputs from one full-mode run of the current code, conventions kept,
results committed in full mode, README tables current."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import nbformat
import pytest

from course_lib import config, readme, report, runner

NOTEBOOKS = sorted(config.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if "report.write_results(" in p.read_text()]


def test_the_course_has_every_chapter():
    assert [p.stem for p in NOTEBOOKS] == [
        "00_setup_and_tour",
        "01_baseline",
        "02_pruning",
        "03_quantization",
        "04_combined",
        "05_structure",
        "06_mixed_precision",
        "07_deployment",
        "08_learned_compression",
        "09_summary",
    ]
    assert len(CHAPTERS) == 8


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_current_and_from_one_full_run(path):
    problems = runner.stamp_problems(nbformat.read(path, as_version=4))
    assert not problems, (
        f"{path.name}: {'; '.join(problems)}. Re-run it with "
        f"`.venv/bin/python -m course_lib.runner {path.stem}` (or `make course`)."
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path):
    nb = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    title, about = readme.notebook_title(path)
    assert title.startswith(path.stem[:2]) and about
    for heading in ("## Setup", "## Summary", "## Exercises"):
        assert heading in markdown, f"{path.name} lacks {heading}"
    for words in ("**You will learn**", "**You need**", "**Time**"):
        assert words in markdown, f"{path.name}'s opening lacks {words}"
    assert code[0].startswith("import course_lib"), "the first code line must import course_lib"
    assert f'course_lib.setup(notebook="{path.stem}")' in code[0]
    assert path.stat().st_size < 2_000_000
    # the cache and fast-mode results may live outside the clone (COURSE_ARTIFACTS), where
    # Path.relative_to raises: cells print paths with config.shown_path
    assert not any(".relative_to(" in source for source in code), (
        f"{path.name} prints a path with .relative_to: use config.shown_path"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_results_are_committed_in_full_mode(path):
    results_path = config.repo_root() / "results" / f"{path.stem}.json"
    assert results_path.is_file(), f"{results_path.name} missing: run `make course`"
    payload = json.loads(results_path.read_text())
    assert payload["mode"] == "full" and payload["notebook"] == path.stem
    assert {"tensorflow", "tf_keras", "tfmot", "litert", "cpu"} <= set(payload["environment"])
    loaded = report.load_results(path.stem, config.repo_root() / "results")
    assert loaded.results
    unspread = [
        r.variant for r in loaded.results if r.accuracy_ci95 is None or r.latency_iqr_us is None
    ]
    assert not unspread, f"{path.stem}: rows without accuracy_ci95 / latency_iqr_us: {unspread}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_keep_cpp_log_lines_out(path):
    noise = (
        "oneDNN custom operations",
        "Could not find cuda drivers",
        "absl::InitializeLog",
        "XNNPACK delegate for CPU",
        "fully_quantize:",
    )
    nb = nbformat.read(path, as_version=4)
    text = json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"])
    leaked = [n for n in noise if n in text]
    assert not leaked, f"{path.name} stores C++ log lines {leaked}: re-run it with the runner"


def test_readme_and_instructor_tables_are_generated_from_the_results():
    stale = readme.stale_documents()
    assert not stale, f"{stale} out of date: run `.venv/bin/python -m course_lib.readme`"


def _output_lines(path) -> list[tuple[int, str]]:
    """``(cell index, line)`` for every line a learner reads in a notebook's stored outputs
    (streams, plain text and Markdown; not HTML or images)."""
    lines = []
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                texts = [out.get("text", "")]
            else:
                data = out.get("data", {})
                texts = [data[k] for k in ("text/plain", "text/markdown") if k in data]
            lines += [(i, line) for text in texts for line in text.splitlines()]
    return lines


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_stored_output_line_is_longer_than_100_characters(path):
    long = [
        f"cell {i}: {len(line)} characters: {line[:70]}..."
        for i, line in _output_lines(path)
        if len(line) > report.MAX_LINE
    ]
    assert not long, "\n".join(long[:10])


class _TableText(HTMLParser):
    """The text of every ``<table>`` in an HTML fragment: a list of rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append(" ".join(self.cell.split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def _html_table_widths(html_text: str) -> list[tuple[str, int]]:
    """``(header row, characters of text per row)`` of each table: its columns padded to their
    widest cell, two spaces between, as a text table lays them out."""
    parser = _TableText()
    parser.feed(html_text)
    found = []
    for rows in parser.tables:
        n = max((len(r) for r in rows), default=0)
        widths = [max(len(r[j]) if j < len(r) else 0 for r in rows) for j in range(n)]
        found.append((" | ".join(rows[0]) if rows else "", sum(widths) + 2 * max(n - 1, 0)))
    return found


def test_html_table_width_by_hand():
    text = (
        "<table><tr><th>ab</th><th>c</th></tr><tr><td>x</td><td>defg</td></tr></table>"
        "<details><table><tr><td> a  b </td></tr></table></details>"
    )
    assert _html_table_widths(text) == [("ab | c", 2 + 2 + 4), ("a b", 3)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_stored_html_table_has_at_most_100_characters_per_row(path):
    wide = []
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        for out in cell.get("outputs", []):
            html_text = out.get("data", {}).get("text/html", "")
            for header, width in _html_table_widths(html_text):
                if width > report.MAX_LINE:
                    wide.append(f"cell {i}: {width} characters per row: {header[:60]}")
    assert not wide, "\n".join(wide)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_stored_figure_passed_the_figure_check(path):
    """plots.use_course_style() runs plots.check_figure on every figure a cell draws and
    prints its problems as 'figure check: ...': none may be in the stored outputs."""
    found = [
        f"cell {i}: {line}" for i, line in _output_lines(path) if line.startswith("figure check:")
    ]
    assert not found, "\n".join(found)
