"""Run the course's notebooks headless: ``python -m course_lib.runner`` (``make course``).

Introduced in 00_setup_and_tour.

Full mode (the default) first times a fast-mode run of each notebook (into
``artifacts/fast/notebooks``, thrown away), then executes each notebook top to bottom in full
mode, writes its outputs back into ``notebooks/`` and stamps the notebook's metadata with a
hash of its code cells. ``tests/test_notebooks.py`` recomputes that hash: when the code was
changed after the outputs were made, the test fails. Notebooks write their own
``results/*.json``; the runner records run times in ``results/timings.json``, refreshes the
README's generated tables and prints a summary.

``--fast`` executes the notebooks in fast mode only and writes the executed copies under
``artifacts/fast/notebooks``; nothing committed is touched.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course_lib import config, report, system
from course_lib.atomic import write_bytes_atomic

STAMP_KEY = "course"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_TIMEOUT_S = 1800


def code_hash(nb: nbformat.NotebookNode) -> str:
    """Return the sha256 of a notebook's code cells (their source text, in order)."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode("utf-8"))
            digest.update(b"\0")
    return digest.hexdigest()


def stamp(nb: nbformat.NotebookNode, mode: str, seconds: float) -> None:
    """Record in the notebook's metadata how and from which code its outputs were made."""
    nb.metadata[STAMP_KEY] = {
        "code_sha256": code_hash(nb),
        "mode": mode,
        "run_seconds": round(seconds, 1),
        "executed": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cpu": system.cpu_name(),
    }


def stamp_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Return what is wrong with a notebook's stored outputs (empty list: all good).

    Checks: a stamp exists and is from a full-mode run, the code has not changed since, every
    code cell ran once in order (execution counts 1, 2, 3...), and no cell stored an error.
    """
    meta = nb.metadata.get(STAMP_KEY)
    if not meta:
        return ["no run stamp: the outputs were not made by `make course`"]
    problems = []
    if meta.get("mode") != "full":
        problems.append(f"outputs come from a {meta.get('mode')!r} run, not full mode")
    if meta.get("code_sha256") != code_hash(nb):
        problems.append("code cells changed after the outputs were made (stale outputs)")
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.get("execution_count") for c in code_cells]
    if counts != list(range(1, len(code_cells) + 1)):
        problems.append(f"not one top-to-bottom run: execution counts {counts}")
    for i, cell in enumerate(code_cells, start=1):
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            problems.append(f"code cell {i} stored an error")
    return problems


def list_notebooks(names: list[str] | None = None) -> list[Path]:
    """Return the notebooks to run: all ``notebooks/NN_*.ipynb``, or those named.

    Names may be stems (``01_baseline``), file names or paths.

    Raises:
        FileNotFoundError: a named notebook does not exist.
    """
    folder = config.notebooks_dir()
    if not names:
        return sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    paths = []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb")
        path = folder / f"{stem}.ipynb"
        if not path.is_file():
            raise FileNotFoundError(f"no notebook {path}")
        paths.append(path)
    return paths


def execute(path: Path, fast: bool) -> tuple[nbformat.NotebookNode, float]:
    """Execute a notebook top to bottom in a fresh kernel, in the notebooks folder.

    Returns:
        The executed notebook and the wall-clock seconds it took.

    Raises:
        CellExecutionError: a cell failed.
    """
    nb = nbformat.read(path, as_version=4)
    previous = os.environ.get(config.FAST_ENV)
    os.environ[config.FAST_ENV] = "1" if fast else "0"  # the kernel inherits it
    try:
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
            record_timing=False,
            # TensorFlow's C++ log lines go to the terminal, not into the stored outputs.
            extra_arguments=[
                "--IPKernelApp.capture_fd_output=False",
                "--IPKernelApp.log_level=ERROR",
            ],
        )
        start = time.perf_counter()
        try:
            client.execute()
        except CellExecutionError:
            try:  # keep the partial run for debugging, if the cache folder can be written
                _write_notebook(nb, failed_path(path, fast))
            except OSError as err:
                print(f"    (could not keep the partly executed notebook: {err})", flush=True)
            raise
        return nb, time.perf_counter() - start
    finally:
        if previous is None:
            os.environ.pop(config.FAST_ENV, None)
        else:
            os.environ[config.FAST_ENV] = previous


def failed_path(path: Path, fast: bool) -> Path:
    """Return where a notebook that failed to run is kept: ``artifacts/<mode>/failed/``."""
    return config.artifacts_dir("failed", for_mode="fast" if fast else "full") / path.name


def failed_path_or_none(path: Path, fast: bool) -> Path | None:
    """Like :func:`failed_path`, or None when the cache folder cannot be written."""
    try:
        return failed_path(path, fast)
    except OSError:
        return None


def _write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    write_bytes_atomic(nbformat.writes(nb).encode("utf-8") + b"\n", path)


def _cached_models(mode: str) -> set[str]:
    return {p.name for p in config.artifacts_dir("models", for_mode=mode).iterdir()}


def _run_one(
    path: Path,
    fast: bool,
    label: str,
    start: float,
    record: bool = True,
    store: bool = True,
) -> float | None:
    """Execute one notebook; store its outputs (full mode) and record its run time.

    The time is recorded as ``<mode>_s`` when the notebook trained (wrote new models to the
    cache) and as ``<mode>_cached_s`` when it found everything it needed in the cache.
    """
    mode = "fast" if fast else "full"
    print(f"{label} {path.stem} ({mode} mode) ...", flush=True)
    before = _cached_models(mode)
    try:
        nb, seconds = execute(path, fast)
    except CellExecutionError as err:
        last_line = _ANSI.sub("", str(err)).strip().splitlines()[-1]
        print(f"    FAILED: {last_line}", flush=True)
        kept = failed_path_or_none(path, fast)
        if kept is not None and kept.is_file():
            print(f"    the partly executed notebook is in {kept}", flush=True)
        return None
    try:
        if fast or not store:
            _write_notebook(nb, config.artifacts_dir("notebooks", for_mode=mode) / path.name)
        else:
            stamp(nb, mode, seconds)
            _write_notebook(nb, path)
    except OSError as err:
        print(f"    FAILED to save the executed notebook: {err}", flush=True)
        return None
    if record:
        trained = bool(_cached_models(mode) - before)
        key = f"{mode}_s" if trained else f"{mode}_cached_s"
        report.record_timing(path.stem, **{key: round(seconds, 1)})
    elapsed = report.format_seconds(time.perf_counter() - start)
    print(f"    done in {report.format_seconds(seconds)} (elapsed {elapsed})", flush=True)
    return seconds


def print_summary() -> None:
    """Print every full-mode results file as a comparison table."""
    for stem, results_file in report.load_all_results(config.repo_root() / "results").items():
        print(f"\n== {stem} ({results_file.mode} mode, {results_file.dataset}) ==")
        print(report.comparison_table(results_file.results))


def run_course(
    names: list[str] | None, fast: bool, time_fast: bool, time_only: bool = False
) -> int:
    """Run notebooks as described in the module docstring; return the exit status.

    ``time_only`` runs full mode without storing outputs, to record run times; the
    notebooks' results then go to ``artifacts/full/timing-results``, not ``results/``.
    """
    previous = os.environ.get(config.RESULTS_ENV)
    if time_only:
        scratch = config.artifacts_dir("timing-results", for_mode="full")
        os.environ[config.RESULTS_ENV] = str(scratch)
    try:
        return _run_course(names, fast, time_fast, time_only)
    finally:
        if previous is None:
            os.environ.pop(config.RESULTS_ENV, None)
        else:
            os.environ[config.RESULTS_ENV] = previous


def _run_course(names: list[str] | None, fast: bool, time_fast: bool, time_only: bool) -> int:
    paths = list_notebooks(names)
    if not fast:
        # 00 shows the course map with this run's timings, so it runs last.
        paths = sorted(paths, key=lambda p: (p.stem.startswith("00_"), p.stem))
    start = time.perf_counter()
    failures = []
    if time_fast and not fast:
        print("Timing fast mode (outputs discarded)...", flush=True)
        for i, path in enumerate(paths, start=1):
            label = f"[fast {i}/{len(paths)}]"
            if _run_one(path, True, label, start) is None:
                failures.append(f"{path.stem} (fast)")
    for i, path in enumerate(paths, start=1):
        label = f"[{'fast' if fast else 'full'} {i}/{len(paths)}]"
        if _run_one(path, fast, label, start, record=not fast, store=not time_only) is None:
            failures.append(path.stem)
    if not fast:
        from course_lib import readme

        readme.update_readme()
        print_summary()
    total = report.format_seconds(time.perf_counter() - start)
    if failures:
        print(f"\n{len(failures)} notebook(s) failed: {', '.join(failures)} ({total})")
        return 1
    print(f"\nAll {len(paths)} notebook(s) ran in {'fast' if fast else 'full'} mode in {total}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see ``python -m course_lib.runner --help``."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.runner",
        description="Execute the course notebooks headless (full mode stores their outputs).",
    )
    parser.add_argument("notebooks", nargs="*", help="stems or paths (default: all)")
    parser.add_argument(
        "--fast", action="store_true", help="fast mode only; writes under artifacts/fast"
    )
    parser.add_argument(
        "--no-fast-timing",
        action="store_true",
        help="in full mode, skip the fast-mode timing pass",
    )
    parser.add_argument(
        "--time-only",
        action="store_true",
        help="full mode without storing outputs: only record run times",
    )
    args = parser.parse_args(argv)
    return run_course(
        args.notebooks or None,
        fast=args.fast,
        time_fast=not args.no_fast_timing,
        time_only=args.time_only,
    )


if __name__ == "__main__":
    sys.exit(main())
