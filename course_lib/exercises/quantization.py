"""Exercises of 03_quantization: quantize with the right rounding, scale and zero point of a
new range, convert with int8 and float fallback, choose a variant for a device.

Shown in 03_quantization (section "Exercises").
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from course_lib.compat import keras, tf
from course_lib.exercises.core import (
    Incorrect,
    MultipleChoice,
    Problem,
    as_number,
    call_learner,
    expect_number,
)


def _expected_quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8 affine quantization written out independently of course_lib.quantization."""
    q = np.round(np.asarray(x, dtype=np.float64) / scale) + zero_point  # ties to even
    return np.clip(q, -128, 127).astype(np.int8)


class QuantizeDequantize(Problem):
    """Write ``my_quantize(x, scale, zero_point)`` (int8) and ``my_dequantize(q, ...)``.

    The checker calls both on inputs of its own: a power-of-two scale so that ``x / scale``
    lands exactly on halves (2.5 -> 2, 3.5 -> 4, -1.5 -> -2, as ``np.round`` rounds ties to
    even), fractions where ``floor`` or ``int`` truncation differ from rounding, values that
    clip at both ends, a positive zero point (a sign error shows), then random values at
    another scale. The integers must match exactly; the dequantized values within 1e-6.
    """

    variables = ("my_quantize", "my_dequantize")
    hint_text = (
        "q = np.round(x / scale) + zero_point, clipped to [-128, 127] and stored as np.int8 "
        "(np.floor and int() are not rounding). Dequantize with (q - zero_point) * scale; "
        "convert q to float first, or int8 arithmetic overflows."
    )
    solution_code = """
def my_quantize(x, scale, zero_point):
    q = np.round(np.asarray(x) / scale) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def my_dequantize(q, scale, zero_point):
    return ((np.asarray(q).astype(np.float32) - zero_point) * scale).astype(np.float32)
"""

    #: x / 0.25 = 2.5, 3.5, -1.5 (ties), 1.8, -1.2, -1.8 (floor/int differ), clipping.
    TIES = np.array([0.625, 0.875, -0.375, 0.45, -0.3, -0.45, 0.0, 40.0, -40.0])

    def _check(self, my_quantize, my_dequantize) -> str:
        rng = np.random.default_rng(2024)
        cases = [
            (self.TIES, 0.25, 7),
            (rng.uniform(-3.0, 3.0, size=50), 0.0237, -11),
        ]
        for x, scale, zero_point in cases:
            q = np.asarray(call_learner(my_quantize, x, scale, zero_point))
            expected = _expected_quantize(x, scale, zero_point)
            if q.dtype != np.int8:
                raise Incorrect(f"my_quantize should return np.int8 values, got {q.dtype}")
            if q.shape != expected.shape or not np.array_equal(q, expected):
                wrong = (
                    np.flatnonzero(q.ravel() != expected.ravel())[:3]
                    if q.shape == expected.shape
                    else [0]
                )
                i = int(wrong[0])
                raise Incorrect(
                    f"my_quantize(x, scale={scale}, zero_point={zero_point}) gave {q.ravel()[i]} "
                    f"for x = {x[i]:g} (x / scale = {x[i] / scale:g}), expected {expected[i]}: "
                    "round to nearest (ties as np.round), add the zero point, clip"
                )
        for x, scale, zero_point in cases:  # q reaches -128: int8 arithmetic would wrap
            q = _expected_quantize(x, scale, zero_point)
            back = np.asarray(call_learner(my_dequantize, q, scale, zero_point), dtype=np.float64)
            expected_back = (q.astype(np.float64) - zero_point) * scale
            if back.shape != expected_back.shape or not np.allclose(back, expected_back, atol=1e-6):
                raise Incorrect(
                    f"my_dequantize(q, scale={scale}, zero_point={zero_point}) is not "
                    "(q - zero_point) * scale on fresh values (widen q before subtracting)"
                )
        return "np.round sends 2.5 to 2 and 3.5 to 4 (ties to even); floor would give 2 and 3."


class ScaleAndZeroPoint(Problem):
    """Scale and zero point of int8 affine quantization for the range [-0.6, 1.9].

    Expected: ``scale = 2.5 / 255 = 0.0098039``, ``zero_point = round(-128 + 0.6 / scale)
    = round(-66.8) = -67``. Tolerance: the scale within 0.1 % (relative), so 0.00980 (3
    significant figures) passes while 2.5 / 256 (0.4 % off) fails; the zero point exactly.
    Wrong reasonings listed in the tests: dividing by 256, truncating -66.8 to -66, the wrong
    sign (+67), the symmetric scale 1.9 / 127.
    """

    variables = ("scale_answer", "zero_point_answer")
    hint_text = (
        "int8 has 255 steps from -128 to 127: scale = (max - min) / 255. The zero point is "
        "the integer that stands for 0.0: round(-128 - min / scale). Round, don't truncate."
    )
    solution_code = """
scale_answer = (1.9 - (-0.6)) / 255                      # 0.0098 per step
zero_point_answer = round(-128 - (-0.6) / scale_answer)  # round(-66.8) = -67
"""
    LOW, HIGH = -0.6, 1.9

    def _check(self, scale_answer, zero_point_answer) -> str:
        scale = (self.HIGH - self.LOW) / 255
        zero_point = round(-128 - self.LOW / scale)
        value = as_number("scale_answer", scale_answer)
        if abs(value - (self.HIGH - self.LOW) / 256) < 1e-7:
            raise Incorrect("`scale_answer`: 256 values make 255 steps, so divide by 255")
        if abs(value - max(abs(self.LOW), self.HIGH) / 127) < 1e-5:
            raise Incorrect("`scale_answer`: that is the symmetric scale; activations are affine")
        expect_number("scale_answer", value, scale, rel=1e-3)
        z = as_number("zero_point_answer", zero_point_answer)
        if z == -zero_point:
            raise Incorrect("`zero_point_answer` has the wrong sign: 0.0 lies above -0.6")
        if z == int(-128 - self.LOW / scale):
            raise Incorrect("`zero_point_answer`: round -66.8 to the nearest integer, not toward 0")
        expect_number("zero_point_answer", z, zero_point)
        return "check: -0.6 maps to -128, 0.0 to -67, 1.9 to 127."


def _checker_model() -> tuple[keras.Model, np.ndarray]:
    """A fresh small model with fixed random weights and one op (SIN) that has no int8 kernel."""
    rng = np.random.default_rng(7)
    model = keras.Sequential(
        [
            keras.Input((10, 10, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(16, name="hidden"),
            keras.layers.Lambda(tf.sin, name="sin"),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ]
    )
    model.set_weights(
        [rng.normal(0, 0.3, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    images = rng.uniform(0, 1, size=(60, 10, 10, 1)).astype("float32")
    return model, images


class ConvertWithFallback(Problem):
    """Write ``convert_int8_with_fallback(model, images) -> bytes``: int8 where possible,
    float where an op has no int8 kernel, float input and output.

    The checker converts a fresh model of its own (conv, dense, a ``tf.sin`` that has no
    int8 kernel, dense) with the learner's function, loads the bytes in LiteRT and checks:
    float32 input and output, both FULLY_CONNECTED ops reading int8 activations (so the
    representative data was used: dynamic range keeps activations float), the SIN op still
    there (integer-only conversion refuses it), and the predictions of the .tflite agree with
    the Keras model's on at least 90 % of fresh images.
    """

    variables = ("convert_int8_with_fallback",)
    hint_text = (
        "Set converter.optimizations = [tf.lite.Optimize.DEFAULT] and give a "
        "converter.representative_dataset generator that yields [image[None]] for a hundred "
        "of the images. Do NOT restrict target_spec.supported_ops and keep the input and "
        "output types float32: that is what lets an op without an int8 kernel stay float."
    )
    solution_code = """
def convert_int8_with_fallback(model, images):
    def representative_dataset():
        for image in images[:100]:
            yield [image[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    return converter.convert()
"""

    def _check(self, convert_int8_with_fallback) -> str:
        model, images = _checker_model()
        content = call_learner(convert_int8_with_fallback, model, images)
        if not isinstance(content, (bytes, bytearray)):
            raise Incorrect(
                f"return the .tflite bytes of converter.convert(), got {type(content).__name__}"
            )
        interpreter = Interpreter(
            model_content=bytes(content),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        if inp["dtype"] != np.float32 or out["dtype"] != np.float32:
            raise Incorrect(
                "keep float32 input and output (no inference_input_type / inference_output_type): "
                f"the file has {np.dtype(inp['dtype'])} in, {np.dtype(out['dtype'])} out"
            )
        ops = interpreter._get_ops_details()
        names = [op["op_name"] for op in ops]
        dtypes = {d["index"]: np.dtype(d["dtype"]) for d in interpreter.get_tensor_details()}
        fc_inputs = [
            dtypes[int(op["inputs"][0])] for op in ops if op["op_name"] == "FULLY_CONNECTED"
        ]
        if "SIN" not in names:
            raise Incorrect(f"the converted file has no SIN op: {names}")
        if len(fc_inputs) != 2 or any(d != np.int8 for d in fc_inputs):
            raise Incorrect(
                "the dense layers compute in float (their inputs are "
                f"{[str(d) for d in fc_inputs]}): without a representative_dataset the "
                "converter only quantizes weights (dynamic range)"
            )
        predictions = []
        fresh = np.random.default_rng(11).uniform(0, 1, size=(50, 10, 10, 1)).astype("float32")
        for image in fresh:
            interpreter.set_tensor(inp["index"], image[None])
            interpreter.invoke()
            predictions.append(int(interpreter.get_tensor(out["index"])[0].argmax()))
        agreement = float(
            np.mean(np.array(predictions) == model.predict(fresh, verbose=0).argmax(-1))
        )
        if agreement < 0.9:
            raise Incorrect(f"the .tflite agrees with the Keras model on only {agreement:.0%}")
        return (
            f"ops {names}: int8 throughout, except SIN, which runs in float between a "
            "DEQUANTIZE and a QUANTIZE."
        )


class ChooseForDevice(MultipleChoice):
    """Pick the variant for a microcontroller with int8-only kernels and no floating point."""

    variable = "answer"
    hint_text = "Which variant computes every layer, input and output in integers?"
    solution_code = 'answer = "c"'
    choices = {
        "a": "No: float16 weights are turned back into float32 and computed in floating point.",
        "b": "No: dynamic range keeps activations in float32; only the weights are int8.",
        "c": "",
        "d": "No: 16x8 needs int16 kernels for every op, which many int8-only runtimes lack.",
        "e": "No: with float fallback some ops, the input and the output stay float32.",
    }
    answer = "c"
    correct_message = (
        "full-integer int8 (integer-only ops, int8 input and output) is the variant that "
        "TFLite Micro, CMSIS-NN and int8 NPUs run end to end."
    )


q1 = QuantizeDequantize()
q2 = ScaleAndZeroPoint()
q3 = ConvertWithFallback()
q4 = ChooseForDevice()
