"""Exercises of 01_baseline: convert and run a model with LiteRT, and say how sure a number is.

q1 and q2 make the learner write the chapter's code (the converter, the interpreter); their
checkers call it on a small random model that no cell of the notebook shows. q3 and q4 are
computed by hand, for other values than the notebook's worked examples.
"""

from __future__ import annotations

import math

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from course_lib.compat import keras
from course_lib.exercises.core import Incorrect, Problem, as_number, call_learner, expect_number
from course_lib.tflite import convert

FRESH_INPUT = (12, 12, 1)
"""Input shape of the checkers' fresh model (not the seed CNN's, so no cell can be copied)."""
FRESH_CLASSES = 5


def fresh_model(seed: int) -> keras.Model:
    """A small random CNN (Conv2D(4, 3x3) -> Flatten -> Dense(5, softmax) on 12x12x1).

    Its weights come from ``np.random.default_rng(seed)``, so building it does not touch the
    learner's global random state. Used by the checkers of q1 and q2.
    """
    model = keras.Sequential(
        [
            keras.Input(shape=FRESH_INPUT),
            keras.layers.Conv2D(4, (3, 3), activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(FRESH_CLASSES, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()]
    )
    return model


def fresh_images(seed: int, count: int) -> np.ndarray:
    """``count`` float32 images of shape ``FRESH_INPUT``: a random 6x6 patch in [0, 1] at a
    random place on a black background (varied enough that the model's class varies)."""
    rng = np.random.default_rng(seed)
    height, width, _ = FRESH_INPUT
    images = np.zeros((count, *FRESH_INPUT), dtype=np.float32)
    for image, (row, col) in zip(images, rng.integers(0, 7, size=(count, 2)), strict=True):
        image[row : row + 6, col : col + 6] = rng.random((6, 6, 1), dtype=np.float32)
    return images


def _run_tflite(content: bytes, images: np.ndarray) -> np.ndarray:
    """Run a float32 .tflite on each image (batch 1); return the outputs."""
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    if tuple(inp["shape"]) != (1, *images.shape[1:]):
        raise Incorrect(
            f"the .tflite expects input of shape {tuple(inp['shape'])}, but the model passed "
            f"to your function takes {(1, *images.shape[1:])}: convert the `model` argument, "
            "not another model"
        )
    if np.dtype(inp["dtype"]) != np.float32:
        raise Incorrect(
            f"the .tflite takes {np.dtype(inp['dtype'])} input: this exercise wants the plain "
            "float32 conversion (no optimizations, no int8 input)"
        )
    outputs = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.array(outputs)


class ToTflite(Problem):
    """Write ``to_tflite(model) -> bytes`` with ``tf.lite.TFLiteConverter``.

    The checker converts a fresh random model with it, runs the bytes in LiteRT and compares
    the outputs with the Keras model's. Tolerance: 1e-5 on the softmax outputs (a float32
    conversion differs by about 1e-7; int8 or float16 weights differ by 1e-4 or more).
    """

    variables = ("to_tflite",)
    tolerance = 1e-5
    hint_text = (
        "Make a converter with tf.lite.TFLiteConverter.from_keras_model(model) and return "
        "what its convert() method returns (the flatbuffer, as bytes). Leave out "
        "optimizations: this is the float32 conversion."
    )
    solution_code = """
from course_lib.compat import tf

def to_tflite(model):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    return converter.convert()   # bytes: write them to a .tflite file to deploy
"""

    def _check(self, to_tflite) -> str:
        model = fresh_model(seed=7)
        content = call_learner(to_tflite, model)
        if not isinstance(content, (bytes, bytearray)):
            raise Incorrect(
                f"to_tflite should return the .tflite contents as bytes (what convert() "
                f"returns), got {type(content).__name__}"
            )
        try:
            Interpreter(model_content=bytes(content)).allocate_tensors()
        except Exception as err:
            raise Incorrect(
                "LiteRT cannot load the bytes your function returned: they are not a .tflite "
                f"flatbuffer ({type(err).__name__})"
            ) from err
        images = fresh_images(seed=8, count=8)
        got = _run_tflite(bytes(content), images)
        expected = model(images, training=False).numpy()
        gap = float(np.abs(got - expected).max())
        if not gap <= self.tolerance:
            raise Incorrect(
                f"the .tflite's outputs differ from the Keras model's by up to {gap:.1e}: "
                "leave out optimizations for the float32 conversion"
            )
        return (
            f"LiteRT and Keras agree within {gap:.0e} on 8 new images: conversion kept the "
            "float32 arithmetic."
        )


class PredictOne(Problem):
    """Write ``predict_one(tflite_bytes, image) -> int`` with the LiteRT ``Interpreter``.

    ``image`` has no batch axis. The checker converts a fresh random model, calls the
    function on 8 new images and compares each answer with the Keras model's class.
    """

    variables = ("predict_one",)
    hint_text = (
        "Interpreter(model_content=tflite_bytes), then allocate_tensors(); set_tensor the "
        "input index (from get_input_details()) to the image with a batch axis added "
        "(image[np.newaxis]); invoke(); get_tensor the output index; return the argmax as "
        "an int."
    )
    solution_code = """
import numpy as np
from ai_edge_litert.interpreter import Interpreter

def predict_one(tflite_bytes, image):
    interpreter = Interpreter(model_content=tflite_bytes)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    interpreter.set_tensor(input_index, image[np.newaxis].astype(np.float32))
    interpreter.invoke()
    return int(np.argmax(interpreter.get_tensor(output_index)[0]))
"""

    def _check(self, predict_one) -> str:
        model = fresh_model(seed=11)
        content = convert(model, "float32")
        images = fresh_images(seed=12, count=8)
        expected = model(images, training=False).numpy().argmax(axis=1)
        for i, image in enumerate(images):
            answer = call_learner(predict_one, content, image.copy())
            if isinstance(answer, np.ndarray) and answer.size > 1:
                raise Incorrect(
                    f"predict_one returned an array of shape {answer.shape}: return the class "
                    "index (the argmax of the output), not the probabilities"
                )
            if np.asarray(answer).dtype.kind not in "iu":  # bools, floats, strings, None
                raise Incorrect(
                    f"predict_one should return the class as an int, got {type(answer).__name__}"
                )
            answer = int(np.asarray(answer).reshape(-1)[0])
            if answer != int(expected[i]):
                raise Incorrect(
                    f"for image {i} predict_one returned {answer}, but the model's most "
                    f"probable class is {int(expected[i])}"
                )
        return "your interpreter loop gives the model's class on 8 new images."


def wilson(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval, written out here so the checker does not depend on stats."""
    p = correct / total
    denominator = 1 + z * z / total
    center = (p + z * z / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return center - half, center + half


class WilsonByHand(Problem):
    """The Wilson 95 % interval of 188 right answers out of 200, as fractions.

    Tolerance: 0.001 on each end (an answer rounded to 3 significant figures is within
    0.0005); the normal-approximation interval, z = 1.645 (90 %) and percentages all fail.
    """

    variables = ("low", "high")
    correct, total, tolerance = 188, 200, 1e-3
    hint_text = (
        "p = 188 / 200, n = 200, z = 1.96. center = (p + z**2 / (2 * n)) / (1 + z**2 / n); "
        "half = z / (1 + z**2 / n) * sqrt(p * (1 - p) / n + z**2 / (4 * n**2)). "
        "The interval is center - half to center + half."
    )
    solution_code = """
import numpy as np

p, n, z = 188 / 200, 200, 1.96
center = (p + z**2 / (2 * n)) / (1 + z**2 / n)
half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
low, high = center - half, center + half      # about 0.898 and 0.965
"""

    def _check(self, low, high) -> str:
        low, high = as_number("low", low), as_number("high", high)
        if low > 1 or high > 1:
            raise Incorrect("give the interval as fractions in [0, 1], not in percent")
        if low > high:
            raise Incorrect("`low` is larger than `high`: swap them")
        exp_low, exp_high = wilson(self.correct, self.total)
        p = self.correct / self.total
        wald = 1.96 * math.sqrt(p * (1 - p) / self.total)
        if abs(low - (p - wald)) <= self.tolerance and abs(high - (p + wald)) <= self.tolerance:
            raise Incorrect(
                "that is the normal approximation p ± 1.96·sqrt(p(1-p)/n); the Wilson interval "
                "is centred below p (toward 1/2) and is wider on the low side"
            )
        expect_number("low", low, exp_low, abs_tol=self.tolerance)
        expect_number("high", high, exp_high, abs_tol=self.tolerance)
        return (
            f"{100 * p:.0f} % measured on 200 images means anything from {100 * exp_low:.1f} "
            f"to {100 * exp_high:.1f} %: 200 test images cannot rank two models 1 point apart."
        )


class ConvIntensity(Problem):
    """MACs per byte of parameters of ``Conv2D(16, (5, 5))`` on a 28x28x1 image, batch 1.

    Parameters are the kernel and the biases, 4 bytes each (float32). Tolerance: 0.5 %
    relative (3 significant figures pass; leaving out the biases is 4 % off and fails).
    """

    variables = ("conv_intensity",)
    rel = 5e-3
    hint_text = (
        "A 5x5 'valid' convolution turns 28x28 into 24x24 positions; each of the 16 filters "
        "does 5 x 5 x 1 MACs at each position. Parameters: 16 x (5 x 5 x 1 + 1), 4 bytes "
        "each. Divide the MACs by the bytes."
    )
    solution_code = """
macs = 24 * 24 * 16 * (5 * 5 * 1)            # 230,400
weight_bytes = 4 * 16 * (5 * 5 * 1 + 1)      # 1,664
conv_intensity = macs / weight_bytes         # about 138 MACs per byte
"""

    def _check(self, conv_intensity) -> str:
        value = as_number("conv_intensity", conv_intensity)
        macs, params = 24 * 24 * 16 * 25, 16 * 26
        wrong = {
            macs / (16 * 25 * 4): "leave the biases in: they are parameters the CPU reads too",
            28 * 28 * 16 * 25 / (params * 4): "a 5x5 'valid' convolution outputs 24x24, not 28x28",
            macs / params: "that is MACs per parameter; each float32 parameter is 4 bytes",
            params * 4 / macs: "that is bytes per MAC; divide MACs by bytes",
        }
        for wrong_value, reason in wrong.items():
            if math.isclose(value, wrong_value, rel_tol=self.rel / 2):
                raise Incorrect(reason)
        expect_number("conv_intensity", value, macs / (params * 4), rel=self.rel)
        return (
            "a convolution reuses each weight hundreds of times per image, while a dense "
            "layer at batch 1 does a quarter of a MAC per byte: it waits for memory."
        )


q1 = ToTflite()
q2 = PredictOne()
q3 = WilsonByHand()
q4 = ConvIntensity()
