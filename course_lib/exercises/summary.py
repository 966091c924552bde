"""Exercises of 09_summary: a Pareto front, a microcontroller's candidates, the sparse format.

The two code-writing problems call the learner's function on fresh inputs made up by the
checker (never on the course's committed results), so no answer can be read off a table.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from course_lib.exercises.core import Incorrect, MultipleChoice, Problem, call_learner
from course_lib.report import Result
from course_lib.summary import Entry


def _front(sizes: list[float], accuracies: list[float]) -> set[int]:
    """Independent reference: i is on the front when no j is at least as good on both axes
    and strictly better on one."""
    n = len(sizes)
    return {
        i
        for i in range(n)
        if not any(
            sizes[j] <= sizes[i]
            and accuracies[j] >= accuracies[i]
            and (sizes[j] < sizes[i] or accuracies[j] > accuracies[i])
            for j in range(n)
        )
    }


def _front_cases() -> list[tuple[list[float], list[float]]]:
    rng = np.random.default_rng(7)
    cases = [
        ([5_000.0, 1_000.0, 3_000.0, 4_000.0], [0.90, 0.80, 0.95, 0.93])
    ]  # 2 dominates 3 and 0
    for n in (6, 12):
        sizes = rng.integers(1_000, 90_000, n).astype(float).tolist()
        cases.append((sizes, np.round(rng.uniform(0.9, 0.99, n), 4).tolist()))
    cases.append(
        ([2_000.0, 2_000.0, 1_000.0], [0.91, 0.92, 0.90])
    )  # equal sizes: only the better one
    return cases


class ParetoFront(Problem):
    """Write ``my_pareto_front(sizes, accuracies)``: indices of the variants on the front."""

    variables = ("my_pareto_front",)
    hint_text = (
        "Variant i is on the front unless some other variant j is no larger AND no less "
        "accurate, and strictly better in at least one of the two. Return the indices i."
    )
    solution_code = """
def my_pareto_front(sizes, accuracies):
    front = []
    for i, (s, a) in enumerate(zip(sizes, accuracies)):
        beaten = any(s2 <= s and a2 >= a and (s2 < s or a2 > a)
                     for j, (s2, a2) in enumerate(zip(sizes, accuracies)) if j != i)
        if not beaten:
            front.append(i)
    return front
"""

    def _check(self, my_pareto_front: Any) -> str:
        for sizes, accuracies in _front_cases():
            got = call_learner(my_pareto_front, list(sizes), list(accuracies))
            try:
                given = {int(i) for i in got}
            except (TypeError, ValueError) as err:
                raise Incorrect(f"return a list of indices (ints), got {got!r}") from err
            if any(not float(i).is_integer() or not 0 <= i < len(sizes) for i in got):
                raise Incorrect(f"{got!r} are not indices into the {len(sizes)} variants")
            expected = _front(sizes, accuracies)
            if given != expected:
                raise Incorrect(
                    f"for sizes {sizes} and accuracies {accuracies} the front is "
                    f"{sorted(expected)}, you returned {sorted(given)}"
                )
        return "your front matches on four fresh sets of variants."


def _entry(variant: str, accuracy: float, raw: int, gzip: int, int8: bool) -> Entry:
    base = Result(
        variant="base",
        model="m",
        technique="none",
        accuracy=0.98,
        params=100,
        nonzero_params=100,
        macs=10,
        tflite_bytes=800_000,
        tflite_gzip_bytes=700_000,
        latency_us=20.0,
    )
    # Same model, params and MACs as the baseline; only the measurements differ.
    result = dataclasses.replace(
        base,
        variant=variant,
        technique="quantization",
        accuracy=accuracy,
        tflite_bytes=raw,
        tflite_gzip_bytes=gzip,
        latency_us=5.0,
        baseline="base",
        extra={"conversion": "int8" if int8 else "float32"},
    )
    return Entry("xx", result, base)


def _flash_pool() -> list[Entry]:
    return [
        _entry("right_small", 0.979, 14_000, 9_000, True),
        _entry("right_large", 0.981, 60_000, 40_000, True),
        _entry("float_small", 0.980, 12_000, 8_000, False),  # not int8
        _entry("gzip_small_only", 0.980, 40_000, 11_000, True),  # fits only when gzipped
        _entry("too_inaccurate", 0.9765, 9_000, 6_000, True),  # -0.35 points
    ]


def _flash_answer(entries: list[Entry], flash_bytes: int) -> set[str]:
    return {
        e.result.variant
        for e in entries
        if e.int8 and e.within() and e.result.tflite_bytes <= flash_bytes
    }


class FlashCandidates(Problem):
    """Write ``flash_candidates(entries, flash_bytes)``: the variants an int8-only
    microcontroller with ``flash_bytes`` of flash can run, within 0.3 points."""

    variables = ("flash_candidates",)
    hint_text = (
        "Keep an Entry e when e.int8, e.within() and e.result.tflite_bytes <= flash_bytes: "
        "the device stores the file uncompressed, so gzip bytes do not count. Return the "
        "names (e.result.variant)."
    )
    solution_code = """
def flash_candidates(entries, flash_bytes):
    return [e.result.variant for e in entries
            if e.int8 and e.within() and e.result.tflite_bytes <= flash_bytes]
"""

    def _check(self, flash_candidates: Any) -> str:
        pool = _flash_pool()
        for flash in (16 * 1024, 48 * 1024, 64 * 1024):
            got = call_learner(flash_candidates, list(pool), flash)
            if isinstance(got, str) or not hasattr(got, "__iter__"):
                raise Incorrect(f"return a list of variant names, got {got!r}")
            given = {str(v) for v in got}
            expected = _flash_answer(pool, flash)
            wrong = given - expected
            if "gzip_small_only" in wrong:
                raise Incorrect("count the raw .tflite bytes: the device does not gunzip")
            if "float_small" in wrong:
                raise Incorrect("keep only full-int8 variants (Entry.int8)")
            if "too_inaccurate" in wrong:
                raise Incorrect("keep only variants within 0.3 points (Entry.within())")
            if given != expected:
                raise Incorrect(
                    f"with {flash:,} bytes of flash the answer is {sorted(expected)}, "
                    f"you returned {sorted(given)}"
                )
        return "right on three flash sizes, with decoys for gzip, float and accuracy."


class SparseFormatOnDevice(MultipleChoice):
    """What keeps a pruned model from saving memory on a microcontroller?"""

    variable = "answer"
    hint_text = (
        "Chapter 02 stored a pruned model in the converter's sparse format at a fraction of "
        "the dense size. What does the runtime do with a sparse tensor that its kernel "
        "cannot read?"
    )
    choices = {
        "a": "No: the zeros are exact; quantization keeps them at the zero point.",
        "b": "",
        "c": "No: chapter 02 measured the sparse format at a fraction of the dense file.",
        "d": "No: sparsity does not change the accuracy; pruning had already cost what it cost.",
    }
    answer = "b"
    correct_message = "the file can shrink; RAM and speed need kernels that read the format."


q1 = ParetoFront()
q2 = FlashCandidates()
q3 = SparseFormatOnDevice()
