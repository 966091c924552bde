"""Exercises of 08_learned_compression: the bits a tensor needs, coding it with constriction,
and whether a compressed model meets its target.

The checkers call the learner's functions on tensors and numbers they make up, so no answer
can be read off the notebook's tables.
"""

from __future__ import annotations

import math
from typing import Any

import constriction  # the solutions use it, as the notebook does
import numpy as np

from course_lib.exercises.core import Incorrect, Problem, as_number, call_learner, expect_number


def _entropy_bits(symbols: np.ndarray) -> float:
    """Independent reference: n * H, with H from the symbols' own frequencies."""
    _, counts = np.unique(symbols, return_counts=True)
    n = counts.sum()
    return float(sum(-c * math.log2(c / n) for c in counts))


def _tensors() -> list[np.ndarray]:
    rng = np.random.default_rng(8)
    sparse = (rng.random(5_000) < 0.03) * rng.integers(-4, 5, 5_000)
    return [
        np.array([0, 0, 0, 1]),  # 4 * H(1/4) = 3.245 bits
        np.array([2, 2, 2, 2, 2]),  # one symbol: 0 bits
        sparse.reshape(50, 100),  # a 2-D tensor: count every value, not the rows
        np.array([-1, 0, 1, 0, 0, 0, 3, -1]),
    ]


class TensorBits(Problem):
    """Write ``tensor_bits(symbols)``: the fewest bits any coder that knows the tensor's own
    frequencies needs for the whole tensor (its empirical entropy times its size)."""

    variables = ("tensor_bits",)
    hint_text = (
        "Count each distinct value (np.unique(..., return_counts=True)). A value that occurs "
        "c times out of n costs -log2(c / n) bits each time: add c * -log2(c / n) over the "
        "distinct values. Use log2 (bits), not the natural log, and count all the values of a "
        "2-D tensor."
    )
    solution_code = """
def tensor_bits(symbols):
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())
"""

    def _check(self, tensor_bits: Any) -> str:
        for symbols in _tensors():
            got = as_number("tensor_bits", call_learner(tensor_bits, symbols.copy()))
            expected = _entropy_bits(symbols)
            if expected and math.isclose(got, expected / symbols.size, rel_tol=1e-6):
                raise Incorrect("that is the bits per value: multiply by the number of values")
            if expected and math.isclose(got, expected * math.log(2), rel_tol=1e-6):
                raise Incorrect("that is in nats (natural log): use log2 for bits")
            expect_number("tensor_bits", got, expected, rel=1e-6, abs_tol=1e-6)
        return "right: a value seen c times out of n costs log2(n / c) bits."


class CodeWithConstriction(Problem):
    """Write ``encode(symbols)`` returning ``(words, probabilities)``: the tensor's values
    (whole numbers from 0 to len(probabilities) - 1) coded with constriction's ``AnsCoder``
    under a ``Categorical`` model of their own frequencies."""

    variables = ("encode",)
    hint_text = (
        "probabilities = np.bincount(symbols) / symbols.size. Build "
        "constriction.stream.model.Categorical(probabilities, perfect=False), make an "
        "AnsCoder(), call coder.encode_reverse(symbols.astype(np.int32), model) and return "
        "(coder.get_compressed(), probabilities)."
    )
    solution_code = """
def encode(symbols):
    probabilities = np.bincount(symbols) / symbols.size
    model = constriction.stream.model.Categorical(probabilities, perfect=False)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), model)
    return coder.get_compressed(), probabilities
"""

    def _check(self, encode: Any) -> str:
        rng = np.random.default_rng(11)
        cases = [
            rng.choice(4, 20_000, p=[0.9, 0.05, 0.03, 0.02]),
            (rng.random(50_000) < 0.01).astype(np.int64) * rng.integers(1, 6, 50_000),
        ]
        for symbols in cases:
            answer = call_learner(encode, symbols.copy())
            if not isinstance(answer, tuple) or len(answer) != 2:
                raise Incorrect("return a pair: (words, probabilities)")
            words = np.asarray(answer[0])
            probabilities = np.asarray(answer[1], np.float64)
            if words.dtype != np.uint32:
                raise Incorrect(
                    f"words should be coder.get_compressed() (uint32), got {words.dtype}"
                )
            if probabilities.ndim != 1 or not math.isclose(probabilities.sum(), 1, rel_tol=1e-6):
                raise Incorrect("probabilities should be one value per symbol, adding up to 1")
            model = constriction.stream.model.Categorical(probabilities, perfect=False)
            try:
                decoded = constriction.stream.stack.AnsCoder(words).decode(model, symbols.size)
            except Exception as err:  # a stream the decoder cannot read
                raise Incorrect(f"decoding your words failed: {err}") from err
            if not np.array_equal(decoded, symbols):
                raise Incorrect(
                    "decoding your words does not give the symbols back in order: encode "
                    "with encode_reverse (a stack: the last value in is the first out)"
                )
            entropy = _entropy_bits(symbols)
            if 32 * words.size > entropy + 64:
                raise Incorrect(
                    f"{32 * words.size:,} bits for a tensor whose entropy is {entropy:,.0f} "
                    "bits: model the values with their own frequencies"
                )
        return "right: the stream decodes exactly and costs the entropy plus a word or two."


_TARGET_CASES = [
    # (baseline accuracy, accuracy, baseline gzip bytes, shipped bytes, min ratio,
    #  max drop in points)
    (0.9919, 0.9896, 1_604_348, 7_900, 200, 0.3),  # meets both
    (0.9919, 0.9885, 1_604_348, 7_900, 200, 0.3),  # 0.34 points below: misses
    (0.9797, 0.9770, 992_706, 9_950, 100, 0.3),  # 99.8x: misses the ratio
    (0.9797, 0.9768, 992_700, 9_927, 100, 0.3),  # exactly 100x, 0.29 points: meets
    (0.9797, 0.9810, 992_706, 5_000, 100, 0.3),  # more accurate than the baseline: meets
]


def _meets(
    base_acc: float, acc: float, base_gzip: int, shipped: int, ratio: float, drop: float
) -> bool:
    return base_gzip / shipped >= ratio and 100 * (base_acc - acc) <= drop


class MeetsTarget(Problem):
    """Write ``meets_target(base_accuracy, accuracy, base_gzip_bytes, shipped_bytes,
    min_ratio, max_drop_points)``: True when the shipped file is at least ``min_ratio``
    times smaller than the baseline's gzip and the accuracy (a fraction) is at most
    ``max_drop_points`` percentage points below the baseline's."""

    variables = ("meets_target",)
    hint_text = (
        "The ratio is base_gzip_bytes / shipped_bytes. Accuracies are fractions: the drop in "
        "points is 100 * (base_accuracy - accuracy). Both conditions must hold, and a ratio "
        "exactly at the limit passes."
    )
    solution_code = """
def meets_target(base_accuracy, accuracy, base_gzip_bytes, shipped_bytes, min_ratio,
                 max_drop_points):
    ratio = base_gzip_bytes / shipped_bytes
    drop = 100 * (base_accuracy - accuracy)
    return ratio >= min_ratio and drop <= max_drop_points
"""

    def _check(self, meets_target: Any) -> str:
        for case in _TARGET_CASES:
            got = call_learner(meets_target, *case)
            if not isinstance(got, (bool, np.bool_)):
                raise Incorrect(f"return True or False, got {type(got).__name__} {got!r}")
            if bool(got) != _meets(*case):
                base_acc, acc, base_gzip, shipped, ratio, drop = case
                raise Incorrect(
                    f"baseline {100 * base_acc:.2f} %, model {100 * acc:.2f} %, "
                    f"{base_gzip:,} / {shipped:,} bytes = {base_gzip / shipped:.1f}x against "
                    f"{ratio}x and {drop} points: expected {_meets(*case)}, got {bool(got)}"
                )
        return "right: both the ratio and the drop in points are checked, limits included."


q1 = TensorBits()
q2 = CodeWithConstriction()
q3 = MeetsTarget()
