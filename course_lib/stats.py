"""How sure is a number? Confidence intervals and paired tests for the course's comparisons.

Introduced in 01_baseline. NumPy and the standard library only (no SciPy), so the formulas
are visible:

- :func:`wilson_interval` / :func:`accuracy_ci95`: a 95 % interval for a test accuracy;
- :func:`mcnemar`: two models on the *same* test images, compared through the images on
  which exactly one of them is right (an exact binomial test);
- :func:`paired_t` / :func:`seed_comparison`: two training recipes repeated with the same
  seeds, compared through the per-seed differences (Student's t test); given each seed's
  right/wrong per test image, also through McNemar's test on the test images, seed by seed.

A difference for which a test gives ``p >= 0.05`` (any of them, where a comparison runs more
than one) is reported as a tie: the course never calls it better or worse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.05
"""Significance level of every test in the course."""


def _z_for(confidence: float) -> float:
    """Two-sided normal quantile for ``confidence`` (0.95 -> 1.95996...)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    # Invert the error function by bisection: exact enough, and no SciPy needed.
    target = confidence
    lo, hi = 0.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if math.erf(mid / math.sqrt(2)) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a whole number, got {type(value).__name__}")
    return int(value)


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``correct / total``.

    Unlike the normal approximation ``p ± z·sqrt(p(1-p)/n)``, it never leaves [0, 1] and
    stays sensible near 0 and 1, where the course's accuracies live.

    Args:
        correct: number of successes (e.g. test images classified right).
        total: number of trials (test images), at least 1.
        confidence: coverage of the interval (default 95 %).

    Returns:
        ``(low, high)`` as fractions.

    Raises:
        TypeError: counts that are not whole numbers.
        ValueError: ``total`` < 1 or ``correct`` outside ``[0, total]``.
    """
    correct, total = _count(correct, "correct"), _count(total, "total")
    if total < 1:
        raise ValueError(f"total must be at least 1, got {total}")
    if not 0 <= correct <= total:
        raise ValueError(f"correct must be in [0, total={total}], got {correct}")
    z = _z_for(confidence)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == total else min(1.0, centre + half)
    return low, high


def accuracy_ci95(accuracy: float, n: int) -> list[float]:
    """Return the Wilson 95 % interval ``[low, high]`` of an accuracy measured on ``n`` images.

    Rounded to 4 decimals (0.01 percentage points), as stored in every results row.

    Raises:
        ValueError: accuracy outside [0, 1], ``n`` < 1, or ``accuracy * n`` not (close to) a
            whole number of images.
    """
    accuracy = float(accuracy)
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be a fraction in [0, 1], got {accuracy}")
    correct = round(accuracy * n)
    if abs(correct - accuracy * n) > 1e-6 * max(1, n):
        raise ValueError(f"accuracy {accuracy} is not a whole number of {n} images")
    low, high = wilson_interval(int(correct), int(n))
    return [round(low, 4), round(high, 4)]


def _binom_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    log_half_n = -n * math.log(2)
    tail = sum(
        math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n)
        for i in range(k + 1)
    )
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test of two models on the same images.

    Attributes:
        b: images model A gets right and model B gets wrong.
        c: images model A gets wrong and model B gets right.
        p_value: exact two-sided binomial p-value of ``b`` vs ``c`` (only the ``b + c``
            discordant images carry information about which model is better).
    """

    b: int
    c: int
    p_value: float

    @property
    def significant(self) -> bool:
        """True when ``p_value < 0.05``."""
        return self.p_value < ALPHA

    def __str__(self) -> str:
        verdict = "significant" if self.significant else "tie: not significant"
        return (
            f"A right/B wrong {self.b}, A wrong/B right {self.c}, "
            f"p = {self.p_value:.3g} ({verdict})"
        )


def mcnemar(
    correct_a: Sequence[bool] | np.ndarray, correct_b: Sequence[bool] | np.ndarray
) -> McNemar:
    """Compare two models on the same test images (McNemar's exact test).

    Args:
        correct_a, correct_b: per-image right (True) / wrong (False) of each model, in the
            same image order (e.g. ``LiteModel.correct(x_test, y_test)``).

    Raises:
        ValueError: the arrays differ in length, are empty, or are not boolean.
    """
    a, b = np.asarray(correct_a), np.asarray(correct_b)
    if a.dtype != bool or b.dtype != bool:
        raise ValueError(
            f"expected boolean arrays (right/wrong per image), got {a.dtype}, {b.dtype}"
        )
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"expected two 1-D arrays of the same length, got {a.shape} and {b.shape}")
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    return McNemar(only_a, only_b, _binom_two_sided(only_a, only_a + only_b))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: int) -> float:
    """Two-sided p-value of Student's t statistic ``t`` with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"df must be at least 1, got {df}")
    if math.isinf(t):
        return 0.0
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0.0 for a single value).

    Raises:
        ValueError: no values, or a NaN / infinite value.
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("need at least one value")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"values must be finite, got {arr.tolist()}")
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std


@dataclass(frozen=True)
class PairedT:
    """Student's paired t test of ``a - b`` (e.g. two recipes trained with the same seeds)."""

    mean_diff: float
    std_diff: float
    t: float
    df: int
    p_value: float

    @property
    def significant(self) -> bool:
        """True when ``p_value < 0.05``."""
        return self.p_value < ALPHA


def paired_t(a: Sequence[float], b: Sequence[float]) -> PairedT:
    """Paired t test on per-seed results ``a[i]`` vs ``b[i]``.

    Raises:
        ValueError: lengths differ, fewer than 2 pairs, or non-finite values.
    """
    if len(a) != len(b):
        raise ValueError(f"a and b must pair up: {len(a)} vs {len(b)} values")
    if len(a) < 2:
        raise ValueError(f"a paired test needs at least 2 pairs, got {len(a)}")
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean, std = mean_std(diff.tolist())
    df = len(diff) - 1
    if std == 0.0:
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t = mean / (std / math.sqrt(len(diff)))
    return PairedT(mean, std, t, df, t_two_sided_p(t, df))


@dataclass(frozen=True)
class SeedComparison:
    """Two recipes repeated with the same seeds: each one's mean ± std and the paired test.

    Values are fractions (accuracies); ``str()`` shows them in percent and points.
    """

    label_a: str
    values_a: tuple[float, ...]
    label_b: str
    values_b: tuple[float, ...]
    test: PairedT
    per_seed: tuple[McNemar, ...] = ()
    """McNemar's test of each seed's two models on the test images (empty: not given)."""

    @property
    def significant(self) -> bool:
        """True when the paired test gives ``p < 0.05`` and, where :attr:`per_seed` holds
        McNemar tests, every one of them does too.

        The paired t test sees only the spread between seeds. When every seed gives nearly
        the same accuracy, it calls a gap of a few test images significant, although another
        draw of test images could reverse it; McNemar's test is what sees that.
        """
        return self.test.significant and all(m.significant for m in self.per_seed)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record, for a results file's ``seed_comparisons`` list."""
        mean_a, std_a = mean_std(self.values_a)
        mean_b, std_b = mean_std(self.values_b)
        return {
            "a": self.label_a,
            "b": self.label_b,
            "seeds": len(self.values_a),
            "values_a": [round(v, 6) for v in self.values_a],
            "values_b": [round(v, 6) for v in self.values_b],
            "mean_a": round(mean_a, 6),
            "std_a": round(std_a, 6),
            "mean_b": round(mean_b, 6),
            "std_b": round(std_b, 6),
            "mean_diff": round(self.test.mean_diff, 6),
            "p_value": round(self.test.p_value, 4),
            **(
                {"mcnemar_p_values": [float(f"{m.p_value:.3g}") for m in self.per_seed]}
                if self.per_seed
                else {}
            ),
            "significant": self.significant,
        }

    def __str__(self) -> str:
        mean_a, std_a = mean_std(self.values_a)
        mean_b, std_b = mean_std(self.values_b)
        verdict = "significant" if self.significant else "tie: not significant"
        mcnemar = (
            "; McNemar per seed p = " + ", ".join(f"{m.p_value:.2g}" for m in self.per_seed)
            if self.per_seed
            else ""
        )
        return (
            f"{self.label_a} {100 * mean_a:.2f} ± {100 * std_a:.2f} % vs "
            f"{self.label_b} {100 * mean_b:.2f} ± {100 * std_b:.2f} % "
            f"({len(self.values_a)} seeds): {100 * self.test.mean_diff:+.2f} points, "
            f"p = {self.test.p_value:.2g}{mcnemar} ({verdict})"
        )


def seed_comparison(
    label_a: str,
    values_a: Sequence[float],
    label_b: str,
    values_b: Sequence[float],
    correct_a: Sequence[Sequence[bool] | np.ndarray] | None = None,
    correct_b: Sequence[Sequence[bool] | np.ndarray] | None = None,
) -> SeedComparison:
    """Compare two recipes run with the same seeds (``values_a[i]`` pairs with ``values_b[i]``).

    Args:
        label_a, label_b: the recipes' names.
        values_a, values_b: each seed's test accuracy (a fraction).
        correct_a, correct_b: optional, each seed's right/wrong per test image (the same
            images for both). Then the verdict also needs McNemar's test to separate the
            two models of every seed: a gap the test images cannot resolve is a tie, however
            alike the seeds are.

    Example::

        cmp = seed_comparison("qat", [0.9829, 0.9821, 0.9833], "ptq", [0.9797, 0.9801, 0.9795])
        print(cmp)  # qat 98.28 ± 0.06 % vs ptq 97.98 ± 0.03 % (3 seeds): +0.30 points, ...

    Raises:
        ValueError: as :func:`paired_t` and :func:`mcnemar`; only one of ``correct_a`` and
            ``correct_b``, not one array per seed, or an array whose share of right answers
            is not that seed's value (arrays given in another order).
    """
    test = paired_t(values_a, values_b)
    per_seed: tuple[McNemar, ...] = ()
    if (correct_a is None) != (correct_b is None):
        raise ValueError("give both correct_a and correct_b, or neither")
    if correct_a is not None and correct_b is not None:
        for name, arrays, values in (("a", correct_a, values_a), ("b", correct_b, values_b)):
            if len(arrays) != len(values):
                raise ValueError(
                    f"correct_{name} holds {len(arrays)} arrays for {len(values)} seeds"
                )
            for i, (array, value) in enumerate(zip(arrays, values, strict=True)):
                share = float(np.mean(np.asarray(array)))
                if abs(share - float(value)) > 1e-6:
                    raise ValueError(
                        f"correct_{name}[{i}] is {share:.6f} right, but values_{name}[{i}] is "
                        f"{float(value):.6f}: are the arrays in the seeds' order?"
                    )
        per_seed = tuple(mcnemar(a, b) for a, b in zip(correct_a, correct_b, strict=True))
    return SeedComparison(
        label_a,
        tuple(float(v) for v in values_a),
        label_b,
        tuple(float(v) for v in values_b),
        test,
        per_seed,
    )
