"""Collaborative optimization: pipelines of pruning, clustering and quantization-aware
training that end in an int8 .tflite, and Deep Compression's way of counting bytes.

Introduced in 04_combined.

A pipeline is a list of stages, e.g. ``prune > cluster > pcqat``. Every stage starts from
the previous stage's model and is cached under the whole chain that produced it, so
``prune > ptq``, ``prune > pqat`` and ``prune > cluster > pcqat`` share one pruned model.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from course_lib.compat import keras, tfmot
from course_lib.data import Dataset
from course_lib.data import identity as data_identity
from course_lib.measure import count_params
from course_lib.pruning import PruneConfig, fine_tune_pruned
from course_lib.quantization import tflite_quantization
from course_lib.report import Result
from course_lib.tflite import convert, weight_tensors
from course_lib.training import (
    CachedModel,
    TrainConfig,
    cached_model,
    compile_model,
    copy_model,
    fit,
)
from course_lib.variants import measure_tflite

STAGES = ("prune", "cluster", "ptq", "qat", "pqat", "cqat", "pcqat")
"""Stage names a pipeline may use."""
QUANT_STAGES = ("ptq", "qat", "pqat", "cqat", "pcqat")


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline and its settings.

    Attributes:
        name: one of ``STAGES``.
        sparsity: for ``prune``: one target, or ``{layer: target}``.
        clusters: for ``cluster``: number of distinct values per layer.
        epochs, learning_rate, batch_size: fine-tuning of this stage (``ptq`` trains not).
    """

    name: str
    sparsity: float | dict[str, float] | None = None
    clusters: int | None = None
    epochs: int = 1
    learning_rate: float = 1e-4
    batch_size: int = 32

    def settings(self) -> dict[str, Any]:
        """The settings that matter for this stage (cache key and Result record)."""
        if self.name == "ptq":
            return {"name": "ptq"}
        out: dict[str, Any] = {
            "name": self.name,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
        }
        if self.name == "prune":
            out["sparsity"] = self.sparsity
        if self.name == "cluster":
            out["clusters"] = self.clusters
        return out


def pipeline_name(stages: Sequence[Stage]) -> str:
    """``"prune>cluster>pcqat"`` for those three stages."""
    return ">".join(stage.name for stage in stages)


def validate_pipeline(stages: Sequence[Stage]) -> None:
    """Check that the stages exist and come in an order that can work.

    Rules: quantization (``ptq``, ``qat``, ``pqat``, ``cqat``, ``pcqat``) comes last and once;
    pruning comes before clustering; each stage at most once; ``pqat`` needs pruning before
    it, ``cqat`` clustering, ``pcqat`` both; plain ``qat`` or ``cqat`` after pruning would
    let pruned weights grow back, so the pipeline must use ``pqat`` / ``pcqat`` instead.

    Raises:
        ValueError: the first broken rule, in words.
    """
    if not stages:
        raise ValueError("a pipeline needs at least one stage")
    names = [stage.name for stage in stages]
    for name in names:
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}; known stages: {', '.join(STAGES)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"stage {repeated[0]!r} appears more than once")
    for i, name in enumerate(names):
        if name in QUANT_STAGES and i != len(names) - 1:
            raise ValueError(
                f"quantization stage {name!r} must come last, but {names[i + 1]!r} follows it: "
                "training after quantization would move the weights off the int8 grid"
            )
    if "cluster" in names and "prune" in names and names.index("prune") > names.index("cluster"):
        raise ValueError("prune before cluster: pruning a clustered layer destroys its clusters")
    last, before = names[-1], set(names[:-1])
    needs = {"pqat": {"prune"}, "cqat": {"cluster"}, "pcqat": {"prune", "cluster"}}
    if last in needs and not needs[last] <= before:
        missing = " and ".join(sorted(needs[last] - before))
        raise ValueError(f"{last!r} preserves what {missing} made, so it needs {missing} first")
    if last == "qat" and "prune" in before or last == "cqat" and "prune" in before:
        better = "pqat" if last == "qat" else "pcqat"
        raise ValueError(f"{last!r} after pruning lets zeros grow back; use {better!r}")
    if last == "qat" and "cluster" in before:
        raise ValueError("'qat' after clustering breaks the clusters; use 'cqat'")


def _quantize(model: keras.Model, stage: str) -> keras.Model:
    q = tfmot.quantization.keras
    model = copy_model(model)
    if stage == "qat":
        return q.quantize_model(model)
    combine = tfmot.experimental.combine
    scheme = {
        "pqat": lambda: combine.Default8BitPrunePreserveQuantizeScheme(),
        "cqat": lambda: combine.Default8BitClusterPreserveQuantizeScheme(),
        "pcqat": lambda: combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True),
    }[stage]()
    return q.quantize_apply(q.quantize_annotate_model(model), scheme)


def _cluster(model: keras.Model, stage: Stage, data: Dataset, preserve_sparsity: bool):
    api = tfmot.clustering.keras
    wrapped = api.cluster_weights(
        copy_model(model),  # cluster_weights modifies the layers it wraps
        number_of_clusters=stage.clusters,
        cluster_centroids_init=api.CentroidInitialization.KMEANS_PLUS_PLUS,
        preserve_sparsity=preserve_sparsity,
    )
    compile_model(wrapped, stage.learning_rate)
    history = fit(wrapped, data, TrainConfig(stage.epochs, stage.batch_size, stage.learning_rate))
    stripped = api.strip_clustering(wrapped)
    return compile_model(stripped, stage.learning_rate), {"history": history}


def _run_stage(
    previous: keras.Model, stage: Stage, prior: Sequence[Stage], data: Dataset
) -> tuple[keras.Model, dict[str, Any]]:
    start = time.perf_counter()
    if stage.name == "prune":
        cfg = PruneConfig(
            sparsity=stage.sparsity,
            epochs=stage.epochs,
            batch_size=stage.batch_size,
            learning_rate=stage.learning_rate,
        )
        model, meta = fine_tune_pruned(previous, data, cfg)
    elif stage.name == "cluster":
        pruned = any(s.name == "prune" for s in prior)
        model, meta = _cluster(previous, stage, data, preserve_sparsity=pruned)
    else:
        model = compile_model(_quantize(previous, stage.name), stage.learning_rate)
        meta = {
            "history": fit(
                model, data, TrainConfig(stage.epochs, stage.batch_size, stage.learning_rate)
            )
        }
    meta["train_seconds"] = time.perf_counter() - start
    return model, meta


@dataclass
class PipelineOutcome:
    """What :func:`run_pipeline` returns: the Result, the final model and every stage."""

    result: Result
    model: keras.Model
    tflite_bytes: bytes
    stages: list[CachedModel] = field(default_factory=list)


def run_pipeline(
    base: CachedModel,
    stages: Sequence[Stage],
    data: Dataset,
    *,
    model_name: str,
    baseline: str,
    folder: str = "04_combined",
    variant: str | None = None,
) -> PipelineOutcome:
    """Run the stages in order from ``base``, convert the last model, measure it.

    Every training stage is cached under the chain of stages that led to it. The last stage
    decides the conversion: ``ptq`` converts to int8 with calibration data, a QAT stage to
    int8 from the learned ranges; a pipeline without quantization converts to float32.

    Returns:
        A :class:`PipelineOutcome`; its Result has ``technique="combined"`` and the fields
        ``pipeline``, ``huffman_bytes``, ``stages`` and ``stored_weights`` (zeros and
        distinct values counted in the .tflite's own weight buffers).

    Raises:
        ValueError: see :func:`validate_pipeline`.
    """
    validate_pipeline(stages)
    model, chain, entries = base.model, [base.path.stem], []
    for i, stage in enumerate(stages):
        if stage.name == "ptq":
            break
        chain.append(stage.settings())
        prior = stages[:i]
        previous = model
        rebuild = (
            (lambda p=previous, s=stage.name: _quantize(p, s))
            if stage.name in QUANT_STAGES
            else None
        )
        entry = cached_model(
            f"{model_name}-{pipeline_name(stages[: i + 1])}",
            {"chain": chain, **data_identity(data)},
            lambda p=previous, s=stage, pr=prior: _run_stage(p, s, pr, data),
            custom_objects_scope=None,
            rebuild=rebuild,
        )
        entries.append(entry)
        model = entry.model
    last = stages[-1].name
    kind = "int8" if last in QUANT_STAGES else "float32"
    content = convert(model, kind, representative_data=data.x_train if last == "ptq" else None)
    name = variant or f"{model_name}_{pipeline_name(stages).replace('>', '_')}"
    stored = stored_weight_stats(content, base.model)
    # Parameters and MACs come from the base architecture (the wrappers of QAT and
    # clustering add bookkeeping variables); the zeros are counted in the .tflite itself.
    result = measure_tflite(
        content,
        name,
        data,
        base.model,
        model_name=model_name,
        technique="combined",
        baseline=baseline,
        folder=folder,
        nonzero_params=count_params(base.model) - sum(w["zeros"] for w in stored),
        pipeline=pipeline_name(stages),
        huffman_bytes=deep_compression_bytes(content),
        stages=[s.settings() for s in stages],
        stored_weights=stored,
        fine_tune_seconds=round(sum(e.meta.get("train_seconds", 0.0) for e in entries), 1),
    )
    return PipelineOutcome(result, model, content, entries)


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
        last = position
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
