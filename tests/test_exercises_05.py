"""05_structure's exercises: each checker with its solution, a blank, NaN and wrong answers.

The expected values come from hand counts and from formulas written out here in NumPy,
never from the checker under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib.compat import keras, tf
from course_lib.exercises import ____
from course_lib.exercises import structure as ex


def _solve(problem) -> dict:
    namespace = {"np": np}
    exec(problem.solution_code, namespace)
    return namespace


def _status(problem, **answer) -> tuple[str, str]:
    result = problem.check(**answer)
    return result.status, result.message


@pytest.mark.parametrize("problem", [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5])
def test_solution_passes_and_blank_is_not_attempted(problem):
    assert problem.check(namespace=_solve(problem)).status == "correct"
    assert problem.check(namespace={}).status == "not_attempted"
    name = problem.variables[0]
    assert problem.check(**{name: ____}).status == "not_attempted"
    assert problem.hint_text


# q1: Conv2D(16, 3x3, stride 2, valid) on 28x28x1: 13 x 13 positions x 16 filters x 9 MACs
@pytest.mark.parametrize("value", [24_336, np.int64(24_336), np.float32(24_336.0)])
def test_q1_accepts_the_count_as_any_number_type(value):
    assert ex.q1.check(conv_macs=value).status == "correct"


@pytest.mark.parametrize(
    "value,reason",
    [
        (26 * 26 * 16 * 9, "stride 1"),
        (14 * 14 * 16 * 9, "13x13"),
        (13 * 13 * 16, "kernel weight"),
        (160, "parameter count"),
        (24_337, "not right"),
        (float("nan"), "NaN"),
        (math.inf, "infinite"),
        ("24336", "should be a number"),
    ],
)
def test_q1_rejects_wrong_counts(value, reason):
    status, message = _status(ex.q1, conv_macs=value)
    assert status == "incorrect" and reason in message


# q2: keep_filters by L1 norm
def _l1_keep(kernel, k):
    return np.argsort(-np.abs(kernel).sum(axis=(0, 1, 2)))[:k]


def test_q2_hand_made_kernel_and_any_index_type():
    kernel = np.zeros((1, 1, 2, 4), np.float32)
    kernel[0, 0, :, 0] = [0.5, 0.5]  # L1 1.0
    kernel[0, 0, :, 1] = [-2.0, 0.0]  # L1 2.0
    kernel[0, 0, :, 2] = [0.1, 0.0]  # L1 0.1
    kernel[0, 0, :, 3] = [1.0, -0.6]  # L1 1.6
    assert sorted(_l1_keep(kernel, 2).tolist()) == [1, 3]  # the reference used below
    for answer in (
        _l1_keep,
        lambda kernel, k: sorted(_l1_keep(kernel, k).tolist()),  # a sorted list
        lambda kernel, k: tuple(np.int32(i) for i in _l1_keep(kernel, k)),
    ):
        assert ex.q2.check(keep_filters=answer).status == "correct"


@pytest.mark.parametrize(
    "answer,reason",
    [
        (lambda kernel, k: np.argsort(np.abs(kernel).sum(axis=(0, 1, 2)))[:k], "WEAKEST"),
        (
            lambda kernel, k: np.argsort(-np.sqrt((kernel**2).sum(axis=(0, 1, 2))))[:k],
            "L2 norm",
        ),
        (lambda kernel, k: np.argsort(-kernel.sum(axis=(0, 1, 2)))[:k], "absolute values"),
        (lambda kernel, k: np.argsort(-np.abs(kernel).sum(axis=(0, 1, 2)))[: k + 1], "returned"),
        (lambda kernel, k: np.arange(k) + kernel.shape[-1], "in 0.."),  # out of range
        (lambda kernel, k: np.arange(kernel.shape[-1]) < k, "boolean mask"),
        (lambda kernel, k: np.full(k, np.nan), "whole numbers"),
        (lambda kernel, k: [0] * k, "distinct"),
        (lambda kernel, k: 1 / 0, "ZeroDivisionError"),
        (lambda kernel, k: ____, "____"),
    ],
)
def test_q2_rejects_wrong_rankings(answer, reason):
    status, message = _status(ex.q2, keep_filters=answer)
    expected_status = "not_attempted" if reason == "____" else "incorrect"
    assert status == expected_status and (reason == "____" or reason in message), message


def test_q2_also_catches_a_flattening_mistake():
    # (out, -1) instead of (-1, out): the norms mix filters
    def answer(kernel, k):
        return np.argsort(-np.abs(kernel.reshape(kernel.shape[-1], -1)).sum(axis=1))[:k]

    status, message = _status(ex.q2, keep_filters=answer)
    assert status == "incorrect" and "largest L1 norms" in message


# q3: svd_factorize
def test_q3_hand_made_matrix():
    w = np.diag([3.0, 2.0, 1.0])  # best rank-2 product: drop the 1 -> error exactly 1
    namespace = _solve(ex.q3)
    a, b = namespace["svd_factorize"](w, 2)
    assert a.shape == (3, 2) and b.shape == (2, 3)
    assert np.linalg.norm(w - a @ b) == pytest.approx(1.0)


def _sv(w):
    return np.linalg.svd(w, full_matrices=False)


@pytest.mark.parametrize(
    "answer,reason",
    [
        (lambda w, r: (_sv(w)[0][:, :r], _sv(w)[2][:r]), "singular values are missing"),
        (
            lambda w, r: (_sv(w)[0][:, -r:] * _sv(w)[1][-r:], _sv(w)[2][-r:]),
            "SMALLEST",
        ),
        (lambda w, r: (_sv(w)[0][:, :r] * _sv(w)[1][:r], _sv(w)[2][:r].T), "must be"),
        (lambda w, r: (_sv(w)[0][:, : r + 1], _sv(w)[2][: r + 1]), "must be"),
        (lambda w, r: _sv(w)[0][:, :r] * _sv(w)[1][:r], "as a tuple"),
        (lambda w, r: (np.full((w.shape[0], r), np.nan), np.zeros((r, w.shape[1]))), "NaN"),
        (lambda w, r: (w[:, :r], np.eye(r, w.shape[1])), "best rank-"),
    ],
)
def test_q3_rejects_wrong_factorizations(answer, reason):
    status, message = _status(ex.q3, svd_factorize=answer)
    assert status == "incorrect" and reason in message, message


# q4: 784 x 300 layer, budget 50,000 weights: r * (784 + 300) <= 50,000 -> r = 46
def test_q4_accepts_numpy_integers():
    assert 46 * (784 + 300) <= 50_000 < 47 * (784 + 300)
    assert ex.q4.check(rank_answer=np.int64(46)).status == "correct"
    assert ex.q4.check(rank_answer=46.0).status == "correct"


@pytest.mark.parametrize(
    "value,reason",
    [
        (47, "over the budget"),
        (63, "300 x r"),
        (166, "784 x r"),
        (45, "fits too"),
        (46.1, "whole number"),
        (float("nan"), "NaN"),
        (100, "not right"),
    ],
)
def test_q4_rejects_wrong_ranks(value, reason):
    status, message = _status(ex.q4, rank_answer=value)
    assert status == "incorrect" and reason in message


# q5: distillation_loss
def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_q5_solution_matches_a_hand_computed_value():
    t = np.array([[2.0, 0.0, -2.0]], np.float32)
    s = np.array([[0.0, 0.0, 0.0]], np.float32)
    temperature = 2.0
    p = _softmax(t.astype(np.float64) / temperature)
    expected = temperature**2 * float(np.sum(p * np.log(p / (1 / 3))))  # q is uniform
    loss = _solve(ex.q5)["distillation_loss"](t, s, temperature)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def _kl_tf(p, q):
    return keras.losses.KLDivergence()(p, q)


@pytest.mark.parametrize(
    "answer,reason",
    [
        (
            lambda t, s, temp: _kl_tf(tf.nn.softmax(t / temp), tf.nn.softmax(s / temp)),
            "T^2 factor is missing",
        ),
        (
            lambda t, s, temp: temp * _kl_tf(tf.nn.softmax(t / temp), tf.nn.softmax(s / temp)),
            "not by T",
        ),
        (
            lambda t, s, temp: temp**2 * _kl_tf(tf.nn.softmax(s / temp), tf.nn.softmax(t / temp)),
            "swapped",
        ),
        (
            lambda t, s, temp: temp**2 * _kl_tf(tf.nn.softmax(t), tf.nn.softmax(s)),
            "divide the logits by T",
        ),
        (
            lambda t, s, temp: _kl_tf(tf.nn.softmax(t), tf.nn.softmax(s)),
            "no temperature at all",
        ),
        (
            lambda t, s, temp: (
                temp**2
                * tf.reduce_sum(
                    keras.losses.KLDivergence(reduction="none")(
                        tf.nn.softmax(t / temp), tf.nn.softmax(s / temp)
                    )
                )
            ),
            "not the sum",
        ),
        (
            lambda t, s, temp: (
                temp**2
                * keras.losses.KLDivergence(reduction="none")(
                    tf.nn.softmax(t / temp), tf.nn.softmax(s / temp)
                )
            ),
            "one number",
        ),
        (lambda t, s, temp: float("nan"), "NaN"),
        (lambda t, s, temp: 0.0, "the formula gives"),
    ],
)
def test_q5_rejects_wrong_losses(answer, reason):
    status, message = _status(ex.q5, distillation_loss=answer)
    assert status == "incorrect" and reason in message, message
