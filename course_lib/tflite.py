"""Convert Keras models to .tflite and run them with LiteRT: accuracy and latency.

Introduced in 01_baseline. Conversion uses ``tf.lite.TFLiteConverter``; inference uses the
LiteRT interpreter (``ai_edge_litert.interpreter.Interpreter``), the maintained successor of
the deprecated ``tf.lite.Interpreter``.

Conversion kinds (chapter 03 explains each):

- ``float32``: no quantization, the deployable baseline.
- ``dynamic``: int8 weights, float activations quantized on the fly (no calibration data).
- ``float16``: float16 weights, computed in float32 on most CPUs.
- ``int8``: int8 weights AND activations, int8 input/output; needs representative data.
- ``int16x8``: int8 weights, int16 activations; needs representative data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from course_lib import config
from course_lib.atomic import write_bytes_atomic
from course_lib.compat import keras, tf
from course_lib.measure import LatencyStats, as_bytes, time_calls
from course_lib.memo import digest, package_version, remembered_bytes

CONVERSIONS = ("float32", "dynamic", "float16", "int8", "int16x8")
"""The conversion kinds :func:`convert` accepts."""
_NEEDS_CALIBRATION = ("int8", "int16x8")


def _check_images(x: np.ndarray, input_shape: tuple, what: str) -> None:
    expected = tuple(d for d in input_shape[1:])
    if not isinstance(x, np.ndarray) or x.ndim != len(input_shape) or x.shape[1:] != expected:
        got = getattr(x, "shape", type(x).__name__)
        raise ValueError(
            f"{what} must have shape (N, {', '.join(map(str, expected))}) to match the model "
            f"input; got {got}"
        )
    if x.dtype != np.float32:
        raise ValueError(
            f"{what} must be float32 like the model input; got {x.dtype} "
            "(convert with x.astype('float32'))"
        )
    _check_finite(x, what)


def _check_finite(x: np.ndarray, what: str) -> None:
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise ValueError(
            f"{what} contains {bad:,} NaN or infinite value(s): a model fed them computes "
            "nothing useful (and int8 calibration would silently fail); check the "
            "preprocessing that produced them"
        )


def calibration_indices(count: int, num_samples: int, seed: int = config.SEED) -> np.ndarray:
    """The images :func:`representative_dataset` yields: a seeded choice of ``num_samples``
    distinct indices out of ``count``.

    Raises:
        ValueError: ``num_samples`` out of range.
    """
    if not 1 <= num_samples <= count:
        raise ValueError(f"num_samples must be in 1..{count}, got {num_samples}")
    return np.random.default_rng(seed).choice(count, size=num_samples, replace=False)


def representative_dataset(
    x: np.ndarray,
    num_samples: int = 100,
    input_shape: tuple | None = None,
    seed: int = config.SEED,
) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Return a generator function that yields calibration images one at a time.

    The TFLite converter runs these through the model to choose the int8 scale and zero
    point of every activation.

    Args:
        x: float32 images, shape ``(N, H, W, C)``.
        num_samples: how many images to yield (a seeded random choice of ``x``).
        input_shape: the model's input shape (with batch dimension); when given, ``x`` is
            checked against it now, before any conversion starts.
        seed: seed of the random choice.

    Raises:
        ValueError: ``num_samples`` out of range, or ``x`` of the wrong shape or dtype.
    """
    if input_shape is not None:
        _check_images(x, tuple(input_shape), "representative data")
    idx = calibration_indices(len(x), num_samples, seed)

    def generator() -> Iterator[list[np.ndarray]]:
        for i in idx:
            yield [x[i : i + 1]]

    return generator


def is_quantization_aware(model: keras.Model) -> bool:
    """Return True if the model was prepared by ``tfmot.quantization.keras.quantize_model``."""
    return any(type(layer).__name__.startswith("Quantize") for layer in model.layers)


def convert(
    model: keras.Model,
    kind: str = "float32",
    representative_data: np.ndarray | None = None,
    num_calibration: int = 100,
    sparse_format: bool = False,
    cache: bool = False,
) -> bytes:
    """Convert a Keras model to a .tflite flatbuffer.

    Shown in 01_baseline (the plain ``TFLiteConverter.from_keras_model`` call, float32) and
    03_quantization, whose reference cells set each kind's converter options by hand
    (``optimizations``, ``representative_dataset``, ``target_spec``, inference types).

    Args:
        model: a tf_keras model (strip pruning wrappers first).
        kind: one of ``CONVERSIONS``.
        representative_data: float32 images for calibration; required for ``int8`` and
            ``int16x8`` unless the model is quantization-aware (QAT learned its ranges).
        num_calibration: how many of those images the converter sees.
        sparse_format: add ``tf.lite.Optimize.EXPERIMENTAL_SPARSITY`` (stores sparse weights in a
            sparse format that XNNPACK can use for some ops; see chapter 02).
        cache: remember the file under a digest of everything the converter sees
            (:func:`conversion_key`), in ``artifacts/<mode>/outputs/tflite/``; the same
            model, settings and package versions then give the stored bytes without
            converting again. The converter is deterministic: the same input gives the same
            bytes (a test checks it), so the stored file is the file a conversion would make.
            The course's measuring helpers pass ``cache=True``.

    Returns:
        The .tflite file contents.

    Raises:
        ValueError: unknown kind, missing calibration data, or calibration data whose shape
            or dtype does not match the model input (checked before conversion starts).
    """
    if kind not in CONVERSIONS:
        raise ValueError(f"Unknown conversion {kind!r}. Choose one of: {', '.join(CONVERSIONS)}.")
    qat = is_quantization_aware(model)
    calibration = None
    if kind in _NEEDS_CALIBRATION:
        if representative_data is None and not qat:
            raise ValueError(
                f"{kind} conversion needs representative_data (a few hundred training images) "
                "to calibrate activation ranges"
            )
        if representative_data is not None:  # checked here, before conversion starts
            _check_images(representative_data, tuple(model.input_shape), "representative data")
            count = len(representative_data)
            if not 1 <= num_calibration <= count:
                raise ValueError(
                    f"num_calibration must be in 1..{count} (the number of images in "
                    f"representative_data), got {num_calibration}"
                )
            calibration = representative_dataset(
                representative_data, num_calibration, tuple(model.input_shape)
            )
    if cache:
        images = None
        if calibration is not None and representative_data is not None:
            images = representative_data[
                calibration_indices(len(representative_data), num_calibration)
            ]
        key = conversion_key(model, kind, images, sparse_format)
        if key is not None:
            return remembered_bytes(
                "tflite", key, lambda: _convert(model, kind, qat, calibration, sparse_format)
            )
    return _convert(model, kind, qat, calibration, sparse_format)


CONVERSION_PACKAGES = ("tensorflow", "tf-keras", "tensorflow-model-optimization")
"""Packages whose versions are part of every conversion's key (a new converter converts)."""


def model_digest_parts(model: keras.Model) -> list[object] | None:
    """A Keras model as :func:`course_lib.memo.digest` parts: its architecture (``to_json``,
    layer names, wrappers and dtype policy included), the number of weights, then every
    weight (trainable or not). None when the model cannot describe itself as JSON (a layer
    without ``get_config``): what depends on it is then never remembered."""
    try:
        architecture = model.to_json()
    except (NotImplementedError, TypeError, ValueError):
        return None
    weights = [np.asarray(w) for w in model.get_weights()]
    return [architecture, len(weights), *weights]


def conversion_key(
    model: keras.Model,
    kind: str,
    calibration_images: np.ndarray | None = None,
    sparse_format: bool = False,
) -> str | None:
    """A digest of everything that decides what the converter makes of ``model``: its
    architecture (``to_json``, layer names and wrappers included), every weight (trainable or
    not: pruning masks, QAT ranges, cluster centroids), the conversion settings, the images
    it calibrates with and the versions of ``CONVERSION_PACKAGES``. None when the model
    cannot describe itself as JSON (a layer without ``get_config``): it is then never
    cached.
    """
    parts = model_digest_parts(model)
    if parts is None:
        return None
    return digest(
        "tflite.convert",
        *parts,
        kind,
        calibration_images,
        sparse_format,
        *(package_version(name) for name in CONVERSION_PACKAGES),
    )


def _convert(
    model: keras.Model,
    kind: str,
    qat: bool,
    calibration: Callable[[], Iterator[list[np.ndarray]]] | None,
    sparse_format: bool,
) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = []
    if kind != "float32" or qat:
        optimizations.append(tf.lite.Optimize.DEFAULT)
    if sparse_format:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    converter.optimizations = optimizations
    if calibration is not None:
        converter.representative_dataset = calibration
    if kind == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif kind == "int8":
        if not qat:  # QAT models carry their ranges; TF 2.21 rejects INT8-only ops for them
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif kind == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    with warnings.catch_warnings():
        # int8 I/O without input statistics is fine: the converter records the input scale.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return converter.convert()


def save_tflite(content: bytes, path: str | Path) -> Path:
    """Write .tflite bytes to ``path`` atomically (temporary file, then rename)."""
    return write_bytes_atomic(content, path)


TFLITE_IDENTIFIER = b"TFL3"
"""The flatbuffer file identifier of every .tflite file (bytes 4-8)."""


def read_tflite(model: bytes | str | Path) -> bytes:
    """Return the bytes of a .tflite model given as bytes or a path, checked to be one.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: empty, or not a TFLite flatbuffer (e.g. a ``.keras`` or ``.h5`` file);
            the message names the file.
    """
    content = as_bytes(model)
    is_bytes = isinstance(model, (bytes, bytearray, memoryview))
    name = "the given bytes" if is_bytes else str(model)
    if not content:
        raise ValueError(f"{name} is empty: not a .tflite model (re-run the conversion)")
    if content[4:8] != TFLITE_IDENTIFIER:
        hint = ""
        if content[:2] == b"PK":
            hint = " It looks like a zip archive, e.g. a .keras model: convert it first."
        elif content[:8] == b"\x89HDF\r\n\x1a\n":
            hint = " It looks like an HDF5 (.h5) Keras file: convert it first."
        raise ValueError(f"{name} is not a .tflite model (no TFL3 flatbuffer identifier).{hint}")
    return content


def plain_interpreter(model: bytes | str | Path) -> Interpreter:
    """An interpreter without the XNNPACK delegate, for inspecting the graph as stored."""
    interpreter = Interpreter(
        model_content=read_tflite(model),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    return interpreter


def op_names(model: bytes | str | Path) -> list[str]:
    """Return the operator names of a .tflite model in execution order, e.g. ``CONV_2D``.

    ``DENSIFY`` in the list means sparse weights are expanded back to dense ones when the
    model is loaded. (Uses the interpreter's ``_get_ops_details``, which LiteRT does not
    document as public API.)
    """
    return [op["op_name"] for op in plain_interpreter(model)._get_ops_details()]


def is_full_integer(model: bytes | str | Path) -> bool:
    """True when no tensor of the model is floating point: integer input, weights and output.

    This is what "full-integer int8" means: the converter's ``int8`` kind (chapter 03) and
    the quantization-aware pipelines (chapter 04) produce it; dynamic-range, float16 and
    16x8 files keep float tensors (at least the input and output), and so does a file with
    float fallback ops. Only full-integer files suit an integer-only accelerator or a
    microcontroller's int8 kernels.
    """
    details = plain_interpreter(model).get_tensor_details()
    return not any(np.issubdtype(np.dtype(d["dtype"]), np.floating) for d in details)


def offset_buffers(model: bytes | str | Path) -> list[str]:
    """Names of the tensors whose data is stored after the flatbuffer, not inside it.

    A .tflite may keep a constant tensor's bytes in the flatbuffer's ``Buffer.data`` or, in
    the layout made for models over 2 GB, after the flatbuffer, found through the buffer's
    ``offset`` and ``size``. The TFLiteConverter writes that layout on request
    (``_experimental_use_buffer_offset``) and ``ai-edge-quantizer`` writes it for some
    models. LiteRT reads both layouts; a runtime that reads only ``data`` sees no weights.
    """
    from tensorflow.lite.python import schema_py_generated as schema  # the .tflite schema

    flat = schema.Model.GetRootAsModel(read_tflite(model), 0)
    names = []
    for g in range(flat.SubgraphsLength()):
        graph = flat.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            if flat.Buffers(tensor.Buffer()).Offset() > 1:  # 0 and 1 mean "no offset"
                names.append(tensor.Name().decode())
    return names


def weight_tensors(model: bytes | str | Path) -> dict[str, np.ndarray]:
    """Return the constant tensors (weights, biases, shapes) stored in a .tflite, by name.

    A constant is a tensor that some operator reads and none writes. The arrays are stored
    values: int8 for a quantized kernel (see ``quantization`` in the interpreter's tensor
    details to turn them into real numbers), and TFLite's layout, e.g. ``(out, in)`` for a
    fully connected kernel and ``(out, h, w, in)`` for a convolution.
    """
    interpreter = plain_interpreter(model)
    ops = interpreter._get_ops_details()
    written = {int(t) for op in ops for t in op["outputs"]}
    read = {int(t) for op in ops for t in op["inputs"] if t >= 0}
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    return {
        details[i]["name"]: interpreter.get_tensor(i).copy()
        for i in sorted(read - written - graph_inputs)
    }


def sparse_weights(model: bytes | str | Path) -> list[dict[str, Any]]:
    """Describe every weight stored in sparse format (``EXPERIMENTAL_SPARSITY``) in a .tflite.

    For each sparse tensor: the operator that uses it, the block shape (``1x4`` blocks or
    single values), and whether a ``DENSIFY`` operator expands it back to a dense tensor when
    the model loads (then the operator runs its ordinary dense kernel) or the operator reads
    the sparse format directly (a sparse kernel, which can be faster).

    Returns:
        ``[{"tensor", "op", "block", "densified"}, ...]``, empty for a dense model.
    """
    interpreter = plain_interpreter(model)
    ops = interpreter._get_ops_details()
    consumers: dict[int, list[dict]] = {}
    for op in ops:
        for t in op["inputs"]:
            consumers.setdefault(int(t), []).append(op)
    rows = []
    for detail in interpreter.get_tensor_details():
        params = detail.get("sparsity_parameters") or {}
        if not params:
            continue
        users = consumers.get(detail["index"], [])
        densify = next((op for op in users if op["op_name"] == "DENSIFY"), None)
        if densify is not None:
            users = consumers.get(int(densify["outputs"][0]), [])
        block_map = np.asarray(params["block_map"])
        n_dims = len(np.asarray(params["traversal_order"]))
        block_dims = params["dim_metadata"][n_dims - block_map.size :]
        block = "x".join(str(d["dense_size"]) for d in block_dims) if block_map.size else ""
        rows.append(
            {
                "tensor": detail["name"],
                "op": users[0]["op_name"] if users else "?",
                "block": f"1x{block}" if block else "single values",
                "densified": densify is not None,
            }
        )
    return rows


def integer_labels(y: np.ndarray) -> np.ndarray:
    """Return labels as a 1-D integer array; refuse one-hot or float labels with the fix."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(
            f"labels of shape {y.shape} look one-hot: pass class indices, e.g. y.argmax(axis=1)"
        )
    y = y.reshape(-1) if y.ndim == 2 else y
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D array of class indices, got {y.dtype} {y.shape}")
    return y


class LiteModel:
    """A .tflite model loaded into the LiteRT interpreter, with batch-1 helpers.

    Shown in 01_baseline, whose reference cells run ``Interpreter``, ``allocate_tensors``,
    ``set_tensor``, ``invoke`` and ``get_tensor`` by hand for one image.

    Example::

        lite = LiteModel(tflite_bytes)        # or a path to a .tflite file
        lite.evaluate(data.x_test, data.y_test)  # accuracy, one image per invoke()
        lite.latency(data.x_test[:1])            # median / p90 microseconds

    Inputs are float32 images; for an int8 model they are quantized with the scale and zero
    point stored in the model, and int8 outputs are dequantized the same way.
    """

    def __init__(self, model: bytes | str | Path, num_threads: int = 1) -> None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        self.content = read_tflite(model)
        self.num_threads = int(num_threads)
        self.interpreter = Interpreter(model_content=self.content, num_threads=self.num_threads)
        self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Input tensor shape, batch dimension included, e.g. ``(1, 28, 28, 1)``."""
        return tuple(int(d) for d in self._input["shape"])

    @property
    def input_dtype(self) -> np.dtype:
        """Input tensor dtype (float32, or int8 for a full-integer model)."""
        return np.dtype(self._input["dtype"])

    @property
    def output_dtype(self) -> np.dtype:
        """Output tensor dtype."""
        return np.dtype(self._output["dtype"])

    @property
    def input_quantization(self) -> tuple[float, int]:
        """``(scale, zero_point)`` of the input; ``(0.0, 0)`` for a float input."""
        scale, zero_point = self._input["quantization"]
        return float(scale), int(zero_point)

    @property
    def output_quantization(self) -> tuple[float, int]:
        """``(scale, zero_point)`` of the output; ``(0.0, 0)`` for a float output."""
        scale, zero_point = self._output["quantization"]
        return float(scale), int(zero_point)

    def prepare_input(self, x: np.ndarray) -> np.ndarray:
        """Check a batch of images and convert it to the model's input dtype.

        float32 images are quantized for an integer model with its stored scale and zero
        point: ``q = round(x / scale) + zero_point``, clipped to the integer range.

        Raises:
            ValueError: wrong shape or dtype; the message names expected and given.
        """
        expected_shape = self.input_shape[1:]
        x = np.asarray(x)
        ok_dtypes = {np.dtype(np.float32), self.input_dtype}
        if x.ndim != len(self.input_shape) or tuple(x.shape[1:]) != expected_shape:
            raise ValueError(
                f"this .tflite expects input of shape (N, {', '.join(map(str, expected_shape))}) "
                f"and dtype {self.input_dtype}; got shape {x.shape} (add a batch axis with "
                "x[None] for a single image)"
            )
        if x.dtype not in ok_dtypes:
            names = " or ".join(sorted(str(d) for d in ok_dtypes))
            raise ValueError(f"this .tflite expects input of dtype {names}; got {x.dtype}")
        _check_finite(x, "the input")
        if x.dtype == self.input_dtype:
            return x
        scale, zero_point = self.input_quantization
        info = np.iinfo(self.input_dtype)
        q = np.round(x / scale) + zero_point
        return np.clip(q, info.min, info.max).astype(self.input_dtype)

    def output_as_float(self, y: np.ndarray) -> np.ndarray:
        """Dequantize integer outputs with the stored scale and zero point; float passes as is."""
        if self.output_dtype == np.float32:
            return y
        scale, zero_point = self.output_quantization
        return (y.astype(np.float32) - zero_point) * scale

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run every image through ``invoke()`` one at a time and return float outputs.

        Batch 1 is how the model runs on a device, so accuracy is measured exactly as deployed.
        """
        q = self.prepare_input(x)
        interp, in_idx, out_idx = self.interpreter, self._input["index"], self._output["index"]
        outputs = np.empty((len(q), *self._output["shape"][1:]), dtype=self.output_dtype)
        for i in range(len(q)):
            interp.set_tensor(in_idx, q[i : i + 1])
            interp.invoke()
            outputs[i] = interp.get_tensor(out_idx)[0]
        return self.output_as_float(outputs)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> float:
        """Return the top-1 accuracy on ``(x, y)``, one image per ``invoke()``.

        Raises:
            ValueError: lengths differ, one-hot labels, or input of the wrong shape or dtype.
        """
        return float(np.mean(self.correct(x, y)))

    def correct(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return per-image right (True) / wrong (False), one image per ``invoke()``.

        Two models' arrays on the same images feed :func:`course_lib.stats.mcnemar`.

        Raises:
            ValueError: lengths differ, or input of the wrong shape or dtype.
        """
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
        y = integer_labels(y)
        return self.predict(x).argmax(axis=-1) == y

    def latency(
        self, x: np.ndarray, warmup: int = 30, runs: int = 300, rounds: int = 1
    ) -> LatencyStats:
        """Time single-image ``invoke()`` calls (after warm-up) and summarise them.

        Only ``invoke()`` is timed: setting the input and reading the output are not.

        Args:
            x: one image with a batch axis, shape ``(1, H, W, C)``; a longer batch uses its
                first image.
            warmup: untimed calls first (caches, XNNPACK packing), in every round.
            runs: timed calls in all.
            rounds: measurement rounds the timed calls are split into (see
                :func:`course_lib.measure.time_calls`).

        Raises:
            ValueError: ``runs`` < 2, or input of the wrong shape or dtype.
        """
        q = self.prepare_input(x)[:1]
        self.interpreter.set_tensor(self._input["index"], q)
        return time_calls(
            self.interpreter.invoke, warmup, runs, threads=self.num_threads, rounds=rounds
        )
