"""Generate the README's course map and results table: ``python -m course_lib.readme``.

Introduced in 00_setup_and_tour. The tables sit between HTML comment markers in README.md and
are rebuilt from the notebooks, ``results/timings.json`` and ``results/*.json``; no number in
them is typed by hand. ``--check`` exits with status 1 when README.md is out of date (a test
runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from course_lib import config, report

SECTIONS = ("course-map", "results")
DOCS: dict[str, tuple[str, ...]] = {
    "README.md": SECTIONS,
    "docs/INSTRUCTORS.md": ("timings", "plan-3h", "plan-day"),
}
"""Files with generated sections, and the sections each holds."""


def notebook_title(path: Path) -> tuple[str, str]:
    """Return ``(title, one-line description)`` from a notebook's first Markdown cell.

    The title is the H1 heading; the description is the first paragraph after it.

    Raises:
        ValueError: the first Markdown cell has no H1 title.
    """
    # plain JSON, not nbformat: importing nbformat's validator (jsonschema) costs about a
    # second, and 00 and 09 draw the course map in a kernel that has not imported it
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    first = next((c for c in cells if c["cell_type"] == "markdown"), None)
    source = first["source"] if first else ""  # a string, or a list of lines in the file
    lines = ("".join(source) if isinstance(source, list) else source).splitlines()
    titles = [line[2:].strip() for line in lines if line.startswith("# ")]
    if not titles:
        raise ValueError(f"{path.name}: the first Markdown cell needs an H1 title ('# ...')")
    after = lines[[line.startswith("# ") for line in lines].index(True) + 1 :]
    paragraph: list[str] = []
    for line in after:
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    return titles[0], " ".join(paragraph)


def course_map(links: bool = True) -> report.Table:
    """The course map: one row per notebook, what it teaches, and its measured run times.

    "First run" times include training the models the notebook needs; "cached" times are
    for a later run that finds them in ``artifacts/``. ``links=False`` gives plain text for a
    notebook's HTML table (no Markdown links or emphasis).
    """
    recorded = report.load_timings()
    timings = recorded.get("notebooks", {})
    rows = []
    for path in sorted(config.notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        _, about = notebook_title(path)
        entry = timings.get(path.stem, {})
        rows.append(
            [
                f"[{path.stem}](notebooks/{path.name})" if links else path.stem,
                about,
                *(
                    report.format_seconds(entry.get(key))
                    for key in ("full_s", "full_cached_s", "fast_s", "fast_cached_s")
                ),
            ]
        )
    stems = [p.stem for p in sorted(config.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))]

    def whole(key: str) -> str:
        text = report.format_seconds(recorded.get(key))
        covered = recorded.get(f"{key}_notebooks")
        missing = [s for s in stems if covered is not None and s not in covered]
        return f"{text} (without {', '.join(missing)})" if missing and key in recorded else text

    rows.append(
        [
            "**whole course** (`make course`)" if links else "whole course (make course)",
            "every notebook above in one run, timed by the runner",
            whole("course_first_run_s"),
            whole("course_cached_s"),
            "",
            "",
        ]
    )
    return report.Table(
        [
            "notebook",
            "what it teaches",
            "full, first run",
            "full, cached",
            "fast, first run",
            "fast, cached",
        ],
        rows,
    )


def results_table() -> report.Table:
    """Return every committed full-mode result with its ratio and speed-up to its baseline."""
    pairs, notebooks = [], []
    for stem, results_file in report.load_all_results(config.repo_root() / "results").items():
        by_name = {r.variant: r for r in results_file.results}
        for r in results_file.results:
            if r.is_deployment:  # runtimes, not variants: tabled in the deployment chapter
                continue
            pairs.append((r, by_name.get(r.baseline or r.variant, r)))
            notebooks.append(stem)
    columns = (
        "variant",
        "model",
        "technique",
        "accuracy",
        "download",
        "download_ratio",
        "latency",
        "speedup",
    )
    return report.variants_table(pairs, columns, first=("notebook", notebooks))


def headline_table() -> report.Table:
    """The best variant of the seed-CNN task per goal (see ``course_lib.summary``)."""
    from course_lib import summary

    return summary.best_table(summary.course_entries(config.repo_root() / "results"))


def timings_table() -> report.Table:
    """Measured run time per notebook, for planning a workshop (docs/INSTRUCTORS.md)."""
    timings = report.load_timings().get("notebooks", {})
    rows = []
    for path in sorted(config.notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        entry = timings.get(path.stem, {})
        keys = ("full_s", "full_cached_s", "fast_s", "fast_cached_s")
        rows.append([path.stem, *(report.format_seconds(entry.get(key)) for key in keys)])
    cpu = next((e.get("cpu") for e in timings.values() if e.get("cpu")), "?")
    return report.Table(
        ["notebook", f"full, first run ({cpu})", "full, cached", "fast, first run", "fast, cached"],
        rows,
    )


# Workshop plans: (notebook, mode learners run it in, minutes of teaching and exercises).
# The minutes are a plan; the run times next to them are measured (results/timings.json).
PLANS = {
    "plan-3h": [
        ("00_setup_and_tour", "fast", 15),
        ("01_baseline", "fast", 20),
        ("02_pruning", "fast", 35),
        ("03_quantization", "fast", 35),
        ("05_structure", "fast", 30),
        ("09_summary", "full", 20),
    ],
    "plan-day": [
        ("00_setup_and_tour", "fast", 20),
        ("01_baseline", "full", 30),
        ("02_pruning", "full", 60),
        ("03_quantization", "full", 60),
        ("04_combined", "fast", 60),
        ("05_structure", "full", 50),
        ("06_mixed_precision", "fast", 40),
        ("07_deployment", "full", 45),
        ("09_summary", "full", 30),
    ],
}


def plan_table(plan: str) -> report.Table:
    """A workshop plan with each notebook's measured run time in the mode learners use.

    Raises:
        KeyError: unknown plan.
    """
    timings = report.load_timings().get("notebooks", {})
    rows, total_run, total_teach = [], 0.0, 0
    for stem, mode, minutes in PLANS[plan]:
        entry = timings.get(stem, {})
        first, cached = entry.get(f"{mode}_s"), entry.get(f"{mode}_cached_s")
        total_run += cached if cached is not None else first or 0.0
        total_teach += minutes
        rows.append(
            [
                stem,
                mode,
                report.format_seconds(first),
                report.format_seconds(cached),
                f"{minutes} min",
            ]
        )
    rows.append(["total", "", "", report.format_seconds(total_run), f"{total_teach} min"])
    return report.Table(
        [
            "notebook",
            "mode",
            "run time, first run",
            "run time, models cached",
            "teaching and exercises (plan)",
        ],
        rows,
    )


def _section(name: str) -> str:
    empty = "_Nothing measured yet: run `make course`._"
    if name in PLANS:
        return plan_table(name).to_markdown()
    if name == "results":
        full = results_table()
        if not full.rows:
            return empty
        return (
            "Best variant of the seed-CNN task for each goal:\n\n"
            f"{headline_table().to_markdown()}\n\n"
            "<details><summary>Every measured variant</summary>\n\n"
            f"{full.to_markdown()}\n\n</details>"
        )
    table = course_map() if name == "course-map" else timings_table()
    return table.to_markdown() if table.rows else empty


def render(text: str, sections: tuple[str, ...] = SECTIONS) -> str:
    """Return a document's text with its generated sections rebuilt.

    Raises:
        ValueError: a section's start or end marker is missing.
    """
    for name in sections:
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
        match = pattern.search(text)
        if not match:
            raise ValueError(f"README.md lacks the markers {start} ... {end}")
        body = f"{start}\n<!-- generated by `python -m course_lib.readme`; do not edit -->\n"
        body += f"{_section(name)}\n{end}"
        text = text[: match.start()] + body + text[match.end() :]
    return text


def update_readme(path: Path | None = None) -> bool:
    """Rewrite the generated sections of README.md and docs/INSTRUCTORS.md.

    With ``path``, only that file (README sections). Returns True if anything changed.
    """
    targets: dict[Path, tuple[str, ...]]
    if path:
        targets = {path: SECTIONS}
    else:
        targets = {config.repo_root() / name: sections for name, sections in DOCS.items()}
    changed = False
    for target, sections in targets.items():
        if not target.is_file():
            continue
        old = target.read_text(encoding="utf-8")
        new = render(old, sections)
        if new != old:
            target.write_text(new, encoding="utf-8")
            changed = True
    return changed


def stale_documents() -> list[str]:
    """Names of the documents whose generated sections are out of date."""
    stale = []
    for name, sections in DOCS.items():
        path = config.repo_root() / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if render(text, sections) != text:
                stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: update README.md, or ``--check`` that it is current."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.readme", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a document is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_documents()
        for name in stale:
            print(f"{name} is out of date: run `python -m course_lib.readme`")
        return int(bool(stale))
    print("documents updated" if update_readme() else "documents already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
