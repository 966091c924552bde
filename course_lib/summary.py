"""The course in one place: every measured variant, the best per goal with its ties, the
Pareto fronts, and what latency follows, all computed from ``results/*.json``.

The decision guide and the FAQ that put these into words are in :mod:`course_lib.guide`.

Introduced in 09_summary. Nothing here types a number by hand: every figure in the tables
and sentences comes from the results files that the chapters wrote.

Ties: two accuracies are a tie when their 95 % intervals overlap (the rows'
``accuracy_ci95``, or, for files written before that field existed, the Wilson interval of
the accuracy on the test images); two latencies are a tie when their interquartile ranges
(``latency_iqr_us``) overlap. A tie is never called better or worse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config, report, stats
from course_lib.report import Result, Table

TOLERANCE_POINTS = 0.3
"""How far below its baseline (in accuracy points) a variant may be to count as "as good"."""

TEST_IMAGES = 10_000
"""Test images behind a committed accuracy, for rows that do not record ``test_images``."""


def _field(r: Result, name: str) -> Any:
    """A field that newer Results carry as an attribute and older files in ``extra``."""
    return getattr(r, name, None) or r.extra.get(name)


def accuracy_interval(r: Result) -> tuple[float, float]:
    """The 95 % interval of a row's accuracy, as fractions.

    The row's ``accuracy_ci95`` when it has one; otherwise the Wilson interval of its
    accuracy on its ``test_images`` (10,000 when not recorded), the same formula.
    """
    ci = _field(r, "accuracy_ci95")
    if ci:
        return float(ci[0]), float(ci[1])
    n = int(_field(r, "test_images") or TEST_IMAGES)
    return stats.wilson_interval(round(r.accuracy * n), n)


def accuracy_tie(a: Result, b: Result) -> bool:
    """True when two accuracies' 95 % intervals overlap: the difference is not significant."""
    (low_a, high_a), (low_b, high_b) = accuracy_interval(a), accuracy_interval(b)
    return low_a <= high_b and low_b <= high_a


def latency_tie(a: Result, b: Result) -> bool | None:
    """True when two latencies' interquartile ranges overlap; None when a row lacks its spread."""
    iqr_a, iqr_b = _field(a, "latency_iqr_us"), _field(b, "latency_iqr_us")
    if not iqr_a or not iqr_b:
        return None
    return float(iqr_a[0]) <= float(iqr_b[1]) and float(iqr_b[0]) <= float(iqr_a[1])


@dataclass(frozen=True)
class Entry:
    """One measured variant with the baseline it is compared with (itself, for a baseline)."""

    notebook: str
    result: Result
    base: Result

    @property
    def delta_points(self) -> float:
        """Accuracy change against the baseline, in percentage points."""
        return 100 * (self.result.accuracy - self.base.accuracy)

    @property
    def ratio(self) -> float:
        """Compression ratio against the baseline (:meth:`Result.ratio_to`)."""
        return self.result.ratio_to(self.base)

    @property
    def speedup(self) -> float:
        """Single-image latency speed-up against the baseline."""
        return self.result.speedup_to(self.base)

    @property
    def is_baseline(self) -> bool:
        """True for the float32 references themselves."""
        return self.result.baseline is None

    @property
    def int8(self) -> bool:
        """True when the deployed file computes in int8 end to end."""
        extra = self.result.extra
        return extra.get("conversion") == "int8" or (
            self.result.technique == "combined"
            and str(extra.get("pipeline", "")).split(">")[-1]
            in ("ptq", "qat", "pqat", "cqat", "pcqat")
        )

    @property
    def verdict(self) -> str:
        """``"tie"`` when the accuracy's 95 % interval overlaps the baseline's, else
        ``"higher"`` or ``"lower"`` (a significant difference)."""
        if self.is_baseline or accuracy_tie(self.result, self.base):
            return "tie"
        return "higher" if self.result.accuracy > self.base.accuracy else "lower"

    @property
    def delta_text(self) -> str:
        """Δ points with its verdict, e.g. ``"+0.15 (tie)"``."""
        return f"{self.delta_points:+.2f} ({self.verdict})"

    def within(self, tolerance: float = TOLERANCE_POINTS) -> bool:
        """At most ``tolerance`` points below the baseline."""
        return self.delta_points >= -tolerance - 1e-9

    @property
    def label(self) -> str:
        """``variant`` (notebook), for sentences."""
        return f"`{self.result.variant}` ({self.notebook})"


def deployment_rows(folder: str | Path | None = None) -> list[Result]:
    """Every deployment row (a ``target``, written by 07_deployment) of every results file."""
    folder = Path(folder) if folder else config.results_dir()
    return [
        r
        for results_file in report.load_all_results(folder).values()
        for r in results_file.results
        if r.is_deployment
    ]


def course_entries(folder: str | Path | None = None) -> list[Entry]:
    """Every variant of every results file, paired with its baseline.

    Deployment rows (:attr:`course_lib.report.Result.is_deployment`) are left out: they
    measure the same variants on other runtimes; :func:`deployment_rows` returns them.

    Default folder: this mode's results folder (``results/`` in full mode).
    """
    folder = Path(folder) if folder else config.results_dir()
    entries = []
    for stem, results_file in report.load_all_results(folder).items():
        by_name = {r.variant: r for r in results_file.results}
        for r in results_file.results:
            if r.is_deployment:  # the same models on other runtimes: see deployment_rows
                continue
            base = by_name.get(r.baseline, r) if r.baseline is not None else r
            entries.append(Entry(stem, r, base))
    return entries


def seed_task(entries: Sequence[Entry]) -> list[Entry]:
    """The variants compared with the seed CNN (the course's main task), baselines included."""
    return [e for e in entries if e.base.model == "seed_cnn"]


ENTRY_COLUMNS: tuple[str | report.Column, ...] = (
    "variant",
    "model",
    "technique",
    "accuracy",
    ("Δ points (vs baseline)", lambda r, b: Entry("", r, b).delta_text),
    ("bytes", report.COLUMNS["bytes"][1]),
    "gzip",
    ("ratio", lambda r, b: f"{r.ratio_to(b):.1f}x"),
    "latency",
    ("speed-up", lambda r, b: f"{r.speedup_to(b):.1f}x"),
    "macs",
)
"""The columns of :func:`entries_table`: ``report.COLUMNS`` keys, plus the Δ with its verdict
and ratios to one decimal (the table has a row per variant of the whole course)."""


def entries_table(entries: Sequence[Entry]) -> Table:
    """One row per variant: the numbers of the Result record plus ratio and speed-up."""
    pairs = [(e.result, e.base) for e in entries]
    return report.variants_table(
        pairs,
        ENTRY_COLUMNS,
        first=("notebook", [e.notebook for e in entries]),
        summary=["accuracy %", "Δ points (vs baseline)", "ratio", "speed-up"],
    )


GOALS = ("smallest", "fastest", "most_accurate", "smallest_int8_file")
_GOAL_WORDS = {
    "smallest": ("smallest download", "gzip bytes, or a shipped file; within 0.3 points"),
    "fastest": ("fastest", "latency; within 0.3 points"),
    "most_accurate": ("most accurate", "test accuracy"),
    "smallest_int8_file": ("smallest int8 file", "raw bytes of a full-int8 .tflite file"),
}


def _pool(entries: Sequence[Entry], goal: str, tolerance: float) -> list[Entry]:
    if goal not in GOALS:
        raise ValueError(f"unknown goal {goal!r}; choose one of {', '.join(GOALS)}")
    pool = [e for e in entries if goal == "most_accurate" or e.within(tolerance)]
    if goal == "smallest_int8_file":
        pool = [e for e in pool if e.int8]
    return pool


def best(entries: Sequence[Entry], goal: str, tolerance: float = TOLERANCE_POINTS) -> Entry:
    """The best variant for a goal among those within ``tolerance`` points of their baseline.

    Goals: ``smallest`` (download bytes: gzip, or a learned-compression row's shipped file),
    ``fastest`` (latency), ``most_accurate`` (accuracy, no tolerance needed),
    ``smallest_int8_file`` (raw .tflite bytes of a full-int8 file: what a microcontroller
    stores in flash, uncompressed). See :func:`ties` for the variants that
    are not significantly worse.

    Raises:
        ValueError: unknown goal, or no variant qualifies.
    """
    pool = _pool(entries, goal, tolerance)
    if not pool:
        raise ValueError(f"no variant qualifies for {goal!r}")
    key = {
        "smallest": lambda e: e.result.download_bytes,
        "fastest": lambda e: e.result.latency_us,
        "most_accurate": lambda e: -e.result.accuracy,
        "smallest_int8_file": lambda e: e.result.tflite_bytes,
    }[goal]
    return min(pool, key=key)


def ties(
    entries: Sequence[Entry], goal: str, tolerance: float = TOLERANCE_POINTS
) -> list[Entry] | None:
    """The other candidates for ``goal`` that are not significantly worse than the best.

    Accuracy: 95 % intervals overlap; latency: interquartile ranges overlap. Byte counts are
    exact, so size goals have no ties (an empty list). None when the rows lack the latency
    spread needed to decide.
    """
    winner = best(entries, goal, tolerance)
    others = [e for e in _pool(entries, goal, tolerance) if e is not winner]
    if goal == "most_accurate":
        return [e for e in others if accuracy_tie(e.result, winner.result)]
    if goal == "fastest":
        verdicts = [(e, latency_tie(e.result, winner.result)) for e in others]
        if any(v is None for _, v in verdicts):
            return None
        return [e for e, v in verdicts if v]
    return []


def _ties_text(found: list[Entry] | None, goal: str) -> str:
    if found is None:
        return "unknown: latency spread not recorded"
    if goal in ("smallest", "smallest_int8_file"):
        return "none: byte counts are exact"
    if not found:
        return "none: significantly ahead"
    names = list(dict.fromkeys(e.result.variant for e in found))
    more = ", ..." if len(names) > 3 else ""
    return f"tie with {len(found)}: {', '.join(names[:3])}{more}"


def best_table(entries: Sequence[Entry]) -> Table:
    """The best variant of the seed-CNN task for each goal, with the variants tied with it."""
    task = seed_task(entries)
    rows = []
    for goal, (words, rule) in _GOAL_WORDS.items():
        try:
            e = best(task, goal)
        except ValueError:
            rows.append([words, rule, "none", "", "", "", "", "", ""])
            continue
        low, high = accuracy_interval(e.result)
        rows.append(
            [
                words,
                rule,
                e.result.variant,
                e.notebook,
                f"{100 * e.result.accuracy:.2f} [{100 * low:.2f}, {100 * high:.2f}]",
                e.delta_text,
                f"{e.result.tflite_gzip_bytes:,} B gzip, {e.result.tflite_bytes:,} B raw",
                f"{e.result.latency_us:.1f} µs",
                _ties_text(ties(task, goal), goal),
            ]
        )
    headers = ["goal", "ranked by", "variant", "notebook", "accuracy % [95 % CI]", "Δ points"]
    return Table(
        [*headers, "size", "latency", "not significantly worse"],
        rows,
        summary=["variant", "Δ points", "size", "latency"],
    )


def seed_comparisons(folder: str | Path | None = None) -> list[dict[str, Any]]:
    """The seed-repeated comparisons the chapters stored (a results file's
    ``seed_comparisons``, see ``stats.SeedComparison.as_dict``), each with its notebook."""
    folder = Path(folder) if folder else config.results_dir()
    return [
        {"notebook": stem, **comparison}
        for stem, results_file in report.load_all_results(folder).items()
        for comparison in results_file.extra.get("seed_comparisons", [])
    ]


def seed_table(comparisons: Sequence[dict[str, Any]]) -> Table:
    """One row per stored seed comparison: mean ± std of each recipe, the paired t test,
    and McNemar's test of each seed's two models on the test images ("-": not stored)."""
    rows = [
        [
            c["notebook"],
            f"{c['a']} vs {c['b']}",
            str(c["seeds"]),
            f"{100 * c['mean_a']:.2f} ± {100 * c['std_a']:.2f}",
            f"{100 * c['mean_b']:.2f} ± {100 * c['std_b']:.2f}",
            f"{100 * c['mean_diff']:+.2f}",
            f"{c['p_value']:.2g}",
            ", ".join(f"{p:.2g}" for p in c.get("mcnemar_p_values", [])) or "-",
            "significant" if c["significant"] else "tie",
        ]
        for c in comparisons
    ]
    headers = ["notebook", "comparison", "seeds", "a: accuracy %", "b: accuracy %"]
    return Table([*headers, "Δ points", "p", "McNemar p per seed", "verdict"], rows)


def front_ties(results: Sequence[Result], x: str = "tflite_gzip_bytes") -> list[dict[str, Any]]:
    """The Pareto front (smaller ``x``, higher accuracy), each member tested against the
    previous one: a member more accurate only within the 95 % intervals is a ``tie``.

    Returns:
        ``[{"variant", "x", "accuracy", "previous", "tie"}, ...]`` in order of increasing x
        (the first member has ``previous`` None and ``tie`` False).
    """
    xs = [float(r.to_dict()[x]) for r in results]
    front = report.pareto_front(xs, [r.accuracy for r in results])
    rows: list[dict[str, Any]] = []
    for k, i in enumerate(front):
        previous = results[front[k - 1]] if k else None
        rows.append(
            {
                "variant": results[i].variant,
                "x": xs[i],
                "accuracy": results[i].accuracy,
                "previous": previous.variant if previous else None,
                "tie": bool(previous and accuracy_tie(results[i], previous)),
            }
        )
    return rows


def front_table(results: Sequence[Result], x: str = "tflite_gzip_bytes", unit: str = "") -> Table:
    """:func:`front_ties` as a table."""
    rows = []
    for row in front_ties(results, x):
        if row["previous"] is None:
            verdict = "first member"
        elif row["tie"]:
            verdict = f"tie: not significantly more accurate than {row['previous']}"
        else:
            verdict = f"significantly more accurate than {row['previous']}"
        x_text = f"{row['x']:,.0f}" if float(row["x"]).is_integer() else f"{row['x']:,.1f}"
        rows.append([row["variant"], f"{x_text} {unit}".strip(), verdict])
    return Table(["Pareto front member", x, "accuracy against the previous member"], rows)


def _log_fit(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Least-squares line through (log10 x, log10 y): slope, intercept and R²."""
    lx, ly = np.log10(x), np.log10(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    residual = ly - (slope * lx + intercept)
    r2 = 1.0 - float(np.sum(residual**2) / np.sum((ly - ly.mean()) ** 2))
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2}


def weight_bytes(r: Result) -> int:
    """Bytes of the stored weights: the row's ``weight_bytes`` when recorded, else the
    ``.tflite`` size (weights are nearly all of it)."""
    return int(_field(r, "weight_bytes") or r.tflite_bytes)


def latency_drivers(results: Sequence[Result]) -> dict[str, dict[str, float]]:
    """Fit log latency against log weight bytes and against log MACs, over all rows.

    Returns:
        ``{"weight_bytes": fit, "macs": fit}``, each ``{"slope", "intercept", "r2"}``.

    Raises:
        ValueError: fewer than 3 rows with positive bytes, MACs and latency.
    """
    rows = [r for r in results if r.macs > 0 and r.latency_us > 0 and weight_bytes(r) > 0]
    if len(rows) < 3:
        raise ValueError(f"need at least 3 measured rows to fit a line, got {len(rows)}")
    latency = np.array([r.latency_us for r in rows], dtype=float)
    return {
        "weight_bytes": _log_fit(np.array([weight_bytes(r) for r in rows], float), latency),
        "macs": _log_fit(np.array([r.macs for r in rows], float), latency),
    }


def same_macs_spread(results: Sequence[Result]) -> tuple[Result, Result]:
    """The slowest and fastest rows among rows with identical MACs (largest latency ratio)."""
    groups: dict[int, list[Result]] = {}
    for r in results:
        groups.setdefault(r.macs, []).append(r)
    pairs = [
        (max(g, key=lambda r: r.latency_us), min(g, key=lambda r: r.latency_us))
        for g in groups.values()
    ]
    return max(pairs, key=lambda p: p[0].latency_us / p[1].latency_us)
