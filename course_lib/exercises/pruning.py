"""Exercises of 02_pruning: a magnitude mask, a schedule that prunes, the sensitivity plot."""

from __future__ import annotations

import numpy as np

from course_lib.exercises.core import Incorrect, Problem, call_learner, expect_choice
from course_lib.pruning import check_schedule


class MagnitudeMask(Problem):
    """Write ``my_magnitude_mask(weights, sparsity)``: True for the weights to KEEP."""

    variables = ("my_magnitude_mask",)
    hint_text = (
        "Sort the absolute values (np.argsort(np.abs(w), axis=None)), drop the first "
        "round(sparsity * w.size) of them, and reshape the mask to w.shape."
    )
    solution_code = """
def my_magnitude_mask(weights, sparsity):
    n_drop = int(round(sparsity * weights.size))
    order = np.argsort(np.abs(weights), axis=None)
    mask = np.ones(weights.size, dtype=bool)
    mask[order[:n_drop]] = False
    return mask.reshape(weights.shape)
"""

    def _check(self, my_magnitude_mask) -> str:
        rng = np.random.default_rng(1)
        for shape, sparsity in (((8, 5), 0.5), ((3, 3, 1, 4), 0.75), ((100,), 0.9)):
            w = rng.normal(size=shape).astype(np.float32)
            mask = np.asarray(call_learner(my_magnitude_mask, w.copy(), sparsity))
            if mask.shape != w.shape:
                raise Incorrect(f"for weights of shape {shape} the mask has shape {mask.shape}")
            if mask.dtype != bool:
                raise Incorrect("return a boolean mask (True = keep), not the pruned weights")
            expected_drop = int(round(sparsity * w.size))
            if np.sum(~mask) != expected_drop:
                raise Incorrect(
                    f"at sparsity {sparsity} a {w.size}-weight tensor should drop "
                    f"{expected_drop} weights; yours drops {int(np.sum(~mask))}"
                )
            if np.abs(w[mask]).min() < np.abs(w[~mask]).max():
                raise Incorrect("you dropped a weight larger than one you kept: rank by |w|")
        return "this is what tfmot's prune_low_magnitude does to each kernel at every update."


class ScheduleReaching80(Problem):
    """Build a tfmot schedule that reaches 80 % sparsity within 1,000 training steps."""

    variables = ("schedule",)
    total_steps = 1000
    hint_text = (
        "PolynomialDecay(initial_sparsity, final_sparsity, begin_step, end_step, frequency): "
        "masks update only at steps where (step - begin_step) % frequency == 0, so end_step "
        "should be a multiple of frequency and at most 1000."
    )
    solution_code = """
schedule = tfmot.sparsity.keras.PolynomialDecay(
    initial_sparsity=0.0, final_sparsity=0.8, begin_step=0, end_step=800, frequency=100
)
"""

    def _check(self, schedule) -> str:
        if not hasattr(schedule, "frequency"):
            raise Incorrect("`schedule` should be a tfmot pruning schedule object")
        result = check_schedule(schedule, self.total_steps)
        if abs(result.target_sparsity - 0.8) > 1e-6:
            raise Incorrect(f"the schedule's target is {result.target_sparsity}, not 0.8")
        if not result.prunes:
            raise Incorrect(str(result))
        if not result.reaches_target:
            raise Incorrect(
                f"{result} With end_step beyond 1000 or not on an update step, 0.8 is never "
                "applied."
            )
        return str(result)


class ReadSensitivity(Problem):
    """Which layer of the seed CNN can lose 95 % of its weights with little accuracy loss?"""

    variables = ("answer",)
    hint_text = "Look at where each curve in the sensitivity plot falls off."
    solution_code = 'answer = "b"'
    choices = {
        "a": "No: the conv curve collapses long before 95 %: 288 weights, each one needed.",
        "b": "",
        "c": "No: look again at the conv curve at 95 %.",
        "d": "No: one of the two layers keeps its accuracy at 95 %.",
    }

    def _check(self, answer) -> str:
        expect_choice("answer", answer, self.choices, "b")
        return (
            "the dense layer has 216,320 weights for 21,632 inputs, many of them border "
            "pixels that are almost always 0; the conv's 288 weights are all in use."
        )


q1 = MagnitudeMask()
q2 = ScheduleReaching80()
q3 = ReadSensitivity()
