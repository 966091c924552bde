"""Exercises of 00_setup_and_tour: fast mode's sizes and where its files go."""

from __future__ import annotations

import inspect

from course_lib.data import load_dataset
from course_lib.exercises.core import Problem, expect_choice, expect_number


class FastTrainSize(Problem):
    """How many training images of each class does fast mode use?"""

    variables = ("fast_train_per_class",)
    hint_text = (
        "Load the dataset with data.load_dataset('mnist', fast=True) and count the labels "
        "with np.bincount, or read the signature: help(data.load_dataset)."
    )
    solution_code = """
fast = data.load_dataset("mnist", fast=True)
fast_train_per_class = int(np.bincount(fast.y_train)[0])   # every class has the same count
"""

    def _check(self, fast_train_per_class) -> str:
        default = inspect.signature(load_dataset).parameters["train_per_class"].default
        expect_number("fast_train_per_class", fast_train_per_class, default)
        return f"{default} x 10 classes = {10 * default:,} images, against 55,000 in full mode."


class FastResultsFolder(Problem):
    """Where does a fast-mode run of 02_pruning write its results file?"""

    variables = ("answer",)
    hint_text = "Fast mode must never overwrite the committed full-mode numbers."
    solution_code = 'answer = "b"'
    choices = {
        "a": "No: results/ holds the committed full-mode numbers; fast mode never writes there.",
        "b": "",
        "c": "No: fast mode writes its results too, so the tests can check them.",
    }

    def _check(self, answer) -> str:
        expect_choice("answer", answer, self.choices, "b")
        return "everything a fast run makes lives under the git-ignored artifacts/fast/."


class SlowOnThisCpu(Problem):
    """Which technique is likely to make training SLOWER on a CPU without AMX or a GPU?"""

    variables = ("answer",)
    hint_text = "Which technique changes the number format of the arithmetic during training?"
    solution_code = 'answer = "c"'
    choices = {
        "a": "No: pruning leaves training arithmetic in float32 (it adds a little masking).",
        "b": "No: post-training quantization does not touch training at all.",
        "c": "",
    }

    def _check(self, answer) -> str:
        expect_choice("answer", answer, self.choices, "c")
        return (
            "without float16/bfloat16 matrix units the CPU converts back and forth, so mixed "
            "precision usually costs time; chapter 06 measures it."
        )


q1 = FastTrainSize()
q2 = FastResultsFolder()
q3 = SlowOnThisCpu()
