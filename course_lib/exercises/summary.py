"""Exercises of 07_summary: read the course's own results to choose a variant."""

from __future__ import annotations

from course_lib import config
from course_lib.exercises.core import Incorrect, Problem, expect_choice
from course_lib.summary import best, course_entries, seed_task


def _committed():
    return seed_task(course_entries(config.repo_root() / "results"))


class SmallestWithinTolerance(Problem):
    """Name the seed-CNN variant with the smallest gzip file within 0.3 points of its baseline."""

    variables = ("answer_variant",)
    hint_text = (
        "summary.best(task, 'smallest') does it; or filter the table: Δ points >= -0.3, then "
        "the smallest gzip bytes."
    )
    solution_code = """
from course_lib import config, summary

task = summary.seed_task(summary.course_entries(config.repo_root() / "results"))
answer_variant = summary.best(task, "smallest").result.variant
"""

    def _check(self, answer_variant) -> str:
        task = _committed()
        right = best(task, "smallest")
        names = {e.result.variant for e in task}
        if answer_variant not in names:
            raise Incorrect(f"{answer_variant!r} is not a variant of the seed-CNN task")
        if answer_variant != right.result.variant:
            raise Incorrect(f"{answer_variant!r} is not the smallest within 0.3 points")
        return f"{right.result.tflite_gzip_bytes:,} bytes gzipped."


class FitsTheMicrocontroller(Problem):
    """Name a variant that fits a 32 KB-flash, int8-only microcontroller (within 0.3 points)."""

    variables = ("answer_variant",)
    hint_text = (
        "The file is stored uncompressed: look at the raw .tflite bytes, not the gzip bytes, and "
        "keep only full-int8 variants (Entry.int8)."
    )
    solution_code = """
from course_lib import config, summary

task = summary.seed_task(summary.course_entries(config.repo_root() / "results"))
answer_variant = summary.best(task, "smallest_int8_file").result.variant
"""

    def _check(self, answer_variant) -> str:
        entries = {e.result.variant: e for e in _committed()}
        if answer_variant not in entries:
            raise Incorrect(f"{answer_variant!r} is not a variant of the seed-CNN task")
        e = entries[answer_variant]
        if not e.int8:
            raise Incorrect(f"{answer_variant!r} is not a full-int8 model")
        if e.result.tflite_bytes > 32 * 1024:
            raise Incorrect(
                f"{answer_variant!r} is {e.result.tflite_bytes:,} bytes uncompressed; gzip does "
                "not help on the device"
            )
        if not e.within():
            raise Incorrect(f"{answer_variant!r} is {e.delta_points:+.2f} points: too inaccurate")
        return f"{e.result.tflite_bytes:,} bytes in flash, {e.result.latency_us:.1f} µs here."


class WhyPruningDoesNotSaveFlash(Problem):
    """Why do pruned weights not save flash on a microcontroller running TFLite Micro?"""

    variables = ("answer",)
    hint_text = "How did chapter 02 make a pruned model smaller?"
    solution_code = 'answer = "b"'
    choices = {
        "a": "No: the zeros are exact; quantization keeps them at the zero point.",
        "b": "",
        "c": "No: TFLite Micro runs pruned models fine; they are just not smaller in flash.",
    }

    def _check(self, answer) -> str:
        expect_choice("answer", answer, self.choices, "b")
        return "the savings came from gzip; the flatbuffer stores every zero at full width."


q1 = SmallestWithinTolerance()
q2 = FitsTheMicrocontroller()
q3 = WhyPruningDoesNotSaveFlash()
