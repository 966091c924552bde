"""08_learned_compression's exercises: each right answer passes, blanks are not attempted,
and each plausible wrong answer fails with its reason."""

from __future__ import annotations

import math

import constriction
import numpy as np
import pytest

from course_lib.exercises import ____
from course_lib.exercises import learned_compression as ex


def _solution(problem):
    namespace: dict = {"np": np, "constriction": constriction}
    exec(problem.solution_code, namespace)
    return {name: namespace[name] for name in problem.variables}


@pytest.mark.parametrize("problem", [ex.q1, ex.q2, ex.q3])
def test_solution_passes_and_blank_is_not_attempted(problem):
    assert problem.check(**_solution(problem)), problem.check(**_solution(problem))
    assert problem.check(namespace={}).status == "not_attempted"
    assert problem.check(**{n: ____ for n in problem.variables}).status == "not_attempted"
    returns_blank = {n: (lambda *a: ____) for n in problem.variables}
    assert problem.check(**returns_blank).status == "not_attempted"


def test_entropy_reference_by_hand():
    # [0, 0, 0, 1]: 3 * log2(4/3) + 1 * log2(4) = 3.2451 bits
    assert ex._entropy_bits(np.array([0, 0, 0, 1])) == pytest.approx(3 * math.log2(4 / 3) + 2)
    assert ex._entropy_bits(np.array([5, 5])) == 0.0


def _bits(symbols, log=np.log2, per_value=False, rows=False):
    if rows:
        symbols = symbols[0]
    _, counts = np.unique(symbols, return_counts=True)
    total = float(-(counts * log(counts / counts.sum())).sum())
    return total / np.size(symbols) if per_value else total


@pytest.mark.parametrize(
    "answer,reason",
    [
        (lambda s: _bits(s, log=np.log), "nats"),
        (lambda s: _bits(s, per_value=True), "bits per value"),
        (lambda s: _bits(np.atleast_2d(s), rows=True), "is not right"),  # first row only
        (lambda s: float(len(np.unique(s))), "is not right"),
        (lambda s: float("nan"), "NaN"),
        (lambda s: "3.2", "should be a number"),
    ],
)
def test_tensor_bits_wrong_answers_fail(answer, reason):
    result = ex.q1.check(tensor_bits=answer)
    assert result.status == "incorrect" and reason in result.message, result.message


def _encode(uniform=False, forward=False, words_as=None, probs_sum=1.0):
    def encode(symbols):
        counts = np.bincount(symbols)
        probabilities = np.ones(len(counts)) / len(counts) if uniform else counts / symbols.size
        model = constriction.stream.model.Categorical(probabilities, perfect=False)
        coder = constriction.stream.stack.AnsCoder()
        if forward:  # encoding in forward order on a stack: decoded backwards
            for s in symbols.astype(np.int32):
                coder.encode_reverse(np.array([s], np.int32), model)
        else:
            coder.encode_reverse(symbols.astype(np.int32), model)
        words = coder.get_compressed()
        return (words.astype(words_as) if words_as else words), probabilities * probs_sum

    return encode


@pytest.mark.parametrize(
    "answer,reason",
    [
        (_encode(uniform=True), "own frequencies"),
        (_encode(forward=True), "encode_reverse"),
        (_encode(words_as=np.int64), "uint32"),
        (_encode(probs_sum=2.0), "adding up to 1"),
        (lambda s: _encode()(s)[0], "return a pair"),
        (lambda s: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_encode_wrong_answers_fail(answer, reason):
    result = ex.q2.check(encode=answer)
    assert result.status == "incorrect" and reason in result.message, result.message


def test_meets_target_cases_by_hand():
    assert ex._meets(0.9919, 0.9896, 1_604_348, 7_900, 200, 0.3)  # 203x, 0.23 points
    assert not ex._meets(0.9919, 0.9885, 1_604_348, 7_900, 200, 0.3)  # 0.34 points
    assert not ex._meets(0.9797, 0.9770, 992_706, 9_950, 100, 0.3)  # 99.8x
    assert ex._meets(0.9797, 0.9768, 992_700, 9_927, 100, 0.3)  # 100x exactly


@pytest.mark.parametrize(
    "answer,reason",
    [
        (lambda ba, a, bg, s, r, d: bg / s >= r, "expected False, got True"),  # ratio only
        (
            lambda ba, a, bg, s, r, d: (ba - a) <= d,
            "expected False, got True",
        ),  # fraction, not points
        (lambda ba, a, bg, s, r, d: bg / s > r and 100 * (ba - a) <= d, "expected True, got False"),
        (
            lambda ba, a, bg, s, r, d: s / bg >= r and 100 * (ba - a) <= d,
            "expected True, got False",
        ),
        (lambda ba, a, bg, s, r, d: int(bg / s >= r and 100 * (ba - a) <= d), "return True or"),
    ],
)
def test_meets_target_wrong_answers_fail(answer, reason):
    result = ex.q3.check(meets_target=answer)
    assert result.status == "incorrect" and reason in result.message, result.message
