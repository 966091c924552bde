"""The Result record every chapter writes, results/*.json, and comparison tables.

Introduced in 01_baseline. One :class:`Result` describes one deployable variant of a model,
measured on the full test set through LiteRT. A chapter collects its Results and writes them
with :func:`write_results` to ``results/<notebook-stem>.json`` (fast mode: under
``artifacts/fast/results``), together with the mode and the package versions and CPU that
produced them.
"""

from __future__ import annotations

import html
import json
import math
import platform
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config, system
from course_lib.atomic import write_json_atomic
from course_lib.compat import versions

TECHNIQUES = (
    "none",
    "pruning",
    "quantization",
    "combined",
    "filter_pruning",
    "architecture",
    "low_rank",
    "distillation",
    "mixed_precision",
    "learned_compression",
)
"""Allowed values of ``Result.technique``."""

_NOTEBOOK_RE = re.compile(r"^\d\d_[a-z0-9_]+$")

TARGETS = ("mobile", "cloud", "iot")
"""Allowed values of a deployment record's ``target`` (the seed article's three uses)."""

DEPLOYMENT_FIELDS: dict[str, str] = {
    "target": "one of TARGETS",
    "runtime": "the runtime that ran the model, e.g. 'litert', 'tflm', 'tf.function'",
    "threads": "whole number >= 1",
    "batch": "whole number >= 1",
    "throughput_ips": "images per second, > 0",
    "load_ms": "interpreter creation + allocate_tensors, milliseconds, >= 0",
    "peak_rss_bytes": "peak resident memory of the process, whole number > 0",
    "tflm_arena_bytes": "smallest TFLM tensor arena, whole number > 0",
    "tflm_accuracy": "accuracy through TFLM, fraction in [0, 1]",
    "tflm_agreement": "share of top-1 predictions equal to LiteRT's, fraction in [0, 1]",
    "flash_bytes": "bytes a microcontroller stores (the model file), whole number > 0",
}
"""The deployment chapter's fields (07_deployment): optional in ``Result.extra``, checked when
set."""


def _check_deployment(extra: dict[str, Any]) -> None:
    """Refuse a deployment field with the wrong type or range, naming the field and the rule."""
    for name, rule in DEPLOYMENT_FIELDS.items():
        if name not in extra:
            continue
        value = extra[name]
        if name == "target":
            ok = value in TARGETS
        elif name == "runtime":
            ok = isinstance(value, str) and bool(value.strip())
        elif name in ("threads", "batch"):
            ok = _whole(name, value) >= 1
        elif name in ("peak_rss_bytes", "tflm_arena_bytes", "flash_bytes"):
            ok = _whole(name, value) > 0
        elif name in ("tflm_accuracy", "tflm_agreement"):
            ok = 0.0 <= _real(name, value) <= 1.0
        elif name == "throughput_ips":
            ok = _real(name, value) > 0
        else:  # load_ms
            ok = _real(name, value) >= 0
        if not ok:
            raise ValueError(f"{name} must be {rule}; got {value!r}")


def _real(name: str, value: Any) -> float:
    """Return a finite real number as float; refuse bools, strings and NaN with the field name."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


def _whole(name: str, value: Any) -> int:
    """Return a whole number as int (NumPy integers accepted); refuse anything else."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a whole number, got {type(value).__name__} {value!r}")
    return int(value)


@dataclass
class Result:
    """One measured variant of a model: one row of ``results/<notebook>.json``.

    Attributes:
        variant: unique name within a results file, e.g. ``"pruned_90"``.
        model: architecture name, e.g. ``"seed_cnn"``.
        technique: one of ``TECHNIQUES``.
        accuracy: top-1 accuracy in [0, 1] of the deployed artifact on the test set.
        params: number of parameters.
        nonzero_params: parameters that are not exactly zero.
        macs: multiply-accumulates for one example.
        tflite_bytes: size of the .tflite file.
        tflite_gzip_bytes: its size after gzip level 9.
        latency_us: median single-image LiteRT ``invoke()`` time, 1 thread, after warm-up.
        accuracy_ci95: Wilson 95 % interval ``[low, high]`` of ``accuracy`` on the test images
            (see :mod:`course_lib.stats`); None only for a record built by hand.
        latency_iqr_us: ``[25th, 75th percentile]`` of the timed ``invoke()`` calls, pooled
            over several measurement rounds; None only for a record built by hand.
        baseline: the variant this one is compared against (None for a baseline).
        extra: chapter-specific fields (``sparsity``, ``pipeline``, ``policy``...), written
            at the top level of the JSON record. The deployment fields
            (:data:`DEPLOYMENT_FIELDS`: ``target``, ``runtime``, ``threads``, ``batch``,
            ``throughput_ips``, ``load_ms``, ``peak_rss_bytes``, ``tflm_arena_bytes``,
            ``tflm_accuracy``, ``tflm_agreement``, ``flash_bytes``) are checked when present.
    """

    variant: str
    model: str
    technique: str
    accuracy: float
    params: int
    nonzero_params: int
    macs: int
    tflite_bytes: int
    tflite_gzip_bytes: int
    latency_us: float
    accuracy_ci95: list[float] | None = None
    latency_iqr_us: list[float] | None = None
    baseline: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.technique not in TECHNIQUES:
            raise ValueError(f"technique {self.technique!r} is not one of: {', '.join(TECHNIQUES)}")
        self.accuracy = _real("accuracy", self.accuracy)
        self.latency_us = _real("latency_us", self.latency_us)
        if not 0.0 <= self.accuracy <= 1.0:
            hint = " (it looks like a percentage: store 0.9801, not 98.01)" * (
                1.0 < self.accuracy <= 100.0
            )
            raise ValueError(f"accuracy must be a fraction in [0, 1], got {self.accuracy}{hint}")
        for name in ("params", "nonzero_params", "macs", "tflite_bytes", "tflite_gzip_bytes"):
            value = _whole(name, getattr(self, name))
            setattr(self, name, value)
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        for name in ("tflite_bytes", "tflite_gzip_bytes", "latency_us"):
            if not getattr(self, name) > 0:  # ratios and speed-ups divide by these
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.nonzero_params > self.params:
            raise ValueError(
                f"nonzero_params ({self.nonzero_params}) exceeds params ({self.params})"
            )
        for name, low_ok in (("accuracy_ci95", 0.0), ("latency_iqr_us", 0.0)):
            pair = getattr(self, name)
            if pair is None:
                continue
            if len(pair) != 2 or not low_ok <= pair[0] <= pair[1]:
                raise ValueError(
                    f"{name} must be [low, high] with {low_ok} <= low <= high, got {pair}"
                )
            setattr(self, name, [float(pair[0]), float(pair[1])])
        if self.accuracy_ci95 is not None and not (
            self.accuracy_ci95[0] - 1e-4 <= self.accuracy <= self.accuracy_ci95[1] + 1e-4
        ):
            raise ValueError(
                f"accuracy {self.accuracy} lies outside its interval {self.accuracy_ci95}"
            )
        clash = set(self.extra) & {f.name for f in fields(self)}
        if clash:
            raise ValueError(f"extra fields {sorted(clash)} clash with Result's own fields")
        _check_deployment(self.extra)
        if (
            "shipped_bytes" in self.extra
            and _whole("shipped_bytes", self.extra["shipped_bytes"]) <= 0
        ):
            raise ValueError(f"shipped_bytes must be > 0, got {self.extra['shipped_bytes']}")

    def to_dict(self) -> dict[str, Any]:
        """Return the flat JSON record (``extra`` merged in, ``baseline`` only when set)."""
        record: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (
                f.name in ("baseline", "accuracy_ci95", "latency_iqr_us") and value is None
            ):
                continue
            record[f.name] = value
        record.update(self.extra)
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Result:
        """Rebuild a Result from :meth:`to_dict`'s output; unknown keys go to ``extra``.

        Raises:
            ValueError: a required field is missing.
        """
        own = {f.name for f in fields(cls)} - {"extra"}
        required = own - {"baseline", "accuracy_ci95", "latency_iqr_us"}
        missing = sorted(required - set(record))
        if missing:
            raise ValueError(f"result record lacks the fields {missing}")
        kwargs = {k: v for k, v in record.items() if k in own}
        extra = {k: v for k, v in record.items() if k not in own}
        return cls(**kwargs, extra=extra)

    @property
    def is_deployment(self) -> bool:
        """True for a deployment chapter's row (it has a ``target``): a model measured on a
        runtime, not a new variant of it. Summaries of the variants leave these rows out."""
        return "target" in self.extra

    @property
    def download_bytes(self) -> int:
        """The bytes a user downloads: ``shipped_bytes`` for a learned-compression row (one
        entropy-coded file that decodes to the .tflite), else the gzip of the .tflite."""
        return int(self.extra.get("shipped_bytes", self.tflite_gzip_bytes))

    def ratio_to(self, baseline: Result) -> float:
        """Compression ratio: the baseline's gzip bytes / this variant's :attr:`download_bytes`
        (gzip bytes, or the shipped file's bytes for a learned-compression row)."""
        return baseline.tflite_gzip_bytes / self.download_bytes

    def speedup_to(self, baseline: Result) -> float:
        """Latency speed-up: baseline median latency / this variant's median latency."""
        return baseline.latency_us / self.latency_us


def environment_info() -> dict[str, str]:
    """Return the package versions, CPU and machine that produced a set of numbers."""
    info = versions()
    return {
        "tensorflow": info["tensorflow"],
        "tf_keras": info["tf_keras"],
        "tfmot": info["tfmot"],
        "litert": info["litert"],
        "numpy": info["numpy"],
        "python": info["python"],
        "cpu": system.cpu_name(),
        "machine": platform.machine(),
    }


@dataclass
class ResultsFile:
    """The contents of one ``results/<notebook>.json``."""

    notebook: str
    mode: str
    dataset: str
    environment: dict[str, str]
    results: list[Result]
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, variant: str) -> Result:
        """Return the Result named ``variant``.

        Raises:
            KeyError: no such variant (the message lists the ones present).
        """
        for result in self.results:
            if result.variant == variant:
                return result
        names = ", ".join(r.variant for r in self.results)
        raise KeyError(f"{self.notebook} has no variant {variant!r}; it has: {names}")


def _check_notebook_name(notebook: str) -> None:
    if not _NOTEBOOK_RE.match(notebook):
        raise ValueError(f"notebook must be a notebook stem like '01_baseline', got {notebook!r}")


def results_path(notebook: str, dataset: str = "mnist") -> Path:
    """Return where ``notebook``'s results go in the current mode.

    MNIST results (the course's) go to ``<results>/<notebook>.json``; any other dataset to
    ``<results>/<dataset>/<notebook>.json``, so it never overwrites or mislabels them.
    """
    _check_notebook_name(notebook)
    folder = config.results_dir()
    if dataset != "mnist":
        folder = folder / dataset
        folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{notebook}.json"


def _dataset_of(results: Sequence[Result], dataset: str | None) -> str:
    """Return the dataset the rows were measured on (recorded by ``measure_tflite``)."""
    recorded = sorted({str(r.extra["dataset"]) for r in results if "dataset" in r.extra})
    if len(recorded) > 1:
        raise ValueError(f"results mix datasets {recorded}: write one file per dataset")
    if dataset is not None and recorded and recorded[0] != dataset:
        raise ValueError(
            f"dataset={dataset!r} was passed but the results were measured on {recorded[0]!r}"
        )
    if dataset is None and not recorded:
        raise ValueError(
            "the results do not record the dataset they were measured on: pass it, "
            "e.g. write_results(notebook, results, dataset='mnist')"
        )
    return dataset if dataset is not None else recorded[0]


def write_results(
    notebook: str,
    results: Sequence[Result],
    dataset: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a chapter's Results to ``results/<notebook>.json`` (fast mode: artifacts/fast).

    Args:
        notebook: the notebook stem, e.g. ``"02_pruning"``.
        results: the chapter's Results; variant names must be unique and every ``baseline``
            must name a variant in the same file.
        dataset: the dataset the accuracies were measured on; by default the one the rows
            recorded when they were measured. Non-MNIST results go to a sub-folder (see
            :func:`results_path`).
        extra: chapter-level fields to store beside the results (e.g. timings).

    Returns:
        The path written.

    Raises:
        ValueError: bad notebook name, no results, duplicate variants, a dangling baseline,
            or a dataset that disagrees with the rows' own.
    """
    _check_notebook_name(notebook)
    if not results:
        raise ValueError("no results to write")
    names = [r.variant for r in results]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate variant names: {duplicates}")
    for r in results:
        if r.baseline is not None and r.baseline not in names:
            raise ValueError(
                f"variant {r.variant!r} names baseline {r.baseline!r}, which is not in this file"
            )
    unspread = [r.variant for r in results if r.accuracy_ci95 is None or r.latency_iqr_us is None]
    if unspread:
        raise ValueError(
            f"rows {unspread} lack accuracy_ci95 / latency_iqr_us: no number without its spread "
            "(measure variants with course_lib.variants.measure_tflite, which fills both)"
        )
    dataset = _dataset_of(results, dataset)
    payload = {
        "notebook": notebook,
        "mode": config.mode(),
        "dataset": dataset,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": environment_info(),
        **(extra or {}),
        "results": [r.to_dict() for r in results],
    }
    return write_json_atomic(payload, results_path(notebook, dataset))


class ResultsFileError(ValueError):
    """A results file that cannot be read: the message names it and how to restore it."""


def _restore_hint(path: Path, notebook: str) -> str:
    root = path.resolve().parent.parent
    return (
        f'Restore the committed file with `git -C "{root}" checkout -- results/{path.name}`, '
        f"or re-run notebooks/{notebook}.ipynb to measure it again."
    )


def load_results(notebook: str, folder: str | Path | None = None) -> ResultsFile:
    """Read ``<folder>/<notebook>.json`` (default: this mode's results folder).

    Raises:
        FileNotFoundError: the file does not exist (run that notebook first).
        ResultsFileError: (a ``ValueError``) the file is cut, not JSON, not a results record,
            or a row holds an impossible value (accuracy as a string or as a percentage,
            zero bytes or latency...); the message names the file, the row and the fix.
    """
    _check_notebook_name(notebook)
    path = Path(folder) / f"{notebook}.json" if folder else results_path(notebook)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; run notebooks/{notebook}.ipynb (or `make course`) first"
        )
    fix = _restore_hint(path, notebook)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultsFileError(f"{path} is not valid JSON ({err}): is it cut short? {fix}") from err
    if not isinstance(payload, dict):
        raise ResultsFileError(
            f"{path} holds a JSON {type(payload).__name__}, not a results record "
            f"(an object with notebook, mode, dataset, environment, results). {fix}"
        )
    missing = [
        k for k in ("notebook", "mode", "dataset", "environment", "results") if k not in payload
    ]
    if missing:
        raise ResultsFileError(f"{path} is not a results file: it lacks {missing}. {fix}")
    rows = payload["results"]
    if not isinstance(rows, list) or not rows:
        raise ResultsFileError(f"{path}: 'results' must be a non-empty list of rows. {fix}")
    results = []
    for i, row in enumerate(rows):
        name = row.get("variant", f"#{i}") if isinstance(row, dict) else f"#{i}"
        try:
            if not isinstance(row, dict):
                raise ValueError(f"a row must be an object, got {type(row).__name__}")
            results.append(Result.from_dict(row))
        except (ValueError, TypeError) as err:
            raise ResultsFileError(f"{path}, row {name!r}: {err}. {fix}") from err
    known = {"notebook", "mode", "dataset", "environment", "results", "created"}
    return ResultsFile(
        notebook=payload["notebook"],
        mode=payload["mode"],
        dataset=payload["dataset"],
        environment=payload["environment"],
        results=results,
        created=payload.get("created", ""),
        extra={k: v for k, v in payload.items() if k not in known},
    )


def load_all_results(folder: str | Path | None = None) -> dict[str, ResultsFile]:
    """Read every ``NN_name.json`` in a results folder, keyed by notebook stem."""
    folder = Path(folder) if folder else config.results_dir()
    files = sorted(p for p in folder.glob("*.json") if _NOTEBOOK_RE.match(p.stem))
    return {p.stem: load_results(p.stem, folder) for p in files}


def pareto_front(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Return the indices of points not dominated when smaller x and larger y are better.

    A point is dominated when another is at least as good on both axes and better on one.
    Example: x = size, y = accuracy. Indices are returned in order of increasing x.

    Raises:
        ValueError: xs and ys differ in length.
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length: {len(xs)} vs {len(ys)}")
    front = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        dominated = any(
            (x2 <= x and y2 >= y) and (x2 < x or y2 > y)
            for j, (x2, y2) in enumerate(zip(xs, ys, strict=True))
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (xs[i], -ys[i]))


MAX_LINE = 100
"""The longest line of text a notebook output may have (course design: no output line over
100 characters)."""


def wrap_markdown(text: str, width: int = MAX_LINE) -> str:
    """Wrap a Markdown text's long lines at ``width`` without changing how it renders.

    Paragraphs and list items are re-flowed (a list item's continuation lines are indented
    under its text); headings, tables, code fences and their contents are left as they are.
    """
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or len(line) <= width or line.lstrip().startswith(("|", "#", "```")):
            out.append(line)
            continue
        marker = re.match(r"^(\s*)([-*+]|\d+[.)])?\s*", line)
        prefix = marker.group(0) if marker else ""
        out.append(
            textwrap.fill(
                line[len(prefix) :],
                width,
                initial_indent=prefix,
                subsequent_indent=" " * len(prefix),
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(out)


class Table:
    """A small table that renders as HTML in Jupyter, Markdown in the README, text in a shell.

    In Jupyter a table wider than :data:`MAX_LINE` characters of text per row is shown as a
    short summary table plus a collapsed ``<details>`` block: the other columns in tables that
    repeat the first ``keys`` columns and each fit in ``MAX_LINE``, and columns too wide for any
    table (long notes) as a list. ``summary`` names the columns the short table shows first.
    """

    def __init__(
        self,
        headers: Sequence[str],
        rows: Iterable[Sequence[Any]],
        summary: Sequence[str] = (),
        keys: int = 1,
    ) -> None:
        self.headers = [str(h) for h in headers]
        self.rows = [[str(c) for c in row] for row in rows]
        for row in self.rows:
            if len(row) != len(self.headers):
                raise ValueError(f"row {row} has {len(row)} cells, expected {len(self.headers)}")
        unknown = [h for h in summary if h not in self.headers]
        if unknown:
            raise ValueError(f"summary columns {unknown} are not among {self.headers}")
        self.summary = [str(h) for h in summary]
        if not 1 <= keys <= len(self.headers):
            raise ValueError(f"keys={keys}: need 1 to {len(self.headers)} leading key columns")
        self.keys = keys

    def to_markdown(self) -> str:
        """Return a GitHub-flavoured Markdown table."""
        lines = ["| " + " | ".join(self.headers) + " |"]
        lines.append("|" + "|".join("---" for _ in self.headers) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)

    def _widths(self) -> list[int]:
        return [
            max(len(r[i]) for r in [self.headers, *self.rows]) for i in range(len(self.headers))
        ]

    def __str__(self) -> str:
        widths = self._widths()
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*self.headers), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*row) for row in self.rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        """The text table when it fits in :data:`MAX_LINE` characters, else a one-line note:
        Jupyter stores this beside the HTML table, and shows the HTML."""
        text = str(self)
        if max(map(len, text.splitlines())) <= MAX_LINE:
            return text
        return (
            f"<table: {len(self.rows)} rows x {len(self.headers)} columns, shown as HTML; "
            "print() it for text>"
        )

    def column_groups(self, width: int = MAX_LINE) -> tuple[list[list[int]], list[int]]:
        """Split the columns (as indices) into tables of at most ``width`` characters of text
        per row, counted as :meth:`__str__` lays them out (cells padded to the column, two
        spaces between).

        Returns ``(groups, notes)``: every group starts with the key columns; the first is the
        summary (``summary`` columns first, then each other column that still fits); ``notes``
        are the columns too wide to share a row with the keys.
        """
        widths = self._widths()
        if sum(widths) + 2 * (len(widths) - 1) <= width:
            return [list(range(len(widths)))], []
        key = list(range(self.keys))
        others = range(self.keys, len(widths))

        def fits(group: list[int], i: int) -> bool:
            return sum(widths[j] + 2 for j in group) + widths[i] <= width

        notes = [i for i in others if not fits(key, i)]
        wanted = [self.headers.index(h) for h in self.summary]
        first = list(key)
        for i in [*wanted, *others]:
            if i not in first and i not in notes and fits(first, i):
                first.append(i)
        groups = [sorted(first)]
        for i in others:  # the detail tables keep the table's column order
            if i in first or i in notes:
                continue
            if len(groups) == 1 or not fits(groups[-1], i):
                groups.append(list(key))
            groups[-1].append(i)
        return groups, notes

    def _html_table(self, columns: Sequence[int]) -> str:
        head = "".join(f"<th>{html.escape(self.headers[i])}</th>" for i in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(row[i])}</td>" for i in columns) + "</tr>"
            for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def _repr_html_(self) -> str:
        groups, notes = self.column_groups()
        out = self._html_table(groups[0])
        if len(groups) == 1 and not notes:
            return out
        hidden = [self.headers[i] for g in groups[1:] for i in g[self.keys :]]
        hidden += [self.headers[i] for i in notes]
        parts = [self._html_table(g) for g in groups[1:]]
        for i in notes:
            items = "".join(
                f"<li><b>{html.escape(' '.join(row[: self.keys]))}</b>: {html.escape(row[i])}</li>"
                for row in self.rows
            )
            parts.append(f"<p><b>{html.escape(self.headers[i])}</b></p><ul>{items}</ul>")
        label = html.escape("more columns: " + ", ".join(hidden))
        return f"{out}<details><summary>{label}</summary>{''.join(parts)}</details>"


def fmt_int(n: float) -> str:
    """Format a count with thousands separators: 216650 -> '216,650'."""
    return f"{int(round(n)):,}"


Column = tuple[str, Callable[[Result, Result], str]]
"""A table column: ``(header, cell from (result, baseline))``."""

COLUMNS: dict[str, Column] = {
    "variant": ("variant", lambda r, b: r.variant),
    "model": ("model", lambda r, b: r.model),
    "technique": ("technique", lambda r, b: r.technique),
    "accuracy": ("accuracy %", lambda r, b: f"{100 * r.accuracy:.2f}"),
    "delta": ("Δ points", lambda r, b: f"{100 * (r.accuracy - b.accuracy):+.2f}"),
    "nonzero": ("nonzero params", lambda r, b: fmt_int(r.nonzero_params)),
    "macs": ("MACs", lambda r, b: fmt_int(r.macs)),
    "bytes": (".tflite bytes", lambda r, b: fmt_int(r.tflite_bytes)),
    "gzip": ("gzip bytes", lambda r, b: fmt_int(r.tflite_gzip_bytes)),
    "ratio": ("gzip ratio", lambda r, b: f"{r.ratio_to(b):.2f}x"),
    "download": ("download bytes", lambda r, b: fmt_int(r.download_bytes)),
    "download_ratio": ("ratio", lambda r, b: f"{r.ratio_to(b):.2f}x"),
    "latency": ("latency µs", lambda r, b: f"{r.latency_us:.1f}"),
    "speedup": ("speed-up", lambda r, b: f"{r.speedup_to(b):.2f}x"),
}
"""The columns a variants table can show: key -> (header, cell from (result, baseline))."""

COMPARISON_COLUMNS = (
    "variant",
    "accuracy",
    "delta",
    "nonzero",
    "macs",
    "bytes",
    "gzip",
    "ratio",
    "latency",
    "speedup",
)


SUMMARY_COLUMNS = ("variant", "accuracy", "delta", "ratio", "download_ratio", "speedup")
"""The columns a wide variants table shows first in Jupyter; the rest are one click away."""


def variants_table(
    pairs: Sequence[tuple[Result, Result]],
    columns: Sequence[str | Column] = COMPARISON_COLUMNS,
    first: tuple[str, Sequence[str]] | None = None,
    summary: Sequence[str] | None = None,
) -> Table:
    """Tabulate ``(result, its baseline)`` pairs with the chosen columns.

    The one table builder behind chapter tables, the summary and the README.

    Args:
        pairs: each variant with the Result it is compared against.
        columns: in order, keys of ``COLUMNS`` or ``(header, cell)`` pairs for a column of
            the caller's own (e.g. the summary's Δ with its verdict).
        first: an optional leading column ``(header, one value per pair)``, e.g. notebooks.
        summary: headers a wide table shows first in Jupyter (see :class:`Table`); default:
            those of :data:`SUMMARY_COLUMNS` among ``columns``.

    Raises:
        ValueError: an unknown column, or ``first`` of the wrong length.
    """
    unknown = [c for c in columns if isinstance(c, str) and c not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown columns {unknown}; known: {', '.join(COLUMNS)}")
    if first is not None and len(first[1]) != len(pairs):
        raise ValueError(f"{len(first[1])} values for column {first[0]!r}, {len(pairs)} rows")
    chosen = [COLUMNS[c] if isinstance(c, str) else c for c in columns]
    headers = [header for header, _ in chosen]
    rows = [[cell(r, b) for _, cell in chosen] for r, b in pairs]
    if first is not None:
        headers.insert(0, first[0])
        for row, value in zip(rows, first[1], strict=True):
            row.insert(0, str(value))
    if summary is None:
        summary = [COLUMNS[c][0] for c in SUMMARY_COLUMNS if c in columns]
    keys = 2 if first is not None and list(columns[:1]) == ["variant"] else 1
    return Table(headers, rows, summary=summary, keys=keys)


def comparison_table(results: Sequence[Result], baseline: Result | None = None) -> Table:
    """Tabulate Results against a baseline: accuracy change, sizes, ratio, latency, speed-up.

    Args:
        results: the variants to show (the baseline may be among them).
        baseline: the Result to compare with; default: the result each variant names in
            ``baseline``, or the first result without one.

    Raises:
        ValueError: no results, or no baseline can be found.
    """
    if not results:
        raise ValueError("no results to tabulate")
    by_name = {r.variant: r for r in results}

    def base_of(r: Result) -> Result:
        if baseline is not None:
            return baseline
        if r.baseline is None:
            return r
        if r.baseline in by_name:
            return by_name[r.baseline]
        raise ValueError(f"baseline {r.baseline!r} of {r.variant!r} is not among the results")

    return variants_table([(r, base_of(r)) for r in results])


TIMINGS_FILE = "timings.json"
"""Measured run time of every notebook, written by the runner into ``results/``."""


def timings_path() -> Path:
    """Return ``results/timings.json`` (always the committed folder: times are full-run facts)."""
    return config.repo_root() / "results" / TIMINGS_FILE


def load_timings() -> dict[str, Any]:
    """Return the recorded notebook timings (``{"notebooks": {stem: {...}}}``), or empty."""
    path = timings_path()
    if not path.is_file():
        return {"mode": "full", "notebooks": {}}
    return json.loads(path.read_text())


def record_timing(notebook: str, **fields: Any) -> Path:
    """Merge ``fields`` (e.g. ``full_s=95.2``) into the timings of ``notebook`` and save.

    Also records the CPU and date of the measurement. Times the entry holds from another CPU
    are dropped: the entry names one CPU, and every time in it was measured there.
    """
    _check_notebook_name(notebook)
    timings = load_timings()
    timings["mode"] = "full"  # written by `make course`, a full-mode run, and its fast pass
    entry = timings.setdefault("notebooks", {}).setdefault(notebook, {})
    cpu = system.cpu_name()
    if entry.get("cpu", cpu) != cpu:
        entry.clear()
    entry.update(fields)
    entry["cpu"] = cpu
    entry["measured"] = datetime.now(UTC).strftime("%Y-%m-%d")
    timings["notebooks"] = dict(sorted(timings["notebooks"].items()))
    return write_json_atomic(timings, timings_path())


def record_course_time(key: str, seconds: float, notebooks: Sequence[str] = ()) -> Path:
    """Record a whole-course run time (e.g. ``course_first_run_s``) with the CPU and date,
    and the notebooks the run covered (as ``<key>_notebooks``) when given. Whole-course times
    from another CPU are dropped, as :func:`record_timing` does for a notebook."""
    timings = load_timings()
    cpu = system.cpu_name()
    if timings.get("course_cpu", cpu) != cpu:
        for name in [k for k in timings if k.startswith("course_")]:
            del timings[name]
    timings[key] = round(seconds, 1)
    if notebooks:
        timings[f"{key}_notebooks"] = list(notebooks)
    timings["course_cpu"] = cpu
    timings["course_measured"] = datetime.now(UTC).strftime("%Y-%m-%d")
    return write_json_atomic(timings, timings_path())


def format_seconds(seconds: float | None) -> str:
    """Format a duration for people: 42 -> '42 s', 95 -> '1 min 35 s', None -> 'not measured'."""
    if seconds is None:
        return "not measured"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s"
