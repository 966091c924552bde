"""Measure a model: parameters, zeros per layer, multiply-accumulates, and file sizes.

Introduced in 01_baseline. Works on tf_keras models (including tfmot-wrapped ones) and on
plain NumPy arrays; nothing here trains or converts.
"""

from __future__ import annotations

import gzip
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_lib.compat import keras

# Variables tfmot adds to a wrapped layer; they are bookkeeping, not model parameters.
_TFMOT_BOOKKEEPING = ("mask", "threshold", "pruning_step", "optimizer_step", "_min", "_max")


@dataclass(frozen=True)
class WeightSparsity:
    """Zeros in one weight tensor of one layer."""

    layer: str
    weight: str
    shape: tuple[int, ...]
    size: int
    zeros: int

    @property
    def sparsity(self) -> float:
        """Fraction of exact zeros, in [0, 1]."""
        return self.zeros / self.size if self.size else 0.0


def _short_name(variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def _parameter_weights(model: keras.Model):
    """Yield (layer, variable) for every real parameter (tfmot bookkeeping skipped)."""
    for layer in model.layers:
        for variable in layer.weights:
            name = _short_name(variable)
            if any(name.endswith(tag) or name == tag for tag in _TFMOT_BOOKKEEPING):
                continue
            yield layer, variable


def sparsity_report(model: keras.Model, kernels_only: bool = False) -> list[WeightSparsity]:
    """Return the number of exact zeros in every weight tensor, layer by layer.

    Args:
        model: a built Keras model; tfmot pruning wrappers are fine (their masks and
            counters are skipped).
        kernels_only: report only kernels (the tensors pruning acts on), not biases.

    Raises:
        ValueError: the model has no weights (is it built?).
    """
    rows = []
    for layer, variable in _parameter_weights(model):
        name = _short_name(variable)
        if kernels_only and "kernel" not in name:
            continue
        values = variable.numpy()
        rows.append(
            WeightSparsity(
                layer=layer.name,
                weight=name,
                shape=tuple(values.shape),
                size=int(values.size),
                zeros=int(values.size - np.count_nonzero(values)),
            )
        )
    if not rows:
        raise ValueError(f"model {model.name!r} has no weights to report; build it first")
    return rows


def count_params(model: keras.Model) -> int:
    """Return the number of parameters (weights and biases, tfmot bookkeeping excluded)."""
    return sum(row.size for row in sparsity_report(model))


def count_nonzero(model: keras.Model) -> int:
    """Return the number of parameters that are not exactly zero."""
    return sum(row.size - row.zeros for row in sparsity_report(model))


def overall_sparsity(model: keras.Model, kernels_only: bool = True) -> float:
    """Return the fraction of zeros over all kernels (or all weights), in [0, 1]."""
    rows = sparsity_report(model, kernels_only=kernels_only)
    return sum(r.zeros for r in rows) / sum(r.size for r in rows)


def _unwrap(layer):
    """Return the layer inside a tfmot wrapper (pruning, quantization, clustering)."""
    while hasattr(layer, "layer") and isinstance(layer.layer, keras.layers.Layer):
        layer = layer.layer
    return layer


def _hw(shape) -> int:
    return int(np.prod([d for d in shape[1:-1]]))


# Layers that hold no multiply-accumulates (reshapes, activations, regularisers; batch norm is
# folded into the preceding layer by the TFLite converter).
_ZERO_MAC_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Dropout,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.Softmax,
    keras.layers.BatchNormalization,
    keras.layers.MaxPooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Rescaling,
    keras.layers.ZeroPadding2D,
    keras.layers.Concatenate,
    keras.layers.Add,
    keras.layers.LeakyReLU,
)


def layer_macs(layer: keras.layers.Layer) -> int:
    """Return the multiply-accumulate operations of one layer for ONE input example.

    Conv2D: ``H_out * W_out * C_out * k_h * k_w * C_in / groups``; DepthwiseConv2D:
    ``H_out * W_out * C_in * multiplier * k_h * k_w``; SeparableConv2D: its depthwise part plus
    a 1x1 pointwise conv; Dense: ``inputs * units`` (times the positions when applied to a
    sequence or image); average pooling: one accumulate per input element in each window.
    Max pooling, flatten, padding, concatenation, element-wise additions, activations and
    batch norm (folded at conversion) count 0. Biases are additions, not MACs, and are not
    counted.

    Raises:
        ValueError: the layer type is unsupported (the message names the layer), or the
            layer is not built.
    """
    layer = _unwrap(layer)
    if not layer.built:
        raise ValueError(f"layer {layer.name!r} is not built; build the model first")
    out_shape = layer.output_shape
    if isinstance(layer, keras.layers.SeparableConv2D):
        k_h, k_w = layer.kernel_size
        c_in = layer.input_shape[-1]
        depthwise = _hw(out_shape) * c_in * layer.depth_multiplier * k_h * k_w
        pointwise = _hw(out_shape) * c_in * layer.depth_multiplier * layer.filters
        return int(depthwise + pointwise)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        k_h, k_w = layer.kernel_size
        return int(_hw(out_shape) * layer.input_shape[-1] * layer.depth_multiplier * k_h * k_w)
    if isinstance(layer, keras.layers.Conv2D):
        k_h, k_w = layer.kernel_size
        c_in = layer.input_shape[-1] // layer.groups
        return int(_hw(out_shape) * layer.filters * k_h * k_w * c_in)
    if isinstance(layer, keras.layers.Dense):
        positions = int(np.prod(layer.input_shape[1:-1])) if len(layer.input_shape) > 2 else 1
        return int(positions * layer.input_shape[-1] * layer.units)
    if isinstance(layer, keras.layers.AveragePooling2D):
        p_h, p_w = layer.pool_size
        return int(_hw(out_shape) * out_shape[-1] * p_h * p_w)
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        return int(np.prod(layer.input_shape[1:]))
    if isinstance(layer, _ZERO_MAC_LAYERS) or type(layer).__name__ == "QuantizeLayer":
        return 0  # (tfmot's QuantizeLayer only fake-quantizes the model input)
    raise ValueError(
        f"layer {layer.name!r} of type {type(layer).__name__} is not supported by the MAC "
        "counter (supported: Conv2D, DepthwiseConv2D, SeparableConv2D, Dense, pooling, and "
        "weightless layers)"
    )


def macs_report(model: keras.Model) -> list[dict]:
    """Return ``[{"layer", "type", "params", "macs"}, ...]`` for every layer of a model."""
    rows = []
    for layer in model.layers:
        inner = _unwrap(layer)
        params = sum(
            int(np.prod(v.shape))
            for v in inner.weights
            if not any(_short_name(v).endswith(t) for t in _TFMOT_BOOKKEEPING)
        )
        rows.append(
            {
                "layer": inner.name,
                "type": type(inner).__name__,
                "params": params,
                "macs": layer_macs(inner),
            }
        )
    return rows


def count_macs(model: keras.Model) -> int:
    """Return the multiply-accumulates of one forward pass on one example.

    Example: the seed CNN does 194,688 MACs in its convolution and 216,320 in its dense
    layer, 411,008 in all.
    """
    return sum(row["macs"] for row in macs_report(model))


def as_bytes(data: bytes | str | Path) -> bytes:
    """Return ``data`` itself (bytes) or the contents of the file it names.

    Raises:
        FileNotFoundError: a path that does not exist.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    path = Path(data)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return path.read_bytes()


def gzip_size(data: bytes | str | Path, level: int = 9) -> int:
    """Return the size in bytes of ``data`` (bytes or a file) after gzip at ``level``.

    A default conversion stores pruned weights as exact zeros at full width, so such a
    .tflite only shrinks once compressed (the converter's sparse format is the exception,
    chapter 02); gzip at level 9 is the course's stand-in for that step. The gzip header's
    timestamp is fixed (``mtime=0``), so the result is reproducible byte for byte.

    Raises:
        ValueError: ``level`` is not in 0..9.
        FileNotFoundError: a path that does not exist.
    """
    if not 0 <= level <= 9:
        raise ValueError(f"gzip level must be in 0..9, got {level}")
    return len(gzip.compress(as_bytes(data), compresslevel=level, mtime=0))


def keras_file_size(model: keras.Model, include_optimizer: bool = False) -> int:
    """Return the size in bytes of the model saved as a ``.keras`` file.

    With ``include_optimizer=True`` the file also holds the optimizer's state (Adam keeps two
    extra numbers per weight), which training needs and inference does not.
    """
    if not include_optimizer and model.optimizer is not None:
        copy = keras.models.clone_model(model)  # same architecture, not compiled
        copy.set_weights(model.get_weights())
        model = copy
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.stat().st_size


@dataclass(frozen=True)
class LatencyStats:
    """Timings of repeated calls, in microseconds."""

    median_us: float
    p25_us: float
    p75_us: float
    p90_us: float
    runs: int
    rounds: int
    threads: int

    @property
    def iqr_us(self) -> list[float]:
        """The interquartile range ``[25th, 75th percentile]``: the spread of the timings."""
        return [round(self.p25_us, 2), round(self.p75_us, 2)]

    def __str__(self) -> str:
        return (
            f"median {self.median_us:,.1f} µs (IQR {self.p25_us:,.1f}-{self.p75_us:,.1f}), "
            f"p90 {self.p90_us:,.1f} µs ({self.runs} runs in {self.rounds} "
            f"round{'s' * (self.rounds != 1)}, {self.threads} thread{'s' * (self.threads != 1)})"
        )


def summarize_times(times_us: list[float], threads: int = 1, rounds: int = 1) -> LatencyStats:
    """Summarise raw timings (microseconds): median, quartiles and 90th percentile.

    Quartiles use linear interpolation between order statistics (NumPy's default).

    Raises:
        ValueError: fewer than 2 timings.
    """
    if len(times_us) < 2:
        raise ValueError(f"need at least 2 timings, got {len(times_us)}")
    ordered = sorted(times_us)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    p25, p75 = np.percentile(ordered, [25, 75])
    return LatencyStats(
        median_us=statistics.median(ordered),
        p25_us=float(p25),
        p75_us=float(p75),
        p90_us=p90,
        runs=len(ordered),
        rounds=rounds,
        threads=threads,
    )


def time_calls(
    fn: Callable[[], object],
    warmup: int = 10,
    runs: int = 100,
    threads: int = 1,
    rounds: int = 1,
) -> LatencyStats:
    """Call ``fn()`` ``warmup`` times untimed, then ``runs`` times timed; summarise.

    With ``rounds`` > 1 the ``runs`` timed calls are split into that many rounds, each after
    its own warm-up, and pooled: the spread then includes round-to-round drift (other
    processes, frequency changes), not only call-to-call jitter.

    Introduced in 01_baseline, where it times ``model.predict``, ``model(x)`` and a LiteRT
    ``invoke()`` on one image.

    Args:
        fn: a function of no arguments (wrap arguments in a lambda).
        warmup: untimed calls first (tracing, caches, memory allocation).
        runs: timed calls (at least 2).
        threads: recorded in the result; set it to what ``fn`` uses.
        rounds: measurement rounds (at least 1, at most ``runs // 2``).

    Raises:
        ValueError: ``runs`` < 2, ``warmup`` < 0, or an impossible number of rounds.
    """
    if runs < 2 or warmup < 0:
        raise ValueError(f"need runs >= 2 and warmup >= 0, got {runs} and {warmup}")
    if not 1 <= rounds <= runs // 2:
        raise ValueError(f"rounds must be in [1, runs // 2 = {runs // 2}], got {rounds}")
    times = []
    per_round = [runs // rounds + (i < runs % rounds) for i in range(rounds)]
    for count in per_round:
        for _ in range(warmup):
            fn()
        for _ in range(count):
            start = time.perf_counter_ns()
            fn()
            times.append((time.perf_counter_ns() - start) / 1000.0)
    return summarize_times(times, threads, rounds)
