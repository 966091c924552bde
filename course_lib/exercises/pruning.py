"""Exercises of 02_pruning: a magnitude mask, pruning only the dense layers with
``clone_function``, the sparsity a schedule really reaches, and reading the sensitivity plot.

Introduced in 02_pruning. Checkers call the learner's function on fresh inputs (new models,
new schedules) rather than compare a printed number.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from course_lib.compat import keras, tfmot
from course_lib.exercises.core import (
    CheckResult,
    Incorrect,
    MultipleChoice,
    Problem,
    as_number,
    call_learner,
    expect_choice,
)


class MagnitudeMask(Problem):
    """Write ``my_magnitude_mask(weights, sparsity)``: True for the weights to KEEP.

    The checker calls it on three fresh random tensors (2-D, 4-D, 1-D) at sparsities 0.5,
    0.75 and 0.9, and requires exactly ``round(sparsity * size)`` dropped weights, a boolean
    mask of the input's shape, and no dropped weight larger than a kept one.
    """

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


def _schedule_target(schedule: Any) -> float | None:
    for attr in ("final_sparsity", "target_sparsity"):
        if hasattr(schedule, attr):
            return float(getattr(schedule, attr))
    return None


class PruneDenseOnly(Problem):
    """Write ``prune_dense_only(model, sparsity)`` with ``clone_model(clone_function=...)``.

    The checker builds two fresh, untrained models (the seed CNN, and LeNet-300-100 with
    three Dense layers), calls the function with sparsities 0.85 and 0.6, and checks that
    every Dense layer and nothing else is wrapped by ``prune_low_magnitude``, that each
    wrapper's schedule targets the requested sparsity (to 1e-6), and
    that the wrapped layers kept the model's weights.
    """

    variables = ("prune_dense_only",)
    hint_text = (
        "Define clone_fn(layer) that returns tfmot.sparsity.keras.prune_low_magnitude(layer, "
        "pruning_schedule=...) for isinstance(layer, keras.layers.Dense) and the layer itself "
        "otherwise, then return keras.models.clone_model(model, clone_function=clone_fn). "
        "Test the type, not the layer's name: LeNet-300-100 has three Dense layers."
    )
    solution_code = """
def prune_dense_only(model, sparsity):
    def clone_fn(layer):
        if isinstance(layer, keras.layers.Dense):
            schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=10)
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    return keras.models.clone_model(model, clone_function=clone_fn)
"""

    def _check(self, prune_dense_only) -> str:
        from course_lib import models  # late: keeps this module light to import

        for build, sparsity in ((models.seed_cnn, 0.85), (models.lenet_300_100, 0.6)):
            model = build()
            originals = [layer.get_weights() for layer in model.layers]
            dense_names = [
                layer.name for layer in model.layers if type(layer) is keras.layers.Dense
            ]
            result = call_learner(prune_dense_only, model, sparsity)
            if not isinstance(result, keras.Model):
                raise Incorrect(f"return a Keras model, got {type(result).__name__}")
            if len(result.layers) != len(model.layers):
                raise Incorrect(
                    f"{model.name} has {len(model.layers)} layers, your model "
                    f"{len(result.layers)}: keep every layer, wrap the Dense ones"
                )
            wrapped, plain = [], []
            for layer in result.layers:
                inner = getattr(layer, "layer", None)
                if getattr(layer, "pruning_schedule", None) is not None and inner is not None:
                    wrapped.append(layer)
                else:
                    plain.append(layer)
            wrong = [w.layer.name for w in wrapped if type(w.layer) is not keras.layers.Dense]
            if wrong:
                raise Incorrect(
                    f"on {model.name} you also wrapped {wrong}: wrap only the Dense layers "
                    "(prune_low_magnitude(model) wraps every layer)"
                )
            missing = sorted(set(dense_names) - {w.layer.name for w in wrapped})
            if missing:
                raise Incorrect(
                    f"on {model.name} the Dense layers {missing} are not wrapped by "
                    "prune_low_magnitude (test isinstance(layer, keras.layers.Dense), not a name)"
                )
            for w in wrapped:
                target = _schedule_target(w.pruning_schedule)
                if target is None or abs(target - sparsity) > 1e-6:
                    raise Incorrect(
                        f"with sparsity={sparsity}, the schedule of {w.layer.name!r} targets "
                        f"{target}: pass the function's `sparsity` (the fraction to remove)"
                    )
            for index, layer in enumerate(result.layers):
                inner = getattr(layer, "layer", layer)
                kept = inner.get_weights()
                if len(kept) != len(originals[index]) or any(
                    not np.array_equal(a, b) for a, b in zip(kept, originals[index], strict=False)
                ):
                    raise Incorrect(
                        f"layer {inner.name!r} lost the model's weights: return the layer "
                        "itself from clone_function (or copy its weights), not a new one"
                    )
        return (
            "only the Dense layers carry a mask; pruning.wrap_for_pruning does the same with a "
            "{layer_name: sparsity} dict."
        )


class SparsityReached(Problem):
    """Write ``sparsity_reached(final_sparsity, begin_step, end_step, frequency, total_steps)``.

    It returns the sparsity that the LAST mask update of
    ``PolynomialDecay(0.0, final_sparsity, begin_step, end_step, frequency=frequency)``
    applies within a run of ``total_steps`` steps (0.0 if no update happens). tfmot's step
    counter starts at 1. The checker calls it on five fresh schedules and compares with
    tfmot's own schedule, evaluated step by step. Tolerance: 1e-3 absolute, so an answer
    rounded to 3 significant figures (off by at most 5e-4) passes, while the listed wrong
    reasonings (the final target always, a linear ramp, ignoring ``frequency``, stopping one
    step early, a percentage) are off by more than 3e-3 on at least one schedule.
    """

    variables = ("sparsity_reached",)
    cases = (
        (0.7, 0, 600, 50, 1000),  # reaches its target
        (0.85, 100, 900, 100, 500),  # stops half-way up the ramp, on an update step
        (0.9, 0, 950, 200, 2000),  # end_step is not an update step
        (0.6, 0, 1000, 100, 80),  # no update within the run
        (0.8, 300, 800, 100, 250),  # begins after the run ends
    )
    hint_text = (
        "Update steps are s = 1 ... total_steps with begin_step <= s <= end_step and "
        "(s - begin_step) % frequency == 0; take the last one. There, p = (s - begin_step) / "
        "(end_step - begin_step) and the sparsity is final * (1 - (1 - p) ** 3)."
    )
    solution_code = """
def sparsity_reached(final_sparsity, begin_step, end_step, frequency, total_steps):
    updates = [s for s in range(max(begin_step, 1), min(end_step, total_steps) + 1)
               if (s - begin_step) % frequency == 0]
    if not updates:
        return 0.0
    p = min(1.0, (updates[-1] - begin_step) / (end_step - begin_step))
    return final_sparsity * (1 - (1 - p) ** 3)
"""

    @staticmethod
    def expected(final: float, begin: int, end: int, frequency: int, total: int) -> float:
        """What tfmot applies at its last mask update within ``total`` steps."""
        schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, final, begin, end, frequency=frequency)
        applied = 0.0
        for step in range(max(begin, 1), min(end, total) + 1):
            if (step - begin) % frequency == 0:
                update, sparsity = schedule(np.int64(step))
                if bool(update):
                    applied = float(sparsity)
        return applied

    def _check(self, sparsity_reached) -> str:
        for case in self.cases:
            got = as_number("sparsity_reached(...)", call_learner(sparsity_reached, *case))
            want = self.expected(*case)
            if abs(got - want) > 1e-3:
                args = ", ".join(str(v) for v in case)
                raise Incorrect(
                    f"sparsity_reached({args}) returned {got:.4g}; tfmot applies {want:.4g} "
                    "at its last mask update in that run"
                )
        return "pruning.check_schedule(schedule, total_steps) reports the same for any schedule."


class ReadSensitivity(MultipleChoice):
    """Without fine-tuning, which layer can lose 80 % of its weights and stay within 1 point?

    The right answer and the feedback come from the notebook's own sensitivity curves
    (``curves`` and ``SENSITIVITY_LEVELS``, read from the notebook like the answer), so the
    question always agrees with what the notebook measured. If the curves are not defined
    (the cell was not run), the answer measured in the course's runs, (b), is used.
    """

    LEVEL = 0.8
    MAX_DROP = 0.01
    answer = "b"
    hint_text = (
        "Find 80 % on the x axis of the sensitivity plot and compare each curve with its own "
        "value at 0 %: `curves[layer][SENSITIVITY_LEVELS.index(0.8)]` vs `curves[layer][0]`."
    )
    choices = {
        "a": "No: the conv layer has only 288 weights, 9 per filter, and needs nearly all.",
        "b": "",
        "c": "No: one of the two layers falls far more than 1 point at 80 %.",
        "d": "No: one of the two layers stays within 1 point at 80 %.",
    }
    _curves: Any = None
    _levels: Any = None

    def check(self, namespace: dict[str, Any] | None = None, **values: Any) -> CheckResult:
        """Check the answer, using the notebook's ``curves`` and ``SENSITIVITY_LEVELS``."""
        if namespace is None:
            namespace = sys._getframe(1).f_globals
        self._curves = namespace.get("curves")
        self._levels = namespace.get("SENSITIVITY_LEVELS")
        return super().check(namespace, **values)

    def _drops(self) -> dict[str, float] | None:
        curves, levels = self._curves, self._levels
        if not isinstance(curves, dict) or levels is None or set(curves) != {"conv", "dense"}:
            return None
        levels = [float(v) for v in levels]
        if self.LEVEL not in levels or 0.0 not in levels:
            return None
        at, zero = levels.index(self.LEVEL), levels.index(0.0)
        return {name: float(acc[zero]) - float(acc[at]) for name, acc in curves.items()}

    def _check(self, **values: Any) -> str:
        drops = self._drops()
        if drops is None:
            expect_choice(self.variable, values[self.variable], self.choices, self.answer)
            return "the dense layer loses little at 80 %; the conv layer loses much more."
        ok = {name for name, drop in drops.items() if drop <= self.MAX_DROP}
        answer = {
            frozenset({"conv"}): "a",
            frozenset({"dense"}): "b",
            frozenset({"conv", "dense"}): "c",
        }.get(frozenset(ok), "d")
        measured = ", ".join(
            f"{name} {-100 * drop:+.1f} points" for name, drop in sorted(drops.items())
        )
        feedback = {c: f"No: at 80 % the notebook measured {measured}." for c in self.choices}
        expect_choice(self.variable, values[self.variable], feedback, answer)
        return (
            f"at 80 % without fine-tuning: {measured}. Beyond that even the dense layer "
            "drops (see the curve at 95 %), which is why tfmot prunes during training."
        )


q1 = MagnitudeMask()
q2 = PruneDenseOnly()
q3 = SparsityReached()
q4 = ReadSensitivity()
