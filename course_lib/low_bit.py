"""Below 8 bits: quantize a .tflite file by recipe with ai-edge-quantizer (int4, mixed).

Introduced in 03_quantization ("Go below 8 bits"), where a reference cell calls the
quantizer directly - a recipe, ``Quantizer.quantize``, ``validate`` and ``export_model`` -
before these helpers wrap the same calls. ai-edge-quantizer works on a converted .tflite
file, not on a Keras model, and needs no TensorFlow.

Recipes, by the name each variant gets in the results:

- ``aeq_dynamic_wi8`` / ``aeq_dynamic_wi4``: int8 / int4 weights, one scale per output
  channel; the runtime quantizes activations on the fly and computes with integers
  (like the converter's dynamic range quantization).
- ``aeq_weight_only_wi4``: int4 weights, dequantized to float32 before a float computation.
- ``aeq_blockwise32_wi4``: int4 weights with one scale per block of 32 input values in each
  output channel (dense layers; convolutions keep int4 per channel).
- ``aeq_static_wi8_ai8``: int8 weights and int8 activations with ranges calibrated on
  training images (like the converter's full-integer int8).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from ai_edge_quantizer import qtyping, quantizer, recipe, recipe_manager
from ai_edge_quantizer.utils import validation_utils

from course_lib import memo
from course_lib.system import cpu_name
from course_lib.tflite import LiteModel, plain_interpreter, read_tflite

Recipe = list[dict[str, Any]]
"""A quantization recipe: ai-edge-quantizer's list of ``{regex, operation, op_config}``."""

_OPS = qtyping.TFLOperationName


def _blockwise32_wi4() -> Recipe:
    manager = recipe_manager.RecipeManager()
    manager.add_dynamic_config(".*", _OPS.CONV_2D, 4)  # per channel: only 9 inputs per filter
    manager.add_dynamic_config(".*", _OPS.FULLY_CONNECTED, 4, qtyping.QuantGranularity.BLOCKWISE_32)
    return manager.get_quantization_recipe()


RECIPES: dict[str, Callable[[], Recipe]] = {
    "aeq_dynamic_wi8": recipe.dynamic_wi8_afp32,
    "aeq_dynamic_wi4": recipe.dynamic_wi4_afp32,
    "aeq_weight_only_wi4": recipe.weight_only_wi4_afp32,
    "aeq_blockwise32_wi4": _blockwise32_wi4,
    "aeq_static_wi8_ai8": recipe.static_wi8_ai8,
}
"""The named recipes of 03_quantization, each a function returning a fresh recipe."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide the quantizer's progress bar (on stderr) and LiteRT's debug-mode warning."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        yield


def recipe_for(name: str) -> Recipe:
    """Return the recipe called ``name`` (a key of :data:`RECIPES`).

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name]()


def int4_packed_bytes(count: int) -> int:
    """Bytes that ``count`` int4 values take when two share a byte: ``ceil(count / 2)``."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return math.ceil(count / 2)


def pack_int4(values: np.ndarray) -> bytes:
    """Pack int4 values (-8..7) two to a byte, the first of each pair in the low 4 bits.

    The layout of TFLite's int4 tensors; shown in 03_quantization, where the packed size of
    the dense kernel is compared with the file sizes. An odd count pads the last high half
    with 0.

    Raises:
        ValueError: a value outside -8..7 or not an integer.
    """
    v = np.asarray(values).ravel()
    if v.size and (not np.issubdtype(v.dtype, np.integer) or v.min() < -8 or v.max() > 7):
        raise ValueError("int4 values must be integers in -8..7")
    nibbles = (v.astype(np.int64) & 0xF).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).tobytes()


def unpack_int4(packed: bytes, count: int) -> np.ndarray:
    """Inverse of :func:`pack_int4`: the first ``count`` signed int4 values, as int8."""
    raw = np.frombuffer(packed, dtype=np.uint8)
    if count < 0 or count > 2 * raw.size:
        raise ValueError(f"count must be in 0..{2 * raw.size}, got {count}")
    nibbles = np.empty(2 * raw.size, np.int16)
    nibbles[0::2], nibbles[1::2] = raw & 0xF, raw >> 4
    return np.where(nibbles > 7, nibbles - 16, nibbles)[:count].astype(np.int8)


def signature_input(model: bytes | str | Path) -> tuple[str, str]:
    """Return ``(signature key, input name)`` of a one-input .tflite, as the quantizer needs.

    Raises:
        ValueError: not a .tflite file (see :func:`course_lib.tflite.read_tflite`), or a
            model without exactly one signature with one input.
    """
    signatures = Interpreter(model_content=read_tflite(model)).get_signature_list()
    if len(signatures) != 1:
        raise ValueError(f"expected one signature, found {sorted(signatures)}")
    ((key, spec),) = signatures.items()
    if len(spec["inputs"]) != 1:
        raise ValueError(f"signature {key!r} has inputs {spec['inputs']}; expected one")
    return key, spec["inputs"][0]


def signature_data(model: bytes | str | Path, images: np.ndarray) -> dict[str, list[dict]]:
    """Wrap images as the quantizer's calibration / test data: one image per sample."""
    x = np.asarray(images, np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"need a non-empty batch of images, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("the images contain NaN or infinite values")
    key, name = signature_input(model)
    return {key: [{name: x[i : i + 1]} for i in range(len(x))]}


def quantize_tflite(
    model: bytes | str | Path,
    quant_recipe: str | Recipe,
    calibration_images: np.ndarray | None = None,
) -> bytes:
    """Quantize a float .tflite with ai-edge-quantizer and return the new .tflite bytes.

    Args:
        model: the float32 .tflite (bytes or path).
        quant_recipe: a name of :data:`RECIPES` or a recipe (e.g. from :func:`mixed_recipe`).
        calibration_images: images for the activation ranges; required by recipes with
            int8 activations (``aeq_static_wi8_ai8``), refused by the others.

    Raises:
        ValueError: unknown recipe name, not a .tflite, calibration images missing or
            not needed.
    """
    content = read_tflite(model)
    chosen = recipe_for(quant_recipe) if isinstance(quant_recipe, str) else quant_recipe
    qt = quantizer.Quantizer(bytearray(content), chosen)
    if qt.need_calibration != (calibration_images is not None):
        need = "needs calibration_images" if qt.need_calibration else "takes no calibration"
        raise ValueError(
            f"this recipe quantizes {'' if qt.need_calibration else 'no '}activations: it {need}"
        )
    calibration = None
    with _quiet():
        if calibration_images is not None:
            data = signature_data(content, calibration_images)
            calibration = qt.calibrate(data, num_threads=1)
        result = qt.quantize(calibration, enable_progress_report=False)
    return bytes(result.quantized_model)


def output_snr_db(
    float_model: bytes | str | Path,
    quantized: bytes | str | Path,
    images: np.ndarray,
    *,
    cache: bool = False,
) -> float:
    """Signal-to-noise ratio of the quantized model's output against the float model's, in dB.

    ``10 log10(mean(float^2) / MSE)``: the MSE comes from ai-edge-quantizer's ``validate``
    (its mean over the images of each image's output MSE), the signal power from the float
    model's outputs. Every 6 dB is about one more bit of agreement. (``validate`` also
    offers an SNR, but as the mean of per-image ratios: one image whose outputs agree to
    1e-9 gives a ratio near 1e9 and swamps the mean, so this pools first.)

    With ``cache`` the answer is remembered under ``artifacts/<mode>/outputs/snr/``, keyed
    by both files' bytes, the images, the quantizer's and LiteRT's versions and the CPU
    (:mod:`course_lib.memo`): both models run on LiteRT's CPU kernels, which give the same
    outputs for the same inputs every time.
    """
    float_bytes = read_tflite(float_model)
    if cache:
        quantized_bytes = read_tflite(quantized)
        key = memo.digest(
            "output-snr-db",
            float_bytes,
            quantized_bytes,
            np.asarray(images),
            memo.package_version("ai-edge-quantizer"),
            memo.package_version("ai-edge-litert"),
            cpu_name(),
        )
        found = memo.remembered_json(
            "snr", key, lambda: _finite_or_text(output_snr_db(float_bytes, quantized_bytes, images))
        )
        return float(found)  # type: ignore[arg-type]  # a number, or "inf" as text
    qt = quantizer.Quantizer(
        bytearray(float_bytes), previous_quantized_model=bytearray(read_tflite(quantized))
    )
    data = signature_data(float_bytes, images)
    with _quiet():
        comparison = qt.validate(
            data,
            error_metrics=[validation_utils.ValidationErrorMetric.MSE],
            num_threads=1,
            validate_output_tensors_only=True,
        )
    (mse,) = [v["mse"] for v in comparison.get_all_tensor_results().values()]
    signal = float(np.mean(np.square(LiteModel(float_bytes).predict(images))))
    return float(10 * np.log10(signal / mse)) if mse > 0 else math.inf


def _finite_or_text(value: float) -> float | str:
    """JSON has no infinity: store an SNR of identical outputs as the text "inf"."""
    return value if math.isfinite(value) else str(value)


WEIGHTED_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
"""The operators whose weights the recipes quantize."""


def layer_outputs(model: bytes | str | Path) -> dict[str, str]:
    """Map each Keras layer with weights to the name of its operator's output tensor.

    ai-edge-quantizer picks ops by a regex on that output name (its "scope", the output
    names joined by ``;`` with a trailing ``;``). It usually contains the
    layer (``lenet_300_100/fc1/MatMul;...``), but the model's last op is named after the
    signature's output (``StatefulPartitionedCall:0``), so the layer is read from the op's
    weight tensor (``<model>/<layer>/MatMul``) instead. Uses the interpreter's
    ``_get_ops_details``, which LiteRT does not document as public API.
    """
    interpreter = plain_interpreter(model)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    found = {}
    for op in interpreter._get_ops_details():
        if op["op_name"] in WEIGHTED_OPS:
            weight = names[op["inputs"][1]]
            found[weight.split("/")[-2]] = names[op["outputs"][0]]
    return found


def mixed_recipe(model: bytes | str | Path, bits: Mapping[str, int]) -> Recipe:
    """A dynamic-range recipe with int4 or int8 weights chosen per Keras layer.

    Args:
        model: the float .tflite the recipe is for (its op names are matched exactly).
        bits: ``{layer name: 4 or 8}``; layers not named stay float32.

    Raises:
        ValueError: no layers, an unknown layer (the message lists the known ones), or bits
            other than 4 and 8.
    """
    if not bits:
        raise ValueError("name at least one layer")
    outputs = layer_outputs(model)
    manager = recipe_manager.RecipeManager()
    for layer, b in bits.items():
        if layer not in outputs:
            raise ValueError(f"no layer {layer!r} with weights; layers: {', '.join(outputs)}")
        if b not in (4, 8):
            raise ValueError(f"bits for layer {layer!r} must be 4 or 8, got {b!r}")
        regex = f"^{re.escape(outputs[layer])};$"  # the quantizer's scope: output names + ";"
        manager.add_dynamic_config(regex, _OPS.ALL_SUPPORTED, int(b))
    return manager.get_quantization_recipe()


def layer_sensitivity(
    float_model: bytes | str | Path,
    layers: Sequence[str],
    images: np.ndarray,
    *,
    cache: bool = False,
) -> list[dict[str, Any]]:
    """Quantize one layer at a time to int4 and to int8; the output's SNR for each.

    The rest of the model stays float32, so each row shows what that layer alone costs.
    ``cache`` is passed on to :func:`output_snr_db`.

    Returns:
        One row per layer: ``layer``, ``snr_db_int4``, ``snr_db_int8``.
    """
    rows = []
    for layer in layers:
        row: dict[str, Any] = {"layer": layer}
        for b in (4, 8):
            quantized = quantize_tflite(float_model, mixed_recipe(float_model, {layer: b}))
            row[f"snr_db_int{b}"] = output_snr_db(float_model, quantized, images, cache=cache)
        rows.append(row)
    return rows


def choose_bits(rows: Sequence[Mapping[str, Any]], min_snr_db: float) -> dict[str, int]:
    """int4 for the layers whose int4 output SNR is at least ``min_snr_db``, int8 otherwise."""
    if not rows:
        raise ValueError("no sensitivity rows")
    return {r["layer"]: 4 if r["snr_db_int4"] >= min_snr_db else 8 for r in rows}
