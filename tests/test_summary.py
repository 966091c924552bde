"""The summary's entries, best-per-goal choices with ties, fronts, latency fits, the decision
guide and the FAQ."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import config, guide, report, stats, summary

from .test_report import make_result as _make_result


def make_result(variant="baseline_float32", **overrides):
    """A Result whose latency spread brackets its own latency (±3 %)."""
    latency = overrides.get("latency_us", 20.0)
    overrides.setdefault("latency_iqr_us", [0.97 * latency, 1.03 * latency])
    return _make_result(variant, **overrides)


def _write(tmp_root, seed_comparisons=None):
    base = make_result(
        "baseline_float32",
        tflite_bytes=800_000,
        tflite_gzip_bytes=700_000,
        latency_us=25.0,
        accuracy=0.98,
    )
    results = [
        base,
        make_result(
            "small",
            technique="pruning",
            baseline="baseline_float32",
            accuracy=0.979,
            tflite_bytes=800_000,
            tflite_gzip_bytes=70_000,
            latency_us=25.0,
        ),
        make_result(
            "small_sparse_format",
            technique="pruning",
            baseline="baseline_float32",
            accuracy=0.979,
            tflite_bytes=90_000,
            tflite_gzip_bytes=80_000,
            latency_us=25.0,
            extra={"sparse_format": True},
        ),
        make_result(
            "tiny_int8",
            model="tiny",
            technique="architecture",
            accuracy=0.9785,
            baseline="baseline_float32",
            tflite_bytes=10_000,
            tflite_gzip_bytes=8_000,
            latency_us=2.0,
            extra={"conversion": "int8"},
        ),
        make_result(
            "broken",
            technique="architecture",
            accuracy=0.5,
            baseline="baseline_float32",
            tflite_gzip_bytes=1_000,
            latency_us=1.0,
        ),
    ]
    extra = {"seed_comparisons": seed_comparisons} if seed_comparisons else None
    report.write_results("02_pruning", results, dataset="mnist", extra=extra)
    other = make_result("lenet_float32", model="lenet", accuracy=0.99)
    report.write_results("04_combined", [other], dataset="mnist")


def test_entries_pair_each_variant_with_its_baseline(tmp_root):
    _write(tmp_root)
    entries = summary.course_entries()
    by_name = {e.result.variant: e for e in entries}
    assert by_name["small"].base.variant == "baseline_float32"
    assert by_name["small"].ratio == pytest.approx(10.0)
    assert by_name["tiny_int8"].speedup == pytest.approx(12.5) and by_name["tiny_int8"].int8
    assert by_name["baseline_float32"].is_baseline and not by_name["small"].int8
    assert by_name["broken"].delta_points == pytest.approx(-48.0)
    assert {e.result.variant for e in summary.seed_task(entries)} == {
        "baseline_float32",
        "small",
        "small_sparse_format",
        "tiny_int8",
        "broken",
    }
    table = summary.entries_table(entries)
    assert table.headers == [
        "notebook",
        "variant",
        "model",
        "technique",
        "accuracy %",
        "Δ points (vs baseline)",
        "bytes",
        "gzip bytes",
        "ratio",
        "latency µs",
        "speed-up",
        "MACs",
    ]
    assert len(table.rows) == 6
    tiny = next(row for row in table.rows if row[1] == "tiny_int8")
    assert tiny[0] == "02_pruning" and tiny[8:11] == ["87.5x", "2.0", "12.5x"]
    assert "-48.00 (lower)" in [row[5] for row in table.rows]
    assert "-0.10 (tie)" in [row[5] for row in table.rows]
    assert summary.course_entries(config.repo_root() / "missing") == []


def test_accuracy_interval_prefers_the_stored_one_and_falls_back_to_wilson():
    stored = make_result(accuracy=0.55, accuracy_ci95=[0.5, 0.6])
    assert summary.accuracy_interval(stored) == (0.5, 0.6)
    low, high = summary.accuracy_interval(make_result(accuracy=0.98, accuracy_ci95=None))
    # normal approximation, close to Wilson at n = 10,000: 1.96 * sqrt(.98 * .02 / 1e4)
    assert (high - low) / 2 == pytest.approx(1.96 * math.sqrt(0.98 * 0.02 / 1e4), rel=0.01)
    assert low < 0.98 < high
    low_small, high_small = summary.accuracy_interval(
        make_result(accuracy=0.98, accuracy_ci95=None, extra={"test_images": 1_000})
    )
    assert high_small - low_small > 3 * (high - low)  # 10x fewer images: sqrt(10)x wider


def test_ties_are_overlapping_intervals():
    a, b, c = (make_result(accuracy=v, accuracy_ci95=None) for v in (0.98, 0.979, 0.97))
    assert summary.accuracy_tie(a, b) and summary.accuracy_tie(b, a)  # Wilson, 10,000 images
    assert not summary.accuracy_tie(a, c)
    narrow = make_result(accuracy=0.983, accuracy_ci95=[0.9825, 0.9835])  # the stored one counts
    assert summary.accuracy_tie(make_result(accuracy=0.983, accuracy_ci95=None), b)
    assert not summary.accuracy_tie(narrow, b)
    assert summary.latency_tie(a, make_result(latency_iqr_us=None)) is None  # no spread
    fast = make_result(latency_iqr_us=[1.0, 2.0])
    close = make_result(latency_iqr_us=[1.9, 3.0])
    slow = make_result(latency_iqr_us=[2.1, 3.0])
    assert summary.latency_tie(fast, close) is True
    assert summary.latency_tie(fast, slow) is False


def test_best_per_goal_respects_the_tolerance(tmp_root):
    _write(tmp_root)
    task = summary.seed_task(summary.course_entries())
    assert summary.best(task, "smallest").result.variant == "tiny_int8"  # "broken" is too bad
    assert summary.best(task, "fastest").result.variant == "tiny_int8"
    assert summary.best(task, "most_accurate").result.variant == "baseline_float32"
    assert summary.best(task, "smallest_int8_file").result.variant == "tiny_int8"
    assert summary.best(task, "smallest", tolerance=0.01).result.variant == "baseline_float32"
    with pytest.raises(ValueError, match="unknown goal"):
        summary.best(task, "cheapest")
    with pytest.raises(ValueError, match="no variant qualifies"):
        summary.best(task[:1], "smallest_int8_file")


def test_ties_with_the_best(tmp_root):
    _write(tmp_root)
    task = summary.seed_task(summary.course_entries())
    tied = {e.result.variant for e in summary.ties(task, "most_accurate")}
    assert tied == {"small", "small_sparse_format", "tiny_int8"}  # not "broken"
    assert summary.ties(task, "smallest") == []
    assert summary.ties(task, "fastest") == []  # 2.0 µs ± 3 % overlaps no other latency
    table = summary.best_table(summary.course_entries())
    rows = {row[0]: row for row in table.rows}
    assert rows["most accurate"][-1].startswith("tie with 3: small")
    assert rows["most accurate"][4].startswith("98.00 [")
    assert rows["fastest"][1] == "latency; within 0.3 points"
    assert rows["fastest"][-1] == "none: significantly ahead"


def test_front_marks_members_that_are_not_significantly_more_accurate():
    results = [
        make_result("a", tflite_gzip_bytes=1_000, accuracy=0.970),
        make_result("b", tflite_gzip_bytes=2_000, accuracy=0.971),
        make_result("c", tflite_gzip_bytes=3_000, accuracy=0.990),
        make_result("d", tflite_gzip_bytes=4_000, accuracy=0.960),  # dominated
    ]
    rows = summary.front_ties(results)
    assert [(r["variant"], r["previous"], r["tie"]) for r in rows] == [
        ("a", None, False),
        ("b", "a", True),
        ("c", "b", False),
    ]
    table = summary.front_table(results)
    assert "tie: not significantly more accurate than a" in table.rows[1][2]
    assert "significantly more accurate than b" in table.rows[2][2]


def test_latency_drivers_fit_a_power_law():
    results = [
        make_result(f"v{i}", tflite_bytes=b, macs=m, latency_us=2e-3 * b)
        for i, (b, m) in enumerate([(1_000, 9_000), (10_000, 1_000), (100_000, 50_000)])
    ]
    fits = summary.latency_drivers(results)
    assert fits["weight_bytes"]["slope"] == pytest.approx(1.0)
    assert fits["weight_bytes"]["r2"] == pytest.approx(1.0)
    assert fits["macs"]["r2"] < 0.9
    stored = make_result(tflite_bytes=5_000, extra={"weight_bytes": 4_000})
    assert summary.weight_bytes(stored) == 4_000 and summary.weight_bytes(results[0]) == 1_000
    with pytest.raises(ValueError, match="at least 3"):
        summary.latency_drivers(results[:2])
    slow, fast = summary.same_macs_spread(
        [*results, make_result("twin", tflite_bytes=10, macs=1_000, latency_us=0.5)]
    )
    assert (slow.variant, fast.variant) == ("v1", "twin")


def test_seed_comparisons_are_read_back_with_their_verdict(tmp_root):
    cmp = stats.seed_comparison("qat", [0.981, 0.982, 0.983], "ptq", [0.979, 0.980, 0.981])
    _write(tmp_root, seed_comparisons=[cmp.as_dict()])
    found = summary.seed_comparisons()
    assert [(c["notebook"], c["a"], c["b"]) for c in found] == [("02_pruning", "qat", "ptq")]
    faq = guide.faq(summary.course_entries(), found)
    verdict = "significant" if cmp.significant else "tie"
    assert f"qat vs ptq (02_pruning, +0.20 points, p = {cmp.test.p_value:.2g}, {verdict})" in faq
    assert "在用多个随机种子重复训练的 1 组比较中" in faq
    row = summary.seed_table(found).rows[0]
    assert row[1] == "qat vs ptq" and row[5] == "+0.20"
    assert row[-1] == ("significant" if cmp.significant else "tie")


def test_guide_and_faq_quote_the_measured_numbers(tmp_root):
    _write(tmp_root)
    entries = summary.course_entries()
    text = guide.decision_guide(entries)
    assert "**Mobile devices**" in text and "**IoT and microcontrollers**" in text
    assert (
        "`tiny_int8` (02_pruning): 97.85 % (-0.15 points, a tie with its baseline), "
        "10,000 bytes" in text
    )
    assert "`small_sparse_format` is 90,000 bytes raw against 800,000" in text
    assert "DENSIFY" in text and "stores every zero" not in text
    faq = guide.faq(entries)
    assert "of 4 variants of the seed CNN measured, 3 are a tie with their baseline" in faq
    assert "0 are significantly more accurate and 1 significantly less" in faq
    assert "`broken` (02_pruning) -48.00 points" in faq
    assert "| architecture | 87.5x | `tiny_int8` | 12.5x | `tiny_int8` |" in faq
    assert "本课程测量了种子 CNN 的 4 个变体：3 个与其基线打平" in faq
    assert "No variants" in guide.faq([])
    assert summary.best_table(entries).rows[0][2] == "tiny_int8"


def _deployment_rows():
    """Deployment rows as chapter 07 writes them: a model on a runtime, with its target."""
    rows = []
    for name, latency, xnnpack in (("tiny_int8", 9.0, True), ("small", 30.0, True)):
        rows.append(
            make_result(
                f"{name}/mobile/litert/threads=1",
                latency_us=latency,
                extra={
                    "target": "mobile",
                    "runtime": "litert",
                    "threads": 1,
                    "batch": 1,
                    "xnnpack": xnnpack,
                    "load_ms": 0.25,
                    "peak_rss_bytes": 41_000_000,
                    "download_bytes": 8_000,
                    "source": f"02_pruning/{name}",
                },
            )
        )
    for runtime, batch, ips in (("litert", 1, 20_000.0), ("tf.function", 1, 2_000.0)) + (
        ("litert", 1024, 90_000.0),
        ("tf.function", 1024, 120_000.0),
    ):
        rows.append(
            make_result(
                f"small/cloud/{runtime}/batch={batch}",
                extra={
                    "target": "cloud",
                    "runtime": runtime,
                    "threads": 2,
                    "batch": batch,
                    "throughput_ips": ips,
                    "source": "02_pruning/small",
                },
            )
        )
    for name, flash, arena, acc in (
        ("tiny_int8", 10_000, 20_000, 0.9785),
        ("big", 220_000, 45_168, 0.981),
    ):
        rows.append(
            make_result(
                f"{name}/iot/tflm",
                accuracy=0.98,
                extra={
                    "target": "iot",
                    "runtime": "tflm",
                    "tflm_accuracy": acc,
                    "tflm_agreement": 0.999,
                    "tflm_arena_bytes": arena,
                    "flash_bytes": flash,
                    "source": f"03_quantization/{name}",
                },
            )
        )
    rows.append(
        make_result(
            "odd/iot/tflm",
            extra={
                "target": "iot",
                "runtime": "tflm",
                "flash_bytes": 280_000,
                "tflm_refused": "3 constant tensors (e.g. 'w') are stored after the flatbuffer",
                "source": "03_quantization/odd",
            },
        )
    )
    return rows


def test_deployment_rows_stay_out_of_the_variants_and_feed_the_guide(tmp_root):
    from course_lib import readme, tflm

    _write(tmp_root)
    deployed = _deployment_rows()
    report.write_results("07_deployment", deployed, dataset="mnist")
    entries = summary.course_entries()
    assert {e.notebook for e in entries} == {"02_pruning", "04_combined"}
    assert [r.variant for r in summary.deployment_rows()] == [r.variant for r in deployed]
    assert "07_deployment" not in {row[0] for row in readme.results_table().rows}
    text = guide.decision_guide(entries, summary.deployment_rows())
    assert (
        "the fastest single image was `tiny_int8` (02_pruning) (98.00 %) at 9.0 µs with 1 "
        "thread(s), XNNPACK on; its cold start 0.25 ms, its process's peak memory 41.0 MB, "
        "its download 8,000 bytes gzipped" in text
    )
    # the winner at batch 1 (LiteRT) is not the winner at batch 1,024 (TensorFlow)
    assert "at batch 1 from `small` (02_pruning) on litert (20,000 images/s, 100.0 core-" in text
    assert "at batch 1,024 from `small` (02_pruning) on tf.function (120,000 images/s, 16.7" in text
    assert "every runtime's images per second grew, 4.5x to 60.0x." in text
    # 25 % reserve: the 32 KiB board keeps 24,576 bytes, enough for the 20,000-byte arena only
    assert (
        "2 full-int8 variants ran, within 0.15 points of their LiteRT accuracy (1 more "
        "refused before running: `odd` (03_quantization): its weights are stored after the "
        "flatbuffer, which TFLM does not read)" in text
    )
    assert "Arduino Nano 33 IoT (32 KB RAM): 1 fit; most accurate `tiny_int8`" in text
    assert "Raspberry Pi Pico (264 KB RAM): 2 fit; most accurate `big` (03_quantization)" in text
    assert text.rstrip().endswith(guide.NOT_MEASURED)
    assert tflm.RESERVE == 0.25  # the sentences above assume it
    plain = guide.decision_guide(entries)
    assert "chapter 07" not in plain and guide.NOT_MEASURED not in plain


def test_smallest_counts_a_learned_rows_shipped_bytes():
    base = make_result()  # 3,600 gzip bytes
    pruned = make_result("pruned", tflite_gzip_bytes=500, baseline="baseline_float32")
    learned = make_result(  # its decoded .tflite gzips to 2,000 B, but 90 B are shipped
        "learned",
        technique="learned_compression",
        tflite_gzip_bytes=2000,
        baseline="baseline_float32",
        extra={"shipped_bytes": 90},
    )
    entries = [summary.Entry("nb", r, base) for r in (base, pruned, learned)]
    assert summary.best(entries, "smallest").result.variant == "learned"
    assert entries[2].ratio == pytest.approx(40.0)


def test_seed_table_and_faq_show_the_per_seed_mcnemar_tests(tmp_root):
    # three seeds that agree to the image: the t test alone would call 4 images significant
    right = np.zeros(10_000, bool)
    right[:9806] = True
    other = right.copy()
    other[9796:9806] = False  # 10 images only A gets right ...
    other[9806:9812] = True  # ... and 6 only B: McNemar p = 2 * sum C(16, 0..6) / 2^16
    values_a, values_b = [0.9806] * 3, [0.9802, 0.9802, 0.9801]
    third = other.copy()
    third[9811] = False  # 10 vs 5: p = 2 * sum C(15, 0..5) / 2^15
    cmp = stats.seed_comparison(
        "pcqat", values_a, "pqat", values_b, [right] * 3, [other, other, third]
    )
    _write(tmp_root, seed_comparisons=[cmp.as_dict()])
    found = summary.seed_comparisons()
    row = summary.seed_table(found).rows[0]
    p16 = 2 * (1 + 16 + 120 + 560 + 1820 + 4368 + 8008) / 2**16  # 0.4545
    p15 = 2 * (1 + 15 + 105 + 455 + 1365 + 3003) / 2**15  # 0.3018
    assert row[-2] == f"{p16:.2g}, {p16:.2g}, {p15:.2g}" == "0.45, 0.45, 0.3"
    assert row[-1] == "tie" and row[-3] != "-"
    faq = guide.faq(summary.course_entries(), found)
    assert "pcqat vs pqat (02_pruning, +0.04 points, p = " in faq
    assert "; McNemar p ≤ 0.45, tie)" in faq
    # a comparison stored without per-image answers shows a dash and no McNemar note
    plain = stats.seed_comparison("qat", [0.981, 0.982, 0.983], "ptq", [0.979, 0.980, 0.981])
    _write(tmp_root, seed_comparisons=[plain.as_dict()])
    found = summary.seed_comparisons()
    assert summary.seed_table(found).rows[0][-2] == "-"
    assert "McNemar p ≤" not in guide.faq(summary.course_entries(), found)
