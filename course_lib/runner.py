"""Run the course's notebooks headless: ``python -m course_lib.runner`` (``make course``).

Introduced in 00_setup_and_tour.

Full mode (the default, ``make course``) executes each notebook top to bottom in full mode,
writes its outputs back into ``notebooks/`` and stamps the notebook's metadata with a hash of
its code cells. ``tests/test_notebooks.py`` recomputes that hash: when the code was
changed after the outputs were made, the test fails. Notebooks write their own
``results/*.json``; the runner records run times in ``results/timings.json``, refreshes the
README's generated tables and prints a summary.

``--fast`` (``make warmup``) executes the notebooks in fast mode only, writes the executed
copies under ``artifacts/fast/notebooks`` and records the fast-mode run times; nothing else
committed is touched.

The terminal shows one progress line per notebook (cell i/n and an estimate of the time left,
from the last recorded run times) and a summary table at the end. The kernels' C++ log lines
(TensorFlow, XNNPACK, the converter) go to ``artifacts/<mode>/logs/<notebook>.log``, not to
the terminal or the stored outputs. Each code cell's run time goes to
``artifacts/<mode>/cell_times/<notebook>.json``, slowest first: where a notebook's time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course_lib import config, memo, report, system
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


class ProgressClient(NotebookClient):
    """A NotebookClient that reports each code cell before running it and times it."""

    def __init__(self, nb: nbformat.NotebookNode, on_cell: Callable[[int], None], **kw: Any):
        super().__init__(nb, **kw)
        self._on_cell = on_cell
        self._code_index = {
            i: n for n, i in enumerate(j for j, c in enumerate(nb.cells) if c.cell_type == "code")
        }
        self.cell_seconds: list[dict[str, Any]] = []
        """One entry per code cell run: its number (1-based), first line and seconds."""

    async def async_execute_cell(self, cell: Any, cell_index: int, *args: Any, **kw: Any) -> Any:
        if cell_index not in self._code_index:
            return await super().async_execute_cell(cell, cell_index, *args, **kw)
        self._on_cell(self._code_index[cell_index])
        start = time.perf_counter()
        try:
            return await super().async_execute_cell(cell, cell_index, *args, **kw)
        finally:
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            self.cell_seconds.append(
                {
                    "cell": self._code_index[cell_index] + 1,
                    "first_line": first[:80],
                    "seconds": round(time.perf_counter() - start, 2),
                }
            )


def log_path(path: Path, fast: bool) -> Path:
    """Where a notebook's kernel log (C++ messages on stderr) goes."""
    return config.artifacts_dir("logs", for_mode="fast" if fast else "full") / f"{path.stem}.log"


def cell_times_path(path: Path, fast: bool) -> Path:
    """Where the runner writes a notebook's per-cell run times (JSON, slowest first)."""
    folder = config.artifacts_dir("cell_times", for_mode="fast" if fast else "full")
    return folder / f"{path.stem}.json"


def execute(
    path: Path, fast: bool, on_cell: Callable[[int], None] | None = None
) -> tuple[nbformat.NotebookNode, float]:
    """Execute a notebook top to bottom in a fresh kernel, in the notebooks folder.

    Args:
        path: the notebook.
        fast: run it in fast mode (``COURSE_FAST=1`` in the kernel's environment).
        on_cell: called with the index of each code cell (0-based) before it runs.

    Returns:
        The executed notebook and the wall-clock seconds it took.

    Raises:
        CellExecutionError: a cell failed.
    """
    nb = nbformat.read(path, as_version=4)
    client = ProgressClient(
        nb,
        on_cell or (lambda _i: None),
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        # Every output is in once the last cell returns: kill the kernel rather than wait
        # 1-2 s for TensorFlow's own shutdown (a measured 15-20 s over the whole course).
        shutdown_kernel="immediate",
        # TensorFlow's C++ log lines go to the kernel's stderr (a log file), not into cells.
        extra_arguments=[
            "--IPKernelApp.capture_fd_output=False",
            "--IPKernelApp.log_level=ERROR",
        ],
    )
    with _environ(config.FAST_ENV, "1" if fast else "0"):  # the kernel inherits it
        start = time.perf_counter()
        try:
            with open(log_path(path, fast), "w", encoding="utf-8") as log:
                client.execute(stderr=log)
        except CellExecutionError:
            _write_cell_times(client.cell_seconds, path, fast)
            try:  # keep the partial run for debugging, if the cache folder can be written
                _write_notebook(nb, failed_path(path, fast))
            except OSError as err:
                print(f"    (could not keep the partly executed notebook: {err})", flush=True)
            raise
        seconds = time.perf_counter() - start
        _write_cell_times(client.cell_seconds, path, fast)
        return nb, seconds


def _write_cell_times(cells: list[dict[str, Any]], path: Path, fast: bool) -> None:
    """Keep the per-cell times of a run (slowest first), to find where a notebook's time goes."""
    try:
        ordered = sorted(cells, key=lambda c: -c["seconds"])
        text = json.dumps({"notebook": path.stem, "cells": ordered}, indent=1)
        write_bytes_atomic(text.encode("utf-8") + b"\n", cell_times_path(path, fast))
    except OSError as err:
        print(f"    (could not keep the cell times: {err})", flush=True)


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


def _cached_work(mode: str) -> set[str]:
    """Trained models plus the answers :mod:`course_lib.memo` remembered (07's TFLM runs):
    a run that adds either did the slow work itself, so its time is not a cached time."""
    return _cached_models(mode) | {f"{memo.OUTPUTS}/{name}" for name in memo.remembered(mode)}


@contextlib.contextmanager
def _environ(name: str, value: str | None) -> Iterator[None]:
    """Set (or, with None, leave alone) an environment variable for a block, then restore it."""
    previous = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


class Progress:
    """One terminal line per notebook: cell i/n and an estimate of the time left.

    Estimates come from the run times recorded in ``results/timings.json`` (first-run times
    when the model cache started empty, cached times otherwise). On a terminal the line is
    rewritten in place; in a log, only the finished line is printed.
    """

    def __init__(self, paths: list[Path], mode: str, first_run: bool) -> None:
        timings = report.load_timings().get("notebooks", {})
        keys = [f"{mode}_s", f"{mode}_cached_s"]
        if not first_run:
            keys.reverse()
        self.expected: dict[str, float | None] = {}
        for p in paths:
            entry = timings.get(p.stem, {})
            self.expected[p.stem] = next((entry[k] for k in keys if entry.get(k)), None)
        self.paths, self.mode = paths, mode
        self.start = time.perf_counter()
        self.tty = sys.stdout.isatty()
        self.rows: list[list[str]] = []

    def _left(self, index: int, notebook_elapsed: float) -> str:
        rest = [self.expected[p.stem] for p in self.paths[index + 1 :]]
        current = self.expected[self.paths[index].stem]
        known = [r for r in rest if r is not None]
        if current is None or len(known) != len(rest):
            return "time left unknown"
        left = max(0.0, current - notebook_elapsed) + sum(known)
        return f"~{report.format_seconds(left)} left"

    def line(self, index: int, cell: int, cells: int, notebook_start: float) -> str:
        elapsed = time.perf_counter() - notebook_start
        path = self.paths[index]
        return (
            f"[{self.mode} {index + 1}/{len(self.paths)}] {path.stem:<22} "
            f"cell {cell:>3}/{cells:<3} {report.format_seconds(elapsed):>10}  "
            f"{self._left(index, elapsed)}"
        )

    def update(self, index: int, cell: int, cells: int, notebook_start: float) -> None:
        if self.tty:
            text = self.line(index, cell, cells, notebook_start)
            print(f"\r{text:<100}", end="", flush=True)

    def finish(self, index: int, cells: int, seconds: float | None, note: str) -> None:
        path = self.paths[index]
        total = report.format_seconds(time.perf_counter() - self.start)
        status = report.format_seconds(seconds) if seconds is not None else "FAILED"
        text = (
            f"[{self.mode} {index + 1}/{len(self.paths)}] {path.stem:<22} {cells:>3} cells "
            f"{status:>10}  {note}(course so far {total})"
        )
        print(f"\r{text:<100}" if self.tty else text, flush=True)
        self.rows.append([path.stem, status, note.strip(" ;") or "-"])


def _run_one(
    path: Path,
    fast: bool,
    progress: Progress,
    index: int,
    record: bool = True,
    store: bool = True,
) -> tuple[float | None, bool]:
    """Execute one notebook; store its outputs (full mode) and record its run time.

    The time is recorded as ``<mode>_s`` when the notebook trained (wrote new models to the
    cache) and as ``<mode>_cached_s`` when it found everything it needed in the cache.

    Returns:
        ``(seconds or None if it failed, whether it trained a model)``.
    """
    mode = "fast" if fast else "full"
    before = _cached_work(mode)
    cells = sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)
    notebook_start = time.perf_counter()

    def on_cell(i: int) -> None:
        progress.update(index, i + 1, cells, notebook_start)

    try:
        nb, seconds = execute(path, fast, on_cell)
    except CellExecutionError as err:
        last_line = _ANSI.sub("", str(err)).strip().splitlines()[-1]
        kept = failed_path_or_none(path, fast)
        where = f" kept in {kept};" if kept is not None and kept.is_file() else ""
        progress.finish(index, cells, None, f"{last_line};{where} ")
        return None, False
    try:
        if fast or not store:
            _write_notebook(nb, config.artifacts_dir("notebooks", for_mode=mode) / path.name)
        else:
            stamp(nb, mode, seconds)
            _write_notebook(nb, path)
    except OSError as err:
        progress.finish(index, cells, None, f"could not save the executed notebook: {err}; ")
        return None, False
    trained = bool(_cached_work(mode) - before)
    if record:
        key = f"{mode}_s" if trained else f"{mode}_cached_s"
        report.record_timing(path.stem, **{key: round(seconds, 1)})
    note = "trained or computed; " if trained else "from cache; "
    progress.finish(index, cells, seconds, note)
    return seconds, trained


def run_course(names: list[str] | None, fast: bool, time_only: bool = False) -> int:
    """Run notebooks as described in the module docstring; return the exit status.

    ``time_only`` runs full mode without storing outputs, to record run times; the
    notebooks' results then go to ``artifacts/full/timing-results``, not ``results/``.
    """
    scratch = None
    if time_only:
        scratch = str(config.artifacts_dir("timing-results", for_mode="full"))
    with _environ(config.RESULTS_ENV, scratch):
        return _run_course(names, fast, time_only)


def _run_course(names: list[str] | None, fast: bool, time_only: bool) -> int:
    paths = list_notebooks(names)
    mode = "fast" if fast else "full"
    if not fast:
        # 00 shows the course map with this run's timings, so it runs last.
        paths = sorted(paths, key=lambda p: (p.stem.startswith("00_"), p.stem))
    first_run = not _cached_work(mode)
    progress = Progress(paths, mode, first_run)
    print(
        f"Running {len(paths)} notebook(s) in {mode} mode"
        f"{' from an empty model cache' if first_run else ''}; kernel logs go to "
        f"{config.artifacts_dir('logs', for_mode=mode)}",
        flush=True,
    )
    failures, trained_any = [], False
    for i, path in enumerate(paths):
        seconds, trained = _run_one(path, fast, progress, i, store=not time_only)
        trained_any |= trained
        if seconds is None:
            failures.append(path.stem)
    total_s = time.perf_counter() - progress.start
    if not failures and names is None:
        key = "first_run_s" if first_run else ("cached_s" if not trained_any else "partial_run_s")
        report.record_course_time(
            f"course_{key}" if mode == "full" else f"course_fast_{key}",
            total_s,
            [p.stem for p in paths],
        )
    if not fast:
        from course_lib import readme

        readme.update_readme()
    print(f"\n{report.Table(['notebook', 'run time', 'note'], progress.rows)}")
    total = report.format_seconds(total_s)
    if failures:
        print(f"\n{len(failures)} notebook(s) failed: {', '.join(failures)} ({total})")
        return 1
    print(f"\nAll {len(paths)} notebook(s) ran in {mode} mode in {total}.")
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
        help="accepted for compatibility: full mode no longer runs a fast timing pass",
    )
    parser.add_argument(
        "--time-only",
        action="store_true",
        help="full mode without storing outputs: only record run times",
    )
    args = parser.parse_args(argv)
    return run_course(args.notebooks or None, fast=args.fast, time_only=args.time_only)


if __name__ == "__main__":
    sys.exit(main())
