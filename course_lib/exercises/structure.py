"""Exercises of 05_structure: MACs by hand, filters to remove, a rank for a size budget."""

from __future__ import annotations

import numpy as np

from course_lib.exercises.core import Incorrect, Problem, expect_number

NORMS = np.array([0.5, 2.0, 0.1, 1.5, 0.05, 3.0])
"""L1 norms of six filters, for exercise 2."""


class ConvMacs(Problem):
    """MACs of Conv2D(16, 3x3, stride 2, 'valid') on a 28x28x1 image."""

    variables = ("conv_macs",)
    hint_text = (
        "With 'valid' padding and stride 2, the output is floor((28 - 3) / 2) + 1 = 13 "
        "positions per side. Each output value needs 3 x 3 x 1 multiply-accumulates."
    )
    solution_code = "conv_macs = 13 * 13 * 16 * (3 * 3 * 1)   # 24,336"

    def _check(self, conv_macs) -> str:
        if conv_macs == 26 * 26 * 16 * 9:
            raise Incorrect("that is for stride 1; stride 2 leaves 13x13 output positions")
        if conv_macs == 14 * 14 * 16 * 9:
            raise Incorrect("with 'valid' padding the output is 13x13, not 14x14")
        expect_number("conv_macs", conv_macs, 24_336)
        return "a stride of 2 cuts the work by 4 compared with stride 1."


class FiltersToKeep(Problem):
    """Given the six filters' L1 norms in ``NORMS``, keep the 3 strongest."""

    variables = ("keep_indices",)
    hint_text = "np.argsort(NORMS) sorts from weakest to strongest; keep the last three."
    solution_code = "keep_indices = sorted(np.argsort(NORMS)[-3:])   # [1, 3, 5]"

    def _check(self, keep_indices) -> str:
        chosen = sorted(int(i) for i in np.asarray(keep_indices).ravel())
        if len(chosen) != 3:
            raise Incorrect(f"keep exactly 3 filters, you gave {len(chosen)}")
        if chosen == [0, 2, 4]:
            raise Incorrect("those are the three WEAKEST filters; keep the largest norms")
        if chosen != [1, 3, 5]:
            raise Incorrect(f"filters {chosen} are not the three with the largest norms")
        return "the filters with norms 2.0, 1.5 and 3.0 carry most of the signal."


class RankForBudget(Problem):
    """Largest rank that factorizes a 784x300 Dense layer into at most 50,000 weights."""

    variables = ("rank_answer",)
    hint_text = "A rank-r factorization has r * (784 + 300) weights (biases aside)."
    solution_code = "rank_answer = 50_000 // (784 + 300)   # 46"

    def _check(self, rank_answer) -> str:
        if rank_answer == 47:
            raise Incorrect("47 * 1084 = 50,948 weights: over the budget")
        expect_number("rank_answer", rank_answer, 46)
        return "46 * 1,084 = 49,864 weights, 4.7x fewer than the 235,200 of the full layer."


q1 = ConvMacs()
q2 = FiltersToKeep()
q3 = RankForBudget()
