"""Exercises of 01_baseline: count the seed CNN's parameters and bytes, explain latency."""

from __future__ import annotations

from course_lib.exercises.core import Incorrect, Problem, expect_choice, expect_number


class CountParameters(Problem):
    """Count the parameters of Conv2D(32, 3x3) -> Flatten -> Dense(10) on 28x28x1 by hand."""

    variables = ("conv_params", "dense_params")
    hint_text = (
        "A Conv2D layer has filters x (kernel_h x kernel_w x input_channels + 1) parameters. "
        "With 'valid' padding a 3x3 kernel turns 28x28 into 26x26, and Flatten passes all "
        "26 x 26 x 32 values to the Dense layer, which has inputs x units + units parameters."
    )
    solution_code = """
conv_params = 32 * (3 * 3 * 1 + 1)        # 320: 9 weights + 1 bias per filter
dense_params = 26 * 26 * 32 * 10 + 10     # 216,330: one weight per input per class + biases
"""

    def _check(self, conv_params, dense_params) -> str:
        if conv_params == 32 * 3 * 3:
            raise Incorrect("`conv_params` is missing the biases: each filter has one")
        expect_number("conv_params", conv_params, 320)
        if dense_params == 28 * 28 * 32 * 10 + 10:
            raise Incorrect("`dense_params`: a 3x3 'valid' convolution outputs 26x26, not 28x28")
        if dense_params == 26 * 26 * 32 * 10:
            raise Incorrect("`dense_params` is missing the 10 biases")
        expect_number("dense_params", dense_params, 216_330)
        return "the dense layer holds 99.85% of the parameters: that is where pruning pays."


class FloatBytes(Problem):
    """How many bytes do the seed CNN's weights take in float32?"""

    variables = ("weight_bytes",)
    hint_text = "float32 takes 4 bytes per number; the model has 216,650 parameters."
    solution_code = "weight_bytes = 216_650 * 4   # 866,600 bytes"

    def _check(self, weight_bytes) -> str:
        if weight_bytes == 216_650:
            raise Incorrect("that is the number of parameters; each float32 takes 4 bytes")
        if weight_bytes == 216_650 * 8:
            raise Incorrect("float32 is 4 bytes (32 bits), not 8")
        expect_number("weight_bytes", weight_bytes, 866_600)
        return (
            "the float32 .tflite is only a few kB larger: almost all of the file is weights, "
            "so shrinking the weights shrinks the file."
        )


class WhyLiteRTIsFaster(Problem):
    """Why does LiteRT answer a single image much faster than ``model.predict``?

    (a) LiteRT quantizes the model to int8 on the fly; (b) most of predict's time is per-call
    overhead (input pipeline, callbacks, graph dispatch), not arithmetic; (c) LiteRT skips the
    weights that are close to zero.
    """

    variables = ("answer",)
    hint_text = (
        "All three run the same arithmetic: 411,008 multiply-accumulates. What else does "
        "model.predict do for every call?"
    )
    solution_code = 'answer = "b"'
    choices = {
        "a": "No: LiteRT runs the same float32 arithmetic here; nothing was quantized.",
        "b": "",
        "c": "No: both use all the weights; the model is identical.",
    }

    def _check(self, answer) -> str:
        expect_choice("answer", answer, self.choices, "b")
        return (
            "predict builds a tf.data pipeline, runs callbacks and a Python loop for each "
            "call; for one image that overhead dwarfs 411 k MACs. model(x) skips most of it, "
            "and the interpreter only runs the pre-planned kernels."
        )


q1 = CountParameters()
q2 = FloatBytes()
q3 = WhyLiteRTIsFaster()
