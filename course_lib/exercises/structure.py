"""Exercises of 05_structure: MACs by hand, then the chapter's three techniques as code.

q1 and q4 are numbers worked out by hand. q2, q3 and q5 make the learner write the
technique itself (keep the strongest filters, factorize a matrix with the SVD, the
distillation loss); their checkers call the learner's function on fresh random inputs that
the notebook never shows, and name the usual mistake when the answer matches it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib.exercises.core import Incorrect, Problem, as_number, call_learner, expect_number


class ConvMacs(Problem):
    """MACs of Conv2D(16, 3x3, stride 2, 'valid') on a 28x28x1 image.

    An exact count: no tolerance.
    """

    variables = ("conv_macs",)
    hint_text = (
        "With 'valid' padding and stride 2, the output is floor((28 - 3) / 2) + 1 = 13 "
        "positions per side. Each output value needs 3 x 3 x 1 multiply-accumulates."
    )
    solution_code = "conv_macs = 13 * 13 * 16 * (3 * 3 * 1)   # 24,336"

    def _check(self, conv_macs: Any) -> str:
        value = as_number("conv_macs", conv_macs)
        wrong = {
            26 * 26 * 16 * 9: "that is for stride 1; stride 2 leaves 13x13 output positions",
            14 * 14 * 16 * 9: "with 'valid' padding the output is 13x13, not 14x14",
            13 * 13 * 16: "each output value needs one MAC per kernel weight (3 x 3 x 1)",
            16 * 9 + 16: "that is the layer's parameter count; MACs repeat them per position",
        }
        if value in wrong:
            raise Incorrect(wrong[int(value)])
        expect_number("conv_macs", value, 24_336)
        return "a stride of 2 cuts the work by 4 compared with stride 1."


def _filter_cases() -> list[tuple[np.ndarray, int]]:
    """Kernels ``(h, w, in, out)`` on which L1, L2, signed sums and the weakest disagree.

    Each filter has an L1 norm ``a`` in [1, 2], either spread over all its weights
    (L2 = a / sqrt(size)) or held by one weight (L2 = a), with random signs: ranking by L2
    prefers the one-weight filters, ranking by signed sums the positive ones.
    """
    rng = np.random.default_rng(515)
    cases = []
    for shape, k in (((3, 3, 1, 32), 12), ((5, 5, 3, 10), 4), ((3, 3, 8, 16), 1)):
        n, size = shape[-1], int(np.prod(shape[:-1]))
        flat = np.empty((size, n))
        for j, a in enumerate(rng.uniform(1.0, 2.0, size=n)):
            if j % 2:
                flat[:, j] = a / size
            else:
                flat[:, j] = 1e-4
                flat[rng.integers(size), j] = a - 1e-4 * (size - 1)
        flat *= rng.choice([-1.0, 1.0], size=flat.shape)
        cases.append((flat.reshape(shape).astype(np.float32), k))
    return cases


def _top(scores: np.ndarray, k: int) -> set[int]:
    return {int(i) for i in np.argsort(-scores, kind="stable")[:k]}


class KeepFilters(Problem):
    """Write ``keep_filters(kernel, k)``: the indices of the ``k`` filters with the largest
    L1 norms of a Conv2D kernel of shape ``(h, w, in, out)`` (any order).

    Checked on three fresh kernels (32, 10 and 16 filters) built so that ranking by the L2
    norm, by the signed sum, or keeping the weakest filters each gives another answer.
    """

    variables = ("keep_filters",)
    hint_text = (
        "One norm per OUTPUT filter: sum |w| over the first three axes, "
        "np.abs(kernel).sum(axis=(0, 1, 2)). np.argsort sorts from weakest to strongest."
    )
    solution_code = """
def keep_filters(kernel, k):
    l1 = np.abs(kernel).sum(axis=(0, 1, 2))   # one L1 norm per output filter
    return np.argsort(l1)[::-1][:k]            # the k largest
"""

    def _check(self, keep_filters: Callable[..., Any]) -> str:
        for kernel, k in _filter_cases():
            got = np.asarray(call_learner(keep_filters, kernel.copy(), k))
            n = kernel.shape[-1]
            if got.dtype == bool:
                raise Incorrect("return the indices of the filters kept, not a boolean mask")
            if not np.issubdtype(got.dtype, np.integer):
                raise Incorrect(f"indices must be whole numbers, got dtype {got.dtype}")
            chosen = [int(i) for i in got.ravel()]
            if len(chosen) != k:
                raise Incorrect(
                    f"asked for k = {k} of {n} filters, your function returned "
                    f"{len(chosen)} indices"
                )
            if len(set(chosen)) != k or min(chosen) < 0 or max(chosen) >= n:
                raise Incorrect(f"return {k} distinct indices in 0..{n - 1}, got {chosen}")
            flat = kernel.reshape(-1, n).astype(np.float64)
            l1 = np.abs(flat).sum(axis=0)
            if set(chosen) == _top(l1, k):
                continue
            if set(chosen) == _top(-l1, k):
                raise Incorrect("those are the WEAKEST filters; keep the largest norms")
            if set(chosen) == _top(np.sqrt((flat**2).sum(axis=0)), k):
                raise Incorrect("that ranks by the L2 norm; the L1 norm is the sum of |w|")
            if set(chosen) == _top(flat.sum(axis=0), k):
                raise Incorrect("take absolute values first: a negative weight is strong too")
            raise Incorrect(
                f"with k = {k} of {n} filters, {sorted(chosen)} are not the "
                "filters with the largest L1 norms (one norm per output filter)"
            )
        return "the same ranking the chapter's reference cell used to rebuild a thinner CNN."


def _svd_cases() -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(5150)
    return [
        (rng.normal(size=(40, 25)).astype(np.float32), 5),
        (rng.normal(size=(30, 60)).astype(np.float32), 3),
    ]


class SvdFactorize(Problem):
    """Write ``svd_factorize(w, r) -> (a, b)``: ``a`` of shape ``(m, r)`` and ``b`` of shape
    ``(r, n)`` whose product is the best rank-``r`` approximation of ``w`` (``m x n``).

    Checked on two fresh random matrices: the shapes, and ``||w - a @ b||`` equal to the
    Eckart-Young minimum ``sqrt(sum of the squared singular values after the r-th)`` within
    a relative 1e-3 (float32 rounding is far smaller; every listed mistake is far larger).
    """

    variables = ("svd_factorize",)
    hint_text = (
        "u, s, vt = np.linalg.svd(w, full_matrices=False) sorts the singular values from "
        "largest to smallest. Keep the first r: a = u[:, :r] * s[:r], b = vt[:r]."
    )
    solution_code = """
def svd_factorize(w, r):
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    return u[:, :r] * s[:r], vt[:r]   # (m, r) and (r, n)
"""

    def _check(self, svd_factorize: Callable[..., Any]) -> str:
        for w, r in _svd_cases():
            got = call_learner(svd_factorize, w.copy(), r)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise Incorrect("return two matrices as a tuple: return a, b")
            a, b = (np.asarray(m, dtype=np.float64) for m in got)
            m, n = w.shape
            if a.shape != (m, r) or b.shape != (r, n):
                raise Incorrect(
                    f"for w of shape {w.shape} and r = {r}, a must be {(m, r)} and b {(r, n)}; "
                    f"got {a.shape} and {b.shape}"
                )
            if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
                raise Incorrect("a or b contains NaN or infinity")
            u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
            best = float(np.sqrt((s[r:] ** 2).sum()))
            error = float(np.linalg.norm(w - a @ b))
            if error <= best * (1 + 1e-3):
                continue
            product = a @ b
            if np.allclose(product, u[:, :r] @ vt[:r], atol=1e-4):
                raise Incorrect("the singular values are missing: a = u[:, :r] * s[:r]")
            if np.allclose(product, (u[:, -r:] * s[-r:]) @ vt[-r:], atol=1e-4):
                raise Incorrect("those are the SMALLEST singular values; keep the first r")
            raise Incorrect(
                f"||w - a @ b|| = {error:.4g}, but the best rank-{r} product leaves {best:.4g}"
            )
        return "a @ b is the closest rank-r matrix to w (Eckart-Young)."


class RankForBudget(Problem):
    """Largest rank that factorizes a 784x300 Dense layer into at most 50,000 weights.

    A whole number: no tolerance.
    """

    variables = ("rank_answer",)
    hint_text = "A rank-r factorization has r * (784 + 300) weights (biases aside)."
    solution_code = "rank_answer = 50_000 // (784 + 300)   # 46"

    def _check(self, rank_answer: Any) -> str:
        value = as_number("rank_answer", rank_answer)
        if not value.is_integer():
            raise Incorrect("a rank is a whole number of singular values: round down")
        wrong = {
            47: "47 * 1,084 = 50,948 weights: over the budget",
            63: "the first matrix is 784 x r, but the second adds 300 x r more weights",
            166: "the second matrix is r x 300, but the first adds 784 x r more weights",
            45: "45 fits, but 46 * 1,084 = 49,864 fits too",
        }
        if int(value) in wrong:
            raise Incorrect(wrong[int(value)])
        expect_number("rank_answer", value, 46)
        return "46 * 1,084 = 49,864 weights, 4.7x fewer than the 235,200 of the full layer."


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


class DistillationLoss(Problem):
    """Write ``distillation_loss(teacher_logits, student_logits, temperature)``: the batch
    mean of ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``.

    Checked on fresh ``(8, 10)`` logits at T = 2 and T = 5 against the formula computed in
    float64, within a relative 1e-3 (Keras' float32 and its 1e-7 clipping stay far below;
    a missing T^2, a lone T, swapped KL arguments, no temperature or a sum over the batch
    are each off by 10 % or more).
    """

    variables = ("distillation_loss",)
    hint_text = (
        "Soften both with the temperature: tf.nn.softmax(logits / temperature). "
        "keras.losses.KLDivergence()(y_true, y_pred) takes the target (the teacher) first. "
        "Then multiply by temperature**2."
    )
    solution_code = """
import tensorflow as tf
import tf_keras as keras

def distillation_loss(teacher_logits, student_logits, temperature):
    p_teacher = tf.nn.softmax(teacher_logits / temperature)
    p_student = tf.nn.softmax(student_logits / temperature)
    kl = keras.losses.KLDivergence()   # KL(y_true || y_pred), mean over the batch
    return temperature**2 * kl(p_teacher, p_student)
"""

    def _check(self, distillation_loss: Callable[..., Any]) -> str:
        rng = np.random.default_rng(2015)
        for temperature in (2.0, 5.0):
            t = rng.normal(scale=3.0, size=(8, 10)).astype(np.float32)
            s = rng.normal(scale=3.0, size=(8, 10)).astype(np.float32)
            raw = call_learner(distillation_loss, t.copy(), s.copy(), temperature)
            got = as_number("distillation_loss(...)", np.asarray(raw))
            t64, s64 = t.astype(np.float64), s.astype(np.float64)
            p, q = _softmax(t64 / temperature), _softmax(s64 / temperature)
            square = temperature**2
            expected = square * _kl(p, q)
            if abs(got - expected) <= 1e-3 * expected:
                continue
            wrong = [
                (_kl(p, q), "the T^2 factor is missing (it keeps the gradients' scale)"),
                (temperature * _kl(p, q), "multiply by T squared, not by T"),
                (square * _kl(q, p), "KL's arguments are swapped: the teacher goes first"),
                (square * _kl(_softmax(t64), _softmax(s64)), "divide the logits by T first"),
                (_kl(_softmax(t64), _softmax(s64)), "no temperature at all: soften, then T^2"),
                (8 * expected, "take the mean over the batch, not the sum"),
            ]
            for value, reason in wrong:
                if abs(got - value) <= 1e-3 * abs(value):
                    raise Incorrect(reason)
            raise Incorrect(
                f"at T = {temperature:g} your loss is {got:.5g}, the formula gives {expected:.5g}"
            )
        return "the soft term of the chapter's Distiller.train_step."


q1 = ConvMacs()
q2 = KeepFilters()
q3 = SvdFactorize()
q4 = RankForBudget()
q5 = DistillationLoss()
