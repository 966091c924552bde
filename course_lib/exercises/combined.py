"""Exercises of 04_combined: count sparse storage bits, cluster with tfmot, keep zeros in QAT.

Every checker here runs or inspects what the learner wrote: it calls their function on
fresh arrays, reads the distinct values of their clustered model, or trains and converts
the model their function returns. None of the answers is printed in the notebook.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.exercises.core import (
    Incorrect,
    NotAttempted,
    Problem,
    as_number,
    call_learner,
    is_blank,
)

SEED_CNN_KERNELS = {"conv": (3, 3, 1, 32), "dense": (21632, 10)}
"""Kernel shapes of the seed CNN, which exercise 2 clusters."""


# ---------------------------------------------------------------- 1: count sparse storage


def stored_entries(values: np.ndarray, index_bits: int) -> int:
    """Entries a relative-index sparse format stores: the non-zeros plus filler zeros.

    A gap g between stored positions (1 = adjacent) fits when g <= 2**index_bits - 1;
    a longer gap needs ``ceil(g / max_gap) - 1`` filler zeros (Han et al., 2016). The gap of
    the first non-zero is counted from position -1, as in
    :func:`course_lib.deep_compression.sparse_index_stream`.
    """
    max_gap = 2**index_bits - 1
    positions = np.flatnonzero(np.asarray(values).ravel())
    gaps = np.diff(np.concatenate([[-1], positions]))
    return int(len(positions) + sum(-(-int(g) // max_gap) - 1 for g in gaps))


SPARSE_CASES = (  # (length, non-zero positions, value_bits, index_bits)
    (40, (2, 3, 30), 4, 3),  # gap 27 at 3 bits: 3 fillers
    (1000, (0, 500, 999), 2, 5),  # long gaps at 5 bits
    (64, tuple(range(0, 64, 2)), 8, 2),  # every second weight: no filler
    (300, (299,), 3, 4),  # one weight at the very end
)
"""Fresh inputs the checker calls the learner's function on."""


def _case(length: int, positions: tuple[int, ...]) -> np.ndarray:
    values = np.zeros(length, np.int8)
    values[list(positions)] = np.arange(1, len(positions) + 1) % 7 + 1
    return values


class SparseStorageBits(Problem):
    """Write ``sparse_bits(values, value_bits, index_bits)``: bits to store a pruned layer.

    The format is Deep Compression's before Huffman coding: each stored entry has a
    ``value_bits`` cluster index and an ``index_bits`` distance to the previous stored
    entry; a gap longer than ``2**index_bits - 1`` is bridged with filler zeros, which are
    stored entries too. The checker calls the function on fresh arrays (``SPARSE_CASES``)
    and wants the exact count (an integer number of bits; no tolerance).
    """

    variables = ("sparse_bits",)
    hint_text = (
        "Walk through the non-zero positions (np.flatnonzero). The distance from the "
        "previous stored entry (start at position -1) must be at most 2**index_bits - 1; "
        "while it is longer, store a filler zero max_gap further on. Every stored entry, "
        "filler or not, costs value_bits + index_bits bits."
    )
    solution_code = """
def sparse_bits(values, value_bits, index_bits):
    max_gap = 2**index_bits - 1
    entries, last = 0, -1
    for position in np.flatnonzero(np.ravel(values)):
        while position - last > max_gap:   # filler zero
            last += max_gap
            entries += 1
        entries += 1
        last = position
    return entries * (value_bits + index_bits)
"""

    def _check(self, sparse_bits) -> str:
        for length, positions, value_bits, index_bits in SPARSE_CASES:
            values = _case(length, positions)
            answer = call_learner(sparse_bits, values, value_bits, index_bits)
            got = as_number("sparse_bits(...)", answer)
            expected = stored_entries(values, index_bits) * (value_bits + index_bits)
            if got != expected:
                raise Incorrect(
                    f"for {len(positions)} non-zeros at positions {list(positions)[:6]}"
                    f"{'...' if len(positions) > 6 else ''} of {length}, value_bits="
                    f"{value_bits}, index_bits={index_bits}: expected {expected:,} bits, "
                    f"got {got:,.0f}. {self._why(got, values, value_bits, index_bits)}"
                )
        return (
            "for the 300x100 layer of the text (3,000 non-zeros, 16 clusters, 5-bit "
            "indices) that is about 3.4 kB before Huffman coding, against 120 kB in float32."
        )

    @staticmethod
    def _why(got: float, values: np.ndarray, value_bits: int, index_bits: int) -> str:
        nonzero = int(np.count_nonzero(values))
        entries = stored_entries(values, index_bits)
        if got == nonzero * (value_bits + index_bits):
            return "Did you forget the filler zeros for gaps that do not fit?"
        if got == entries * value_bits or got == nonzero * value_bits:
            return "Each stored entry also needs its index_bits relative position."
        if got * 8 == entries * (value_bits + index_bits):
            return "Return bits, not bytes."
        if got == values.size * (value_bits + index_bits):
            return "Store only the non-zeros (and fillers), not every weight."
        return "Count every stored entry, filler zeros included."


# ---------------------------------------------------------------- 2: cluster to 8 values


def _kernels(model: Any) -> dict[str, np.ndarray]:
    return {
        layer.name: layer.kernel.numpy()
        for layer in getattr(model, "layers", [])
        if hasattr(layer, "kernel")
    }


class ClusterToEight(Problem):
    """Write ``cluster_to_8(model)``: cluster with ``cluster_weights``, report the gzip ratio.

    The checker calls the function on a fresh seed CNN and inspects what comes back,
    ``(clustered_model, gzip_ratio)``: a stripped Keras model (no clustering wrappers) with
    the seed CNN's kernels, each holding at most 8 distinct values, and the ratio of its
    float32 .tflite's size to the gzip (level 9) size of that file, recomputed here from
    the returned model, within 2 % (a ratio rounded to 3 significant figures passes; the
    unclustered model's ratio, the inverse and a percentage fail).
    """

    variables = ("cluster_to_8",)
    hint_text = (
        "tfmot.clustering.keras.cluster_weights(model, number_of_clusters=8, "
        "cluster_centroids_init=CentroidInitialization.KMEANS_PLUS_PLUS), then strip_clustering "
        "(fine-tuning is optional). Convert with tf.lite.TFLiteConverter.from_keras_model, and "
        "divide len(tflite) by len(gzip.compress(tflite, compresslevel=9))."
    )
    solution_code = """
import gzip

import tensorflow as tf
import tensorflow_model_optimization as tfmot


def cluster_to_8(model):
    api = tfmot.clustering.keras
    wrapped = api.cluster_weights(
        model,
        number_of_clusters=8,
        cluster_centroids_init=api.CentroidInitialization.KMEANS_PLUS_PLUS,
    )
    # (optional) wrapped.compile(...); wrapped.fit(...) for an epoch at learning rate 1e-4
    clustered = api.strip_clustering(wrapped)
    tflite = tf.lite.TFLiteConverter.from_keras_model(clustered).convert()
    return clustered, len(tflite) / len(gzip.compress(tflite, compresslevel=9))
"""

    @staticmethod
    def fresh_model() -> Any:
        """The seed CNN with seeded random weights (what the checker clusters)."""
        from course_lib.compat import set_seeds
        from course_lib.models import seed_cnn

        set_seeds(11)
        return seed_cnn()

    def _check(self, cluster_to_8) -> str:
        from course_lib.measure import gzip_size
        from course_lib.tflite import convert

        answer = call_learner(cluster_to_8, self.fresh_model())
        if not isinstance(answer, tuple | list) or len(answer) != 2:
            raise Incorrect("return two things: (clustered_model, gzip_ratio)")
        clustered_model, gzip_ratio = answer
        if is_blank(clustered_model) or is_blank(gzip_ratio):
            raise NotAttempted("replace the ____ in cluster_to_8 with your code")
        if not hasattr(clustered_model, "layers"):
            raise Incorrect(f"the first value should be a Keras model, got {clustered_model!r}")
        ratio = as_number("gzip_ratio", gzip_ratio)
        wrapped = [
            layer.name for layer in clustered_model.layers if "Cluster" in type(layer).__name__
        ]
        if wrapped:
            raise Incorrect(
                f"layers {wrapped} still carry clustering wrappers: call strip_clustering"
            )
        kernels = _kernels(clustered_model)
        shapes = {name: tuple(k.shape) for name, k in kernels.items()}
        if sorted(shapes.values()) != sorted(SEED_CNN_KERNELS.values()):
            raise Incorrect(f"expected the seed CNN's kernels {SEED_CNN_KERNELS}, got {shapes}")
        for name, kernel in kernels.items():
            distinct = len(np.unique(kernel))
            if distinct > 8:
                raise Incorrect(
                    f"layer {name!r} has {distinct:,} distinct values; 8 clusters allow 8"
                )
        content = convert(clustered_model, "float32")
        expected = len(content) / gzip_size(content)
        if abs(ratio - expected) > 0.02 * expected:
            tip = (
                "that looks like gzip bytes / file bytes: invert it"
                if ratio < 1
                else "divide the .tflite's size by its gzip size"
            )
            raise Incorrect(
                f"gzip_ratio = {ratio:.3g}, but this model's float32 .tflite shrinks "
                f"{expected:.3g}x under gzip; {tip}"
            )
        return (
            f"gzip shrinks the clustered file {expected:.1f}x: 8 values per layer are 3 bits "
            "of information stored in 32-bit floats."
        )


# ---------------------------------------------------------------- 3: keep zeros through QAT


class KeepZerosInQAT(Problem):
    """Write ``make_pqat(pruned_model)``: a quantization-aware model that keeps the zeros.

    The checker prunes a fresh small CNN (80 % of the dense kernel set to zero), calls the
    function, trains the result for 30 steps at a high learning rate (so plain QAT would
    let zeros grow back), converts it to int8, and reads the dense kernel from the file:
    it must be quantization-aware (``QuantizeWrapper`` layers) and keep >= 79 % zeros.
    """

    variables = ("make_pqat",)
    hint_text = (
        "tfmot.quantization.keras.quantize_annotate_model(model), then quantize_apply(..., "
        "tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())."
    )
    solution_code = """
import tensorflow_model_optimization as tfmot


def make_pqat(pruned_model):
    q = tfmot.quantization.keras
    annotated = q.quantize_annotate_model(pruned_model)
    return q.quantize_apply(
        annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
"""
    target = 0.8

    @classmethod
    def pruned_model(cls) -> Any:
        """A small CNN whose dense kernel is 80 % zeros (seeded, untrained)."""
        from course_lib.compat import keras, set_seeds

        set_seeds(7)
        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                keras.layers.MaxPooling2D(2, name="pool"),
                keras.layers.Flatten(name="flatten"),
                keras.layers.Dense(10, activation="softmax", name="dense"),
            ]
        )
        kernel, bias = model.get_layer("dense").get_weights()
        cut = np.quantile(np.abs(kernel), cls.target)
        model.get_layer("dense").set_weights([np.where(np.abs(kernel) > cut, kernel, 0), bias])
        return model

    def _check(self, make_pqat) -> str:
        from course_lib.compat import tf
        from course_lib.tflite import convert, weight_tensors
        from course_lib.training import compile_model

        model = call_learner(make_pqat, self.pruned_model())
        if not hasattr(model, "layers"):
            raise Incorrect(f"`make_pqat` should return a Keras model, got {model!r}")
        if not any(type(layer).__name__ == "QuantizeWrapperV2" for layer in model.layers):
            raise Incorrect(
                "the model has no QuantizeWrapper layers, so it is not quantization-aware: "
                "use quantize_annotate_model and quantize_apply"
            )
        rng = np.random.default_rng(0)
        x = rng.random((960, 28, 28, 1), dtype=np.float32)
        y = rng.integers(0, 10, 960)
        tf.random.set_seed(0)
        compile_model(model, 1e-2).fit(x, y, batch_size=32, epochs=1, verbose=0)
        dense = [
            values
            for values in weight_tensors(convert(model, "int8")).values()
            if values.shape == (10, 13 * 13 * 4) and values.dtype == np.int8
        ]
        if not dense:
            raise Incorrect("the converted file has no int8 dense kernel: is the model QAT?")
        zeros = float(np.mean(dense[0] == 0))
        if zeros < self.target - 0.01:
            raise Incorrect(
                f"after 30 training steps only {100 * zeros:.0f} % of the dense kernel is zero "
                f"(it started at {100 * self.target:.0f} %): plain QAT lets pruned weights grow "
                "back; quantize_apply needs the prune-preserving scheme"
            )
        return f"{100 * zeros:.0f} % zeros survived quantization-aware training and int8."


q1 = SparseStorageBits()
q2 = ClusterToEight()
q3 = KeepZerosInQAT()
