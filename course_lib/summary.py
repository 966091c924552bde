"""The course in one place: every measured variant, the best per goal, a decision guide and
the seed article's FAQ, all generated from ``results/*.json``.

Introduced in 07_summary. Nothing here types a number by hand: every figure in the tables
and sentences comes from the results files that the chapters wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from course_lib import config, report
from course_lib.report import Result, Table

TOLERANCE_POINTS = 0.3
"""How far below its baseline (in accuracy points) a variant may be to count as "as good"."""


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
        """gzip compression ratio against the baseline."""
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

    def within(self, tolerance: float = TOLERANCE_POINTS) -> bool:
        """At most ``tolerance`` points below the baseline."""
        return self.delta_points >= -tolerance - 1e-9

    @property
    def label(self) -> str:
        """``variant`` (notebook), for sentences."""
        return f"`{self.result.variant}` ({self.notebook})"


def course_entries(folder: str | Path | None = None) -> list[Entry]:
    """Every Result of every results file, paired with its baseline.

    Default folder: this mode's results folder (``results/`` in full mode).
    """
    folder = Path(folder) if folder else config.results_dir()
    entries = []
    for stem, results_file in report.load_all_results(folder).items():
        by_name = {r.variant: r for r in results_file.results}
        for r in results_file.results:
            entries.append(Entry(stem, r, by_name.get(r.baseline, r)))
    return entries


def seed_task(entries: Sequence[Entry]) -> list[Entry]:
    """The variants compared with the seed CNN (the course's main task), baselines included."""
    return [e for e in entries if e.base.model == "seed_cnn"]


def entries_table(entries: Sequence[Entry]) -> Table:
    """One row per variant: the numbers of the Result record plus ratio and speed-up."""
    rows = [
        [
            e.notebook,
            e.result.variant,
            e.result.model,
            e.result.technique,
            f"{100 * e.result.accuracy:.2f}",
            f"{e.delta_points:+.2f}",
            report.fmt_int(e.result.tflite_bytes),
            report.fmt_int(e.result.tflite_gzip_bytes),
            f"{e.ratio:.1f}x",
            f"{e.result.latency_us:.1f}",
            f"{e.speedup:.1f}x",
            report.fmt_int(e.result.macs),
        ]
        for e in entries
    ]
    return Table(
        [
            "notebook",
            "variant",
            "model",
            "technique",
            "accuracy %",
            "Δ points",
            "bytes",
            "gzip bytes",
            "ratio",
            "latency µs",
            "speed-up",
            "MACs",
        ],
        rows,
    )


GOALS = ("smallest", "fastest", "most_accurate", "smallest_int8_file")


def best(entries: Sequence[Entry], goal: str, tolerance: float = TOLERANCE_POINTS) -> Entry:
    """The best variant for a goal among those within ``tolerance`` points of their baseline.

    Goals: ``smallest`` (gzip bytes), ``fastest`` (latency), ``most_accurate`` (accuracy,
    no tolerance needed), ``smallest_int8_file`` (raw .tflite bytes of a full-int8 file: what a
    microcontroller stores in flash, uncompressed).

    Raises:
        ValueError: unknown goal, or no variant qualifies.
    """
    if goal not in GOALS:
        raise ValueError(f"unknown goal {goal!r}; choose one of {', '.join(GOALS)}")
    pool = [e for e in entries if goal == "most_accurate" or e.within(tolerance)]
    if goal == "smallest_int8_file":
        pool = [e for e in pool if e.int8]
    if not pool:
        raise ValueError(f"no variant qualifies for {goal!r}")
    key = {
        "smallest": lambda e: e.result.tflite_gzip_bytes,
        "fastest": lambda e: e.result.latency_us,
        "most_accurate": lambda e: -e.result.accuracy,
        "smallest_int8_file": lambda e: e.result.tflite_bytes,
    }[goal]
    return min(pool, key=key)


def best_table(entries: Sequence[Entry]) -> Table:
    """The best variant of the seed-CNN task for each goal."""
    task = seed_task(entries)
    rows = []
    for goal, words in (
        ("smallest", "smallest gzip file, within 0.3 points"),
        ("fastest", "fastest, within 0.3 points"),
        ("most_accurate", "most accurate"),
        ("smallest_int8_file", "smallest full-int8 file (uncompressed)"),
    ):
        try:
            e = best(task, goal)
        except ValueError:
            rows.append([words, "none", "", "", "", "", ""])
            continue
        rows.append(
            [
                words,
                e.result.variant,
                e.notebook,
                f"{100 * e.result.accuracy:.2f}",
                f"{e.delta_points:+.2f}",
                f"{e.result.tflite_gzip_bytes:,} B gzip, {e.result.tflite_bytes:,} B raw",
                f"{e.result.latency_us:.1f} µs",
            ]
        )
    return Table(["goal", "variant", "notebook", "accuracy %", "Δ points", "size", "latency"], rows)


def _find(entries: Sequence[Entry], variant: str, notebook: str | None = None) -> Entry | None:
    for e in entries:
        if e.result.variant == variant and (notebook is None or e.notebook == notebook):
            return e
    return None


def _describe(e: Entry) -> str:
    return (
        f"{e.label}: {100 * e.result.accuracy:.2f} % ({e.delta_points:+.2f} points), "
        f"{e.result.tflite_bytes:,} bytes ({e.result.tflite_gzip_bytes:,} gzipped, "
        f"{e.ratio:.1f}x smaller), {e.result.latency_us:.1f} µs ({e.speedup:.1f}x faster)"
    )


def decision_guide(entries: Sequence[Entry]) -> str:
    """Markdown: which technique first for mobile, cloud and IoT, with measured numbers."""
    task = seed_task(entries)
    lines = []

    def pick(goal: str) -> Entry | None:
        try:
            return best(task, goal)
        except ValueError:
            return None

    fastest, smallest, tiny = pick("fastest"), pick("smallest"), pick("smallest_int8_file")
    ptq = _find(task, "ptq_int8", "03_quantization")
    lines.append("**Mobile devices** (latency and app size; CPUs with int8 dot products, NPUs):")
    if fastest:
        lines.append(
            f"- First, a smaller architecture, then int8. Fastest within "
            f"{TOLERANCE_POINTS} points: {_describe(fastest)}. Cost: designing and "
            "training a new model (chapter 05)."
        )
    if ptq:
        lines.append(
            f"- If the model cannot change: post-training int8 (chapter 03), no "
            f"retraining: {_describe(ptq)}. Int8 speed depends on the chip: measure "
            "on the phone."
        )
    lines.append("")
    lines.append(
        "**Cloud serving** (many requests, accuracy first, cost per inference and per "
        "training run):"
    )
    accurate = pick("most_accurate")
    if accurate:
        lines.append(
            f"- Keep accuracy: the most accurate variant measured is {_describe(accurate)}."
        )
    pruned = [e for e in task if e.result.technique == "pruning" and e.within()]
    if fastest and pruned:
        top_pruned = max(pruned, key=lambda e: e.speedup)
        lines.append(
            f"- Cut the work per request, not just the bytes: {fastest.label} ran "
            f"{fastest.speedup:.1f}x faster than its baseline, while the zeros of pruning "
            f"gave at most {top_pruned.speedup:.1f}x within the tolerance (chapter 02)."
        )
    mp = [e for e in entries if e.result.technique == "mixed_precision"]
    bf16 = [e for e in mp if e.result.extra.get("policy") == "mixed_bfloat16"]
    if bf16:
        base_speed = {
            e.result.model: e.result.extra["train_images_per_s"]
            for e in mp
            if e.result.extra.get("policy") == "float32"
        }
        gains = ", ".join(
            f"{e.result.model} {e.result.extra['train_images_per_s'] / speed:.2f}x"
            for e in bf16
            if (speed := base_speed.get(e.result.model))
        )
        lines.append(
            f"- Train faster: mixed_bfloat16 training throughput vs float32 on "
            f"{bf16[0].result.extra.get('device', 'this machine')}: {gains} "
            "(chapter 06). On NVIDIA GPUs with Tensor Cores use mixed_float16."
        )
    lines.append("")
    lines.append("**IoT and microcontrollers** (kilobytes of flash, often int8-only kernels):")
    if tiny:
        lines.append(
            f"- A microcontroller stores the `.tflite` uncompressed, so zeros from "
            f"pruning cost flash like any weight. Smallest full-int8 file within "
            f"{TOLERANCE_POINTS} points: {_describe(tiny)}."
        )
    if smallest:
        lines.append(
            f"- Where the file is compressed (downloads, over-the-air updates): "
            f"smallest gzip file within {TOLERANCE_POINTS} points: "
            f"{_describe(smallest)}."
        )
    return "\n".join(lines)


def faq(entries: Sequence[Entry]) -> str:
    """Markdown: the seed article's three questions, answered with this course's numbers."""
    task = [e for e in seed_task(entries) if not e.is_baseline]
    inference = [e for e in task if e.result.technique != "mixed_precision"]
    if not task:
        return "_No variants measured yet: run the chapters first._"
    within = [e for e in task if e.within()]
    better = [e for e in task if e.delta_points > 0]
    worst = sorted(task, key=lambda e: e.delta_points)[:3]
    lines = [
        "**1. Does compression and acceleration hurt accuracy?** "
        "(模型压缩与加速会导致模型性能下降吗？)",
        f"Usually not, if done with care: of {len(task)} variants of the seed CNN measured, "
        f"{len(within)} stayed within {TOLERANCE_POINTS} points of their baseline and "
        f"{len(better)} were more accurate. The large losses came from removing capacity the "
        "model needed: "
        + "; ".join(f"{e.label} {e.delta_points:+.2f} points" for e in worst)
        + ".",
        "",
        "**2. How large is the effect?** (模型压缩与加速的效果如何？)",
        "Best measured for the deployed model, within the tolerance, per technique:",
        "",
        "| technique | largest gzip ratio | variant | largest speed-up | variant |",
        "|---|---|---|---|---|",
    ]
    for technique in sorted({e.result.technique for e in inference if e.within()}):
        group = [e for e in inference if e.within() and e.result.technique == technique]
        by_ratio = max(group, key=lambda e: e.ratio)
        by_speed = max(group, key=lambda e: e.speedup)
        lines.append(
            f"| {technique} | {by_ratio.ratio:.1f}x | `{by_ratio.result.variant}` | "
            f"{by_speed.speedup:.1f}x | `{by_speed.result.variant}` |"
        )
    lines += [
        "",
        "Mixed precision changes training, not the deployed model; its effect is the training "
        "throughput in the decision guide.",
        "",
        "**3. Where does it apply?** (模型压缩与加速的适用范围是什么？)",
        "Everywhere a model is shipped or served, but each technique saves something different:"
        " pruning saves *size* once the file is compressed; quantization saves size and, on "
        "hardware with int8 instructions, time; structure changes save *time and size*; mixed "
        "precision saves *training* time on hardware with fast 16-bit units. The decision "
        "guide above maps them to mobile, cloud and IoT.",
    ]
    return "\n".join(lines)
