"""Exercises of 00_setup_and_tour: count parameters, the memory a dataset takes, fast mode.

None of the answers is printed in the notebook: q1 uses other layer shapes than the seed
CNN, q2 asks for a size no cell prints, and q3 makes the learner write a function that the
checker calls in both modes.
"""

from __future__ import annotations

import os

from course_lib import config
from course_lib.data import load_dataset
from course_lib.exercises.core import Incorrect, Problem, as_number, call_learner, expect_number


class LayerParameters(Problem):
    """Parameters of Conv2D(8, (5, 5)) on a 32x32x3 image, and of Dense(64) after Flatten.

    Integers: exact answers only (a float such as 608.0 is accepted).
    """

    variables = ("conv_params", "dense_params")
    conv, dense = 8 * (5 * 5 * 3 + 1), 28 * 28 * 8 * 64 + 64
    hint_text = (
        "Each of the 8 filters has 5 x 5 x 3 weights (one per input channel) and one bias. "
        "A 5x5 'valid' convolution turns 32x32 into 28x28, so Flatten passes 28 x 28 x 8 "
        "values to the Dense layer: one weight per input per unit, plus a bias per unit. "
        "Check with keras: build keras.Sequential([keras.Input((32, 32, 3)), "
        "keras.layers.Conv2D(8, (5, 5)), keras.layers.Flatten(), keras.layers.Dense(64)]) "
        "and call .summary()."
    )
    solution_code = """
conv_params = 8 * (5 * 5 * 3 + 1)        # 608: 75 weights + 1 bias per filter
dense_params = 28 * 28 * 8 * 64 + 64     # 401,472: 6,272 inputs x 64 units + 64 biases
"""

    def _check(self, conv_params, dense_params) -> str:
        conv = as_number("conv_params", conv_params)
        dense = as_number("dense_params", dense_params)
        if conv == 8 * 5 * 5 * 3:
            raise Incorrect("`conv_params` is missing the biases: each filter has one")
        if conv == 8 * (5 * 5 + 1):
            raise Incorrect("`conv_params`: each filter has a 5x5 kernel per input channel (3)")
        expect_number("conv_params", conv, self.conv)
        if dense == 32 * 32 * 8 * 64 + 64:
            raise Incorrect("`dense_params`: a 5x5 'valid' convolution outputs 28x28, not 32x32")
        if dense == 28 * 28 * 8 * 64:
            raise Incorrect("`dense_params` is missing the 64 biases")
        expect_number("dense_params", dense, self.dense)
        return "the dense layer after Flatten holds almost all the parameters, as in the seed CNN."


class FastTrainBytes(Problem):
    """How many bytes of memory do fast mode's MNIST training images take?

    Tolerance: 0.5 % relative (an answer rounded to 3 significant figures passes; uint8,
    float64 and full-mode sizes are off by a factor of 2 or more).
    """

    variables = ("fast_train_bytes",)
    rel = 5e-3
    hint_text = (
        "The dataset's repr shows the shape of x_train in fast mode and its dtype. float32 "
        "takes 4 bytes per number. (NumPy can tell you too: the .nbytes of an array.)"
    )
    solution_code = """
from course_lib.data import load_dataset

fast_train_bytes = load_dataset("mnist", fast=True).x_train.nbytes   # 3,000 x 28 x 28 x 1 x 4
"""

    def _check(self, fast_train_bytes) -> str:
        value = as_number("fast_train_bytes", fast_train_bytes)
        images = load_dataset("mnist", fast=True).x_train
        expected, pixels = images.nbytes, images.size
        if value == pixels:
            raise Incorrect(
                "that is the number of pixels (one byte each as uint8); the "
                "loaded images are float32"
            )
        if value == 2 * expected:
            raise Incorrect("float32 takes 4 bytes per number, not 8")
        if value < 1000:
            raise Incorrect("give the size in bytes, not in megabytes")
        expect_number("fast_train_bytes", value, expected, rel=self.rel)
        return (
            f"{expected / 1e6:.1f} MB in fast mode; full mode's 55,000 images take "
            f"{55_000 * expected / len(images) / 1e6:.0f} MB."
        )


class EpochsForMode(Problem):
    """Write ``training_epochs()`` that returns 12 in full mode and 3 in fast mode.

    The checker calls it once with ``COURSE_FAST=1`` and once without, and restores the
    environment afterwards.
    """

    variables = ("training_epochs",)
    hint_text = (
        "Inside the function, return config.pick(full=..., fast=...): pick reads the mode "
        "each time it is called."
    )
    solution_code = """
from course_lib import config
from course_lib.data import load_dataset

def training_epochs():
    return config.pick(full=12, fast=3)
"""

    def _check(self, training_epochs) -> str:
        saved = os.environ.get(config.FAST_ENV)
        answers = {}
        try:
            for mode, value in (("fast", "1"), ("full", "0")):
                os.environ[config.FAST_ENV] = value
                answers[mode] = call_learner(training_epochs)
        finally:
            if saved is None:
                os.environ.pop(config.FAST_ENV, None)
            else:
                os.environ[config.FAST_ENV] = saved
        fast = as_number("training_epochs() in fast mode", answers["fast"])
        full = as_number("training_epochs() in full mode", answers["full"])
        if fast == 12 and full == 3:
            raise Incorrect("full and fast are swapped: full mode is the long one (12 epochs)")
        if fast == full:
            raise Incorrect(
                f"training_epochs() returned {fast:g} in both modes: choose inside the "
                "function with config.pick, so the mode is read when it is called"
            )
        expect_number("training_epochs() in full mode", full, 12)
        expect_number("training_epochs() in fast mode", fast, 3)
        return "one code path, two sizes: that is how every notebook runs in both modes."


q1 = LayerParameters()
q2 = FastTrainBytes()
q3 = EpochsForMode()
