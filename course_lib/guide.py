"""The summary in words: a decision guide for mobile, cloud and IoT, and the seed article's
three questions answered in English and Chinese, every number from ``results/*.json``.

Introduced in 09_summary. Builds on :mod:`course_lib.summary` (entries, best per goal, ties);
a difference inside its 95 % interval is written as a tie, never as better or worse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from course_lib import tflm
from course_lib.deploy import core_seconds_per_million
from course_lib.report import Result
from course_lib.summary import (
    TOLERANCE_POINTS,
    Entry,
    best,
    latency_drivers,
    latency_tie,
    same_macs_spread,
    seed_task,
)


def _find(entries: Sequence[Entry], variant: str, notebook: str | None = None) -> Entry | None:
    for e in entries:
        if e.result.variant == variant and (notebook is None or e.notebook == notebook):
            return e
    return None


def _speed(e: Entry) -> str:
    """Speed-up against the baseline, marked as a tie when the latency spreads overlap."""
    tie = latency_tie(e.result, e.base)
    return f"{e.speedup:.1f}x the baseline's speed" + (", a tie" if tie else "")


_VERDICT = {
    "tie": "a tie with its baseline",
    "higher": "significantly above its baseline",
    "lower": "significantly below its baseline",
}


def _describe(e: Entry) -> str:
    return (
        f"{e.label}: {100 * e.result.accuracy:.2f} % ({e.delta_points:+.2f} points, "
        f"{_VERDICT[e.verdict]}), "
        f"{e.result.tflite_bytes:,} bytes ({e.result.tflite_gzip_bytes:,} gzipped, "
        f"{e.ratio:.1f}x smaller), {e.result.latency_us:.1f} µs ({_speed(e)})"
    )


def _pick(task: Sequence[Entry], goal: str) -> Entry | None:
    try:
        return best(task, goal)
    except ValueError:
        return None


def _sparse_format_pair(entries: Sequence[Entry]) -> tuple[Entry, Entry] | None:
    """The smallest pruned seed-CNN file in the converter's sparse format, and its dense twin."""
    sparse = [
        e
        for e in seed_task(entries)
        if e.result.extra.get("sparse_format") and e.result.technique == "pruning"
    ]
    if not sparse:
        return None
    small = min(sparse, key=lambda e: e.result.tflite_bytes)
    dense = _find(entries, small.result.variant.removesuffix("_sparse_format"), small.notebook)
    return (small, dense) if dense else None


def _name(r: Result) -> str:
    """The chapter's variant behind a deployment row, e.g. ``ptq_int8 (03_quantization)``."""
    notebook, _, variant = str(r.extra.get("source", r.variant)).partition("/")
    return f"`{variant}` ({notebook})" if variant else f"`{r.variant}`"


def _of(rows: Sequence[Result], target: str) -> list[Result]:
    return [r for r in rows if r.extra.get("target") == target]


def _mobile_lines(rows: Sequence[Result]) -> list[str]:
    """What the deployment chapter measured for a phone app: the fastest configuration."""
    mobile = [r for r in _of(rows, "mobile") if r.latency_iqr_us]
    if not mobile:
        return []
    best_row = min(mobile, key=lambda r: r.latency_us)
    ties = [
        r
        for r in mobile
        if r is not best_row and latency_tie(r, best_row) and _name(r) != _name(best_row)
    ]
    x = best_row.extra
    tied = f"; tied with {len(ties)} other variant configurations" if ties else ""
    return [
        f"- Measured as an app runs it (chapter 07, LiteRT): the fastest single image was "
        f"{_name(best_row)} ({100 * best_row.accuracy:.2f} %) at {best_row.latency_us:.1f} µs "
        f"with {x['threads']} thread(s), XNNPACK {'on' if x.get('xnnpack') else 'off'}{tied}; "
        f"its cold start {x['load_ms']:.2f} ms, its process's peak memory "
        f"{x['peak_rss_bytes'] / 1e6:.1f} MB, its download {x.get('download_bytes', 0):,} bytes "
        "gzipped. Threads and XNNPACK did not help every model: measure both settings."
    ]


def _engine(r: Result) -> tuple[str, str, bool]:
    """A cloud row's variant and runtime: what its throughput at each batch belongs to."""
    return _name(r), str(r.extra["runtime"]), bool(r.extra.get("jit_compile"))


def _cloud_lines(rows: Sequence[Result]) -> list[str]:
    """The deployment chapter's throughput winners at batch 1 and at the largest batch."""
    cloud = _of(rows, "cloud")
    if not cloud:
        return []
    parts = []
    for batch in sorted({1, max(int(r.extra["batch"]) for r in cloud)}):
        at = [r for r in cloud if r.extra["batch"] == batch]
        if not at:
            continue
        top = max(at, key=_throughput)
        jit = " with XLA" if top.extra.get("jit_compile") else ""
        cost = core_seconds_per_million(_throughput(top), int(top.extra["threads"]))
        parts.append(
            f"at batch {batch:,} from {_name(top)} on {top.extra['runtime']}{jit} "
            f"({_throughput(top):,.0f} images/s, {cost:.1f} core-seconds per million images)"
        )
    by_engine: dict[tuple[str, str, bool], dict[int, float]] = {}
    for r in cloud:
        by_engine.setdefault(_engine(r), {})[int(r.extra["batch"])] = _throughput(r)
    gains = [b[max(b)] / b[1] for b in by_engine.values() if 1 in b and len(b) > 1]
    if gains and min(gains) > 1:
        batching = (
            f" From batch 1 to the largest, every runtime's images per second grew, "
            f"{min(gains):.1f}x to {max(gains):.1f}x."
        )
    elif gains:
        batching = f" From batch 1 to the largest, images per second changed {min(gains):.2f}x "
        batching += f"to {max(gains):.2f}x: batching did not help every runtime here."
    else:
        batching = ""
    return [
        "- Batch the requests (chapter 07): the most images per second came "
        + ", and ".join(parts)
        + "."
        + batching
    ]


def _throughput(r: Result) -> float:
    return float(r.extra["throughput_ips"])


def _refusal(reason: str) -> str:
    """A refusal in a few words: the layout TFLM cannot read, or TFLM's own first sentence."""
    if "after the flatbuffer" in reason:
        return "its weights are stored after the flatbuffer, which TFLM does not read"
    return reason.split(". ")[0][:120]


def _iot_lines(rows: Sequence[Result]) -> list[str]:
    """TFLM's accuracy against LiteRT's and, per board, the most accurate variant that fits."""
    iot = [r for r in _of(rows, "iot") if "tflm_arena_bytes" in r.extra]
    if not iot:
        return []
    gap = max(abs(float(r.extra["tflm_accuracy"]) - r.accuracy) for r in iot)
    refused = [r for r in _of(rows, "iot") if r.extra.get("tflm_refused")]
    why = (
        f" ({len(refused)} more refused before running: "
        + "; ".join(f"{_name(r)}: {_refusal(str(r.extra['tflm_refused']))}" for r in refused)
        + ")"
        if refused
        else ""
    )
    lines = [
        f"- On TensorFlow Lite for Microcontrollers (chapter 07) {len(iot)} full-int8 variants "
        f"ran, within {100 * gap:.2f} points of their LiteRT accuracy{why}. Keeping "
        f"{tflm.RESERVE:.0%} of flash and RAM for the runtime and the application:"
    ]
    for board in tflm.BOARDS:
        fitting = [
            r
            for r in iot
            if tflm.fits(board, int(r.extra["flash_bytes"]), int(r.extra["tflm_arena_bytes"]))
        ]
        if not fitting:
            lines.append(f"  - {board.name} ({board.ram_bytes // 1024} KB RAM): none fits.")
            continue
        top = max(fitting, key=lambda r: float(r.extra["tflm_accuracy"]))
        lines.append(
            f"  - {board.name} ({board.ram_bytes // 1024} KB RAM): {len(fitting)} fit; most "
            f"accurate {_name(top)}, {100 * float(top.extra['tflm_accuracy']):.2f} % on TFLM, "
            f"{int(top.extra['flash_bytes']):,} bytes of flash, "
            f"{int(top.extra['tflm_arena_bytes']):,}-byte arena."
        )
    return lines


NOT_MEASURED = (
    "**Not measured in this course:** a phone (ARM CPUs with int8 dot products, NPU and GPU "
    "delegates), a GPU server, and a microcontroller's own clock (TFLM ran on this computer, "
    "which gives its accuracy and memory, not its speed on a board)."
)


def decision_guide(entries: Sequence[Entry], deployment: Sequence[Result] = ()) -> str:
    """Markdown: which technique first for mobile, cloud and IoT, with measured numbers.

    ``deployment`` are the deployment chapter's rows (:func:`course_lib.summary.deployment_rows`):
    with them each target also gets what was measured on its runtime (threads, cold start and
    memory; throughput by batch; TFLM and the boards), and the guide ends with what the
    course did not measure.
    """
    task = seed_task(entries)
    fastest, smallest = _pick(task, "fastest"), _pick(task, "smallest")
    tiny, accurate = _pick(task, "smallest_int8_file"), _pick(task, "most_accurate")
    ptq = _find(task, "ptq_int8", "03_quantization")
    lines = ["**Mobile devices** (latency and app size; CPUs with int8 dot products, NPUs):"]
    if fastest:
        lines.append(
            f"- First, a smaller architecture, then int8. Fastest within {TOLERANCE_POINTS} "
            f"points: {_describe(fastest)}. Cost: designing and training a new model "
            "(chapter 05)."
        )
    if ptq:
        lines.append(
            f"- If the model cannot change: post-training int8 (chapter 03), no retraining: "
            f"{_describe(ptq)}. Int8 speed depends on the chip: measure on the phone."
        )
    lines += _mobile_lines(deployment)
    lines += [
        "",
        "**Cloud serving** (many requests, accuracy first, cost per inference and per "
        "training run):",
    ]
    if accurate:
        lines.append(
            f"- Keep accuracy: the highest accuracy measured is {_describe(accurate)}; the "
            "summary table lists the variants whose 95 % intervals overlap it (ties)."
        )
    pruned = [e for e in task if e.result.technique == "pruning" and e.within()]
    if fastest and pruned:
        top = max(pruned, key=lambda e: e.speedup)
        lines.append(
            f"- Cut the work per request, not just the bytes: {fastest.label} ran at "
            f"{_speed(fastest)}, while pruning within the tolerance reached at most "
            f"{_speed(top)} (`{top.result.variant}`, chapter 02)."
        )
    mp = [e for e in entries if e.result.technique == "mixed_precision"]
    base_speed = {
        e.result.model: e.result.extra["train_images_per_s"]
        for e in mp
        if e.result.extra.get("policy") == "float32"
    }
    bf16 = [e for e in mp if e.result.extra.get("policy") == "mixed_bfloat16"]
    gains = ", ".join(
        f"{e.result.model} {e.result.extra['train_images_per_s'] / speed:.2f}x"
        for e in bf16
        if (speed := base_speed.get(e.result.model))
    )
    if gains:
        lines.append(
            f"- Train faster: mixed_bfloat16 training throughput against float32 on "
            f"{bf16[0].result.extra.get('device', 'this machine')}: {gains} (chapter 06). "
            "On NVIDIA GPUs with Tensor Cores use mixed_float16."
        )
    lines += _cloud_lines(deployment)
    lines += ["", "**IoT and microcontrollers** (kilobytes of flash and RAM, int8 kernels):"]
    pair = _sparse_format_pair(entries)
    if pair:
        sparse, dense = pair
        lines.append(
            f"- Pruned zeros cost flash unless the converter stores them in its sparse format "
            f"(`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`, chapter 02): `{sparse.result.variant}`"
            f" is {sparse.result.tflite_bytes:,} bytes raw against {dense.result.tflite_bytes:,}"
            " for the same weights stored dense. But only a few kernels read that format "
            "directly (chapter 02's 1x4 block-sparse dense layer); elsewhere the converter "
            "adds a `DENSIFY` op that rebuilds the dense weights when the model loads, so RAM "
            "is not saved, and TensorFlow Lite Micro has no sparse kernels (nor `DENSIFY`)."
        )
    if tiny:
        lines.append(
            f"- So on a microcontroller, fewer weights beat zero weights. Smallest full-int8 "
            f"file within {TOLERANCE_POINTS} points: {_describe(tiny)}."
        )
    if smallest:
        lines.append(
            f"- Where the file is compressed (downloads, over-the-air updates): smallest gzip "
            f"file within {TOLERANCE_POINTS} points: {_describe(smallest)}."
        )
    lines += _iot_lines(deployment)
    if deployment:
        lines += ["", NOT_MEASURED]
    return "\n".join(lines)


def _technique_rows(inference: Sequence[Entry]) -> list[str]:
    rows = []
    for technique in sorted({e.result.technique for e in inference if e.within()}):
        group = [e for e in inference if e.within() and e.result.technique == technique]
        by_ratio = max(group, key=lambda e: e.ratio)
        by_speed = max(group, key=lambda e: e.speedup)
        tie = " (tie)" if latency_tie(by_speed.result, by_speed.base) else ""
        rows.append(
            f"| {technique} | {by_ratio.ratio:.1f}x | `{by_ratio.result.variant}` | "
            f"{by_speed.speedup:.1f}x{tie} | `{by_speed.result.variant}` |"
        )
    return rows


def _seed_lines(comparisons: Sequence[dict[str, Any]]) -> list[str]:
    if not comparisons:
        return []
    ties = [c for c in comparisons if not c["significant"]]
    names = "; ".join(
        f"{c['a']} vs {c['b']} ({c['notebook']}, {100 * c['mean_diff']:+.2f} points, "
        f"p = {c['p_value']:.2g}{_mcnemar_note(c)}, "
        f"{'significant' if c['significant'] else 'tie'})"
        for c in comparisons
    )
    return [
        "",
        f"Where a chapter repeated training with several seeds, {len(ties)} of "
        f"{len(comparisons)} comparisons are ties (paired t-test p ≥ 0.05, or, where the "
        f"chapter kept each seed's answers per test image, a seed whose two models McNemar's "
        f"test cannot tell apart): {names}.",
        "",
        f"中文：在用多个随机种子重复训练的 {len(comparisons)} 组比较中，{len(ties)} 组差异不显著"
        "（配对 t 检验 p ≥ 0.05，或某个种子的两个模型在测试图像上"
        "经 McNemar 检验无法区分），即打平。",
    ]


def _mcnemar_note(comparison: dict[str, Any]) -> str:
    """``"; McNemar p ≤ 0.63"``: the largest per-seed McNemar p-value, where stored."""
    values = comparison.get("mcnemar_p_values")
    return f"; McNemar p ≤ {max(values):.2g}" if values else ""


def faq(entries: Sequence[Entry], comparisons: Sequence[dict[str, Any]] = ()) -> str:
    """Markdown: the seed article's three questions, answered in English and in Chinese.

    ``comparisons`` are the chapters' seed-repeated comparisons
    (:func:`course_lib.summary.seed_comparisons`), quoted under the first question.
    """
    task = [e for e in seed_task(entries) if not e.is_baseline]
    if not task:
        return "_No variants measured yet: run the chapters first._"
    inference = [e for e in task if e.result.technique != "mixed_precision"]
    n, within = len(task), sum(e.within() for e in task)
    count = {v: sum(e.verdict == v for e in task) for v in ("higher", "tie", "lower")}
    worst = sorted(task, key=lambda e: e.delta_points)[:3]
    worst_en = "; ".join(f"{e.label} {e.delta_points:+.2f} points" for e in worst)
    return "\n".join(
        [
            "**1. Does compression and acceleration hurt accuracy?** "
            "(模型压缩与加速会导致模型性能下降吗？)",
            f"Usually not, if done with care: of {n} variants of the seed CNN measured, "
            f"{count['tie']} are a tie with their baseline (95 % intervals overlap), "
            f"{count['higher']} are significantly more accurate and {count['lower']} "
            f"significantly less; {within} are within {TOLERANCE_POINTS} points. The large "
            f"losses came from removing capacity the model needed: {worst_en}.",
            "",
            f"中文：通常不会，只要方法得当。本课程测量了种子 CNN 的 {n} 个变体：{count['tie']} 个"
            f"与其基线打平（95 % 置信区间重叠，差异不显著），{count['higher']} 个显著更准确，"
            f"{count['lower']} 个显著更差；"
            f"{within} 个与基线相差不超过 {TOLERANCE_POINTS} 个百分点。"
            "明显的下降来自删掉了模型需要的容量（如过度剪枝）。",
            *_seed_lines(comparisons),
            "",
            "**2. How large is the effect?** (模型压缩与加速的效果如何？)",
            "Best measured for the deployed model, within the tolerance, per technique "
            "(speed-ups marked (tie) are inside the latency spread):",
            "",
            "| technique | largest gzip ratio | variant | largest speed-up | variant |",
            "|---|---|---|---|---|",
            *_technique_rows(inference),
            "",
            "中文：上表列出每种技术在精度损失不超过阈值时测得的最大压缩比（gzip）与最大加速比。"
            "混合精度改变的是训练，而不是部署的模型，其效果见决策指南中的训练吞吐量。",
            "",
            "Mixed precision changes training, not the deployed model; its effect is the "
            "training throughput in the decision guide.",
            "",
            "**3. Where does it apply?** (模型压缩与加速的适用范围是什么？)",
            "Everywhere a model is shipped or served, but each technique saves something "
            "different: pruning saves *size* once the file is compressed or stored in the "
            "sparse format; quantization saves size and, on hardware with int8 instructions, "
            "time; structure changes save *time and size*; mixed precision saves *training* "
            "time on hardware with fast 16-bit units. The decision guide above maps them to "
            "mobile, cloud and IoT.",
            "",
            "中文：凡是需要部署或提供服务的模型都适用，但每种技术节省的东西不同：剪枝在压缩后"
            "（或使用稀疏格式时）减小文件；量化减小文件，并在有 int8 指令的硬件上加速；网络结构"
            "优化同时节省时间和空间；混合精度在有快速 16 位运算单元的硬件上缩短训练时间。"
            "上面的决策指南把它们对应到移动设备、云计算和物联网。",
        ]
    )


def latency_sentence(results: Sequence[Result]) -> str:
    """Markdown: what the log-log fits of latency on weight bytes and on MACs say, and the
    largest latency gap between rows with identical MACs."""
    fits = latency_drivers(results)
    r2_bytes, r2_macs = fits["weight_bytes"]["r2"], fits["macs"]["r2"]
    slow, fast = same_macs_spread(results)
    more = "weight bytes" if r2_bytes > r2_macs else "MACs"
    verdict = (
        f"{more} explain more of it, but neither explains most of it"
        if max(r2_bytes, r2_macs) < 0.5
        else f"{more} explain more of it"
    )
    return (
        f"Across {len(results)} measured variants, a line through log latency explains "
        f"R² = {r2_bytes:.2f} of its variance with log weight bytes and R² = {r2_macs:.2f} with "
        f"log MACs: {verdict}. Neither decides alone: `{slow.variant}` and `{fast.variant}` "
        f"have the same {slow.macs:,} MACs, yet {slow.latency_us:.1f} µs against "
        f"{fast.latency_us:.1f} µs ({slow.latency_us / fast.latency_us:.1f}x)."
    )
