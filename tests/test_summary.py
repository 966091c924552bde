"""The summary's entries, best-per-goal choices, decision guide and FAQ."""

from __future__ import annotations

import pytest

from course_lib import config, report, summary

from .test_report import make_result


def _write(tmp_root):
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
    report.write_results("02_pruning", results, dataset="mnist")
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
        "tiny_int8",
        "broken",
    }
    assert len(summary.entries_table(entries).rows) == 5
    assert summary.course_entries(config.repo_root() / "missing") == []


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


def test_guide_and_faq_quote_the_measured_numbers(tmp_root):
    _write(tmp_root)
    entries = summary.course_entries()
    guide = summary.decision_guide(entries)
    assert "**Mobile devices**" in guide and "**IoT and microcontrollers**" in guide
    assert "`tiny_int8` (02_pruning): 97.85 % (-0.15 points), 10,000 bytes" in guide
    faq = summary.faq(entries)
    assert "of 3 variants of the seed CNN measured, 2 stayed within 0.3 points" in faq
    assert "`broken` (02_pruning) -48.00 points" in faq
    assert "| architecture | 87.5x | `tiny_int8` | 12.5x | `tiny_int8` |" in faq
    assert "No variants" in summary.faq([])
    table = summary.best_table(entries)
    assert table.rows[0][1] == "tiny_int8"
