"""Deep Compression's way of counting bytes, and what a .tflite really stores.

Introduced in 04_combined (Han, Mao and Dally, ICLR 2016): Huffman coding, sparse
matrices stored as non-zeros plus relative indices, and counts of zeros and distinct values
read from a .tflite's own weight buffers. :mod:`course_lib.combined` re-exports these.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from course_lib.compat import keras
from course_lib.quantization import tflite_quantization
from course_lib.tflite import weight_tensors


def _tflite_kernel_shapes(model: keras.Model) -> dict[tuple[int, ...], list[str]]:
    """Map TFLite's kernel layout (output channel first) to the Keras layers with it."""
    shapes: dict[tuple[int, ...], list[str]] = {}
    for layer in model.layers:
        kernel = getattr(getattr(layer, "layer", layer), "kernel", None)
        if kernel is None:
            continue
        shape = tuple(int(d) for d in kernel.shape)
        stored = (shape[-1], *shape[:-1]) if len(shape) == 4 else shape[::-1]
        shapes.setdefault(stored, []).append(layer.name)
    return shapes


def stored_weight_stats(
    content: bytes | str | Path, model: keras.Model | None = None
) -> list[dict[str, Any]]:
    """Count zeros and distinct values in every weight matrix stored in a .tflite.

    Looks at constant tensors with at least 2 dimensions (kernels, in TFLite's layout with the
    output channel first). ``max_unique_per_channel`` is what clustering controls: each output
    channel of an int8 kernel has its own scale, so 16 clusters give at most 16 values per
    channel (and more across the tensor).

    Args:
        content: the .tflite.
        model: the Keras model it came from; when given, each row names its Keras layer
            (matched by shape, because converted tensor names vary).

    Returns:
        ``[{"layer", "tensor", "shape", "dtype", "size", "zeros", "sparsity", "unique",
        "max_unique_per_channel"}, ...]``.
    """
    shapes = _tflite_kernel_shapes(model) if model is not None else {}
    rows = []
    for name, values in weight_tensors(content).items():
        if values.ndim < 2:
            continue
        per_channel = values.reshape(values.shape[0], -1)
        rows.append(
            {
                "layer": "/".join(shapes.get(tuple(values.shape), ["?"])),
                "tensor": name,
                "shape": list(values.shape),
                "dtype": values.dtype.name,
                "size": int(values.size),
                "zeros": int(np.sum(values == 0)),
                "sparsity": round(float(np.mean(values == 0)), 4),
                "unique": int(len(np.unique(values))),
                "max_unique_per_channel": int(max(len(np.unique(row)) for row in per_channel)),
            }
        )
    return rows


def huffman_code_lengths(symbols: Sequence[Any] | np.ndarray) -> dict[Any, int]:
    """Return the length in bits of each symbol's Huffman code.

    Huffman coding gives frequent symbols short codes; its total length is the smallest any
    prefix code can reach for these frequencies. A single distinct symbol gets 1 bit.

    Raises:
        ValueError: no symbols.
    """
    counts = Counter(np.asarray(symbols).ravel().tolist())
    if not counts:
        raise ValueError("no symbols to code")
    if len(counts) == 1:
        return {next(iter(counts)): 1}
    heap = [(count, i, [symbol]) for i, (symbol, count) in enumerate(sorted(counts.items()))]
    heapq.heapify(heap)
    lengths = dict.fromkeys(counts, 0)
    tie = len(heap)
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        for symbol in s1 + s2:
            lengths[symbol] += 1
        heapq.heappush(heap, (c1 + c2, tie, s1 + s2))
        tie += 1
    return lengths


def huffman_bits(symbols: Sequence[Any] | np.ndarray) -> int:
    """Total bits to Huffman-code ``symbols`` (the code table itself not counted)."""
    values = np.asarray(symbols).ravel().tolist()
    if not values:
        return 0
    lengths = huffman_code_lengths(values)
    return sum(lengths[v] for v in values)


def sparse_index_stream(values: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode a flat weight array as Deep Compression does: non-zeros + relative indices.

    Each stored weight carries the distance from the previous stored one (1 = adjacent).
    When a gap does not fit in ``index_bits`` bits, a zero is stored as filler at the largest
    reachable distance, exactly as in Han et al. (2016), section 2.

    Returns:
        ``(stored_values, index_differences)`` of equal length.

    Raises:
        ValueError: ``index_bits`` < 1.
    """
    if index_bits < 1:
        raise ValueError(f"index_bits must be >= 1, got {index_bits}")
    flat = np.asarray(values).ravel()
    max_gap = 2**index_bits - 1
    stored, gaps, last = [], [], -1
    for position in np.flatnonzero(flat):
        while position - last > max_gap:  # filler zero
            last += max_gap
            stored.append(0)
            gaps.append(max_gap)
        stored.append(flat[position])
        gaps.append(position - last)
        last = int(position)
    return np.asarray(stored, dtype=flat.dtype), np.asarray(gaps, dtype=np.int64)


def array_bits(values: np.ndarray, index_bits: int) -> int:
    """Bits to store one weight tensor the Deep Compression way.

    The cheaper of two codings: every value Huffman-coded (for a dense tensor), or the
    non-zeros plus their relative indices, both Huffman-coded (:func:`sparse_index_stream`).
    A codebook of the distinct stored values (8 bits each) is added.
    """
    values = np.asarray(values).ravel()
    dense = huffman_bits(values) + 8 * len(np.unique(values))
    if not np.any(values == 0):
        return dense
    stored, gaps = sparse_index_stream(values, index_bits)
    sparse = huffman_bits(stored) + huffman_bits(gaps) + 8 * len(np.unique(stored))
    return min(dense, sparse)


def deep_compression_bytes(
    model: bytes | str | Path, fc_index_bits: int = 5, conv_index_bits: int = 8
) -> int:
    """Size of a .tflite's weights counted the Deep Compression way (Han et al., 2016).

    Each weight matrix is counted with :func:`array_bits` (5-bit relative indices for fully
    connected layers, 8-bit for convolutions, as in the paper). To be complete, every other
    constant (biases, shapes) is added at its stored size, and each per-channel scale as
    32 bits. The graph, tensor names and file format are not counted: that is the
    difference to the real file.
    """
    total_bits = 0
    for values in weight_tensors(model).values():
        if values.ndim >= 2:
            bits = conv_index_bits if values.ndim == 4 else fc_index_bits
            total_bits += array_bits(values, bits)
        else:
            total_bits += 8 * values.nbytes
    total_bits += 32 * _scale_count(model)
    return (total_bits + 7) // 8


def _scale_count(model: bytes | str | Path) -> int:
    return sum(len(p["scales"]) for p in tflite_quantization(model) if len(p["shape"]) >= 2)
