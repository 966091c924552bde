"""Collaborative optimization: pipelines of pruning, clustering and quantization-aware
training that end in an int8 .tflite (Deep Compression's byte counting lives in
:mod:`course_lib.deep_compression` and is re-exported here).

Introduced in 04_combined.

A pipeline is a list of stages, e.g. ``prune > cluster > pcqat``. Every stage starts from
the previous stage's model and is cached under the whole chain that produced it, so
``prune > ptq``, ``prune > pqat`` and ``prune > cluster > pcqat`` share one pruned model.
"""

from __future__ import annotations

import json
import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from course_lib import config
from course_lib.compat import keras, tfmot
from course_lib.data import Dataset
from course_lib.data import identity as data_identity
from course_lib.deep_compression import (
    array_bits,
    deep_compression_bytes,
    huffman_bits,
    huffman_code_lengths,
    sparse_index_stream,
    stored_weight_stats,
)
from course_lib.measure import count_params
from course_lib.pruning import PruneConfig, fine_tune_pruned
from course_lib.quantization import fixed_quantizer_names
from course_lib.report import Result
from course_lib.tflite import convert
from course_lib.training import (
    CachedModel,
    TrainConfig,
    cached_model,
    compile_model,
    copy_model,
    fit,
    load_entry,
    train_in_workers,
)
from course_lib.variants import measure_tflite, tflite_correct

__all__ = [
    "STAGES",
    "PipelineOutcome",
    "Stage",
    "array_bits",
    "deep_compression_bytes",
    "huffman_bits",
    "huffman_code_lengths",
    "pipeline_name",
    "run_pipeline",
    "seed_repeats",
    "sparse_index_stream",
    "stored_weight_stats",
    "train_pipeline",
    "validate_pipeline",
]

STAGES = ("prune", "cluster", "ptq", "qat", "pqat", "cqat", "pcqat")
"""Stage names a pipeline may use."""
QUANT_STAGES = ("ptq", "qat", "pqat", "cqat", "pcqat")


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline and its settings.

    Attributes:
        name: one of ``STAGES``.
        sparsity: for ``prune``: one target in (0, 1), or ``{layer: target}``.
        clusters: for ``cluster``: number of distinct values per layer (an integer >= 2).
        epochs, learning_rate, batch_size: fine-tuning of this stage (``ptq`` trains not).
        seed: seed of this stage's fine-tuning (shuffling order; part of the cache key);
            ``cluster`` and the QAT stages only (``prune`` trains with ``config.SEED``).
    """

    name: str
    sparsity: float | dict[str, float] | None = None
    clusters: int | None = None
    epochs: int = 1
    learning_rate: float = 1e-4
    batch_size: int = 32
    seed: int = config.SEED

    def settings(self) -> dict[str, Any]:
        """The settings that matter for this stage (cache key and Result record)."""
        if self.name == "ptq":
            return {"name": "ptq"}
        out: dict[str, Any] = {
            "name": self.name,
            "epochs": int(self.epochs),
            "learning_rate": float(self.learning_rate),
            "batch_size": int(self.batch_size),
        }
        if self.name != "prune":  # pruning.fine_tune_pruned always trains with config.SEED
            out["seed"] = int(self.seed)
        if self.name == "prune":
            sparsity = self.sparsity
            if sparsity is None:  # validate_pipeline refuses such a stage first
                raise TypeError(
                    "a 'prune' stage needs a sparsity, e.g. Stage('prune', sparsity=0.8)"
                )
            out["sparsity"] = (
                {k: float(v) for k, v in sparsity.items()}
                if isinstance(sparsity, dict)
                else float(sparsity)
            )
        if self.name == "cluster":
            if self.clusters is None:  # validate_pipeline refuses such a stage first
                raise TypeError(
                    "a 'cluster' stage needs clusters, e.g. Stage('cluster', clusters=16)"
                )
            out["clusters"] = int(self.clusters)
        return out

    def with_seed(self, seed: int) -> Stage:
        """The same stage with another fine-tuning seed."""
        return Stage(
            self.name,
            self.sparsity,
            self.clusters,
            self.epochs,
            self.learning_rate,
            self.batch_size,
            seed,
        )


def pipeline_name(stages: Sequence[Stage]) -> str:
    """``"prune>cluster>pcqat"`` for those three stages."""
    return ">".join(stage.name for stage in stages)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(float(value))
    )


def _check_settings(i: int, stage: Stage) -> None:
    where = f"stage {i} ({stage.name!r})"
    if stage.name == "prune":
        targets = stage.sparsity
        if targets is None:
            raise ValueError(
                f"{where} needs a sparsity: Stage('prune', sparsity=0.8) or "
                "Stage('prune', sparsity={'dense': 0.9})"
            )
        items = targets.items() if isinstance(targets, dict) else [("sparsity", targets)]
        if isinstance(targets, dict) and not targets:
            raise ValueError(f"{where}: the sparsity dict names no layer")
        for layer, target in items:
            if not _is_number(target) or not 0 < float(target) < 1:
                raise ValueError(
                    f"{where}: sparsity of {layer!r} must be a number in (0, 1) "
                    f"(a fraction of weights set to zero), got {target!r}"
                )
    if stage.name == "cluster":
        k = stage.clusters
        if isinstance(k, bool | np.bool_) or not isinstance(k, numbers.Integral) or k < 2:
            raise ValueError(
                f"{where} needs clusters, an integer >= 2 (e.g. Stage('cluster', clusters=16)),"
                f" got {k!r}"
            )
    if stage.name in ("prune", "ptq") and stage.seed != config.SEED:
        raise ValueError(f"{where} takes no seed: only clustering and QAT stages are re-seeded")
    if stage.name != "ptq":
        for field_name in ("epochs", "batch_size"):
            value = getattr(stage, field_name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{where}: {field_name} must be an integer >= 1, got {value!r}")
        if not _is_number(stage.learning_rate) or not stage.learning_rate > 0:
            raise ValueError(
                f"{where}: learning_rate must be a number > 0, got {stage.learning_rate!r}"
            )


def validate_pipeline(stages: Sequence[Stage]) -> None:
    """Check that the stages exist, have usable settings, and come in an order that works.

    Settings: ``prune`` needs a sparsity in (0, 1) (or a dict of them), ``cluster`` an
    integer number of clusters >= 2 (NumPy integers too, not bools); training stages need
    integer ``epochs`` and ``batch_size`` >= 1 and a learning rate > 0.

    Order: quantization (``ptq``, ``qat``, ``pqat``, ``cqat``, ``pcqat``) comes last and
    once; pruning comes before clustering; each stage at most once; ``pqat`` needs pruning
    before it, ``cqat`` clustering, ``pcqat`` both; plain ``qat`` or ``cqat`` after pruning
    would let pruned weights grow back, so the pipeline must use ``pqat`` / ``pcqat``.

    Example::

        validate_pipeline([Stage("prune", sparsity=0.9), Stage("cluster", clusters=16),
                           Stage("pcqat")])

    Raises:
        ValueError: the first broken rule, in words.
    """
    if isinstance(stages, str | bytes):
        raise ValueError(
            f"a pipeline is a list of Stage objects, not the string {stages!r}: write e.g. "
            "[Stage('prune', sparsity=0.8), Stage('ptq')]"
        )
    if not stages:
        raise ValueError("a pipeline needs at least one stage")
    for i, stage in enumerate(stages):
        if not isinstance(stage, Stage):
            raise ValueError(
                f"stage {i} is {stage!r} ({type(stage).__name__}), not a Stage: write "
                f"Stage({stage!r}, ...) with its settings"
            )
    names = [stage.name for stage in stages]
    for name in names:
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}; known stages: {', '.join(STAGES)}")
    for i, stage in enumerate(stages):
        _check_settings(i, stage)
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
    """QAT wrappers: ``quantize_annotate_model`` + ``quantize_apply`` with the preserving
    scheme of ``stage`` (Shown in 04_combined)."""
    q = tfmot.quantization.keras
    model = copy_model(model)
    if stage == "qat":
        return fixed_quantizer_names(q.quantize_model(model))
    combine = tfmot.experimental.combine
    scheme = {
        "pqat": lambda: combine.Default8BitPrunePreserveQuantizeScheme(),
        "cqat": lambda: combine.Default8BitClusterPreserveQuantizeScheme(),
        "pcqat": lambda: combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True),
    }[stage]()
    return fixed_quantizer_names(q.quantize_apply(q.quantize_annotate_model(model), scheme))


def _train_config(stage: Stage) -> TrainConfig:
    return TrainConfig(stage.epochs, stage.batch_size, stage.learning_rate, stage.seed)


def _cluster(model: keras.Model, stage: Stage, data: Dataset, preserve_sparsity: bool):
    """``cluster_weights`` (k-means++ centroids), fine-tune, ``strip_clustering``
    (Shown in 04_combined)."""
    api = tfmot.clustering.keras
    wrapped = api.cluster_weights(
        copy_model(model),  # cluster_weights modifies the layers it wraps
        number_of_clusters=stage.clusters,
        cluster_centroids_init=api.CentroidInitialization.KMEANS_PLUS_PLUS,
        preserve_sparsity=preserve_sparsity,
    )
    compile_model(wrapped, stage.learning_rate)
    history = fit(wrapped, data, _train_config(stage), validate=False)
    stripped = api.strip_clustering(wrapped)
    return compile_model(stripped, stage.learning_rate), {"history": history}


def _run_stage(
    previous: keras.Model, stage: Stage, prior: Sequence[Stage], data: Dataset
) -> tuple[keras.Model, dict[str, Any]]:
    start = time.perf_counter()
    if stage.name == "prune":
        if stage.sparsity is None:  # validate_pipeline refuses such a stage first
            raise ValueError("a 'prune' stage needs a sparsity, e.g. Stage('prune', sparsity=0.8)")
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
        meta = {"history": fit(model, data, _train_config(stage), validate=False)}
    meta["train_seconds"] = time.perf_counter() - start
    return model, meta


@dataclass
class PipelineOutcome:
    """What :func:`run_pipeline` returns: the Result, the final model and every stage."""

    result: Result
    model: keras.Model
    tflite_bytes: bytes
    stages: list[CachedModel] = field(default_factory=list)


def train_pipeline(
    base: CachedModel, stages: Sequence[Stage], data: Dataset, *, model_name: str
) -> tuple[keras.Model, list[CachedModel]]:
    """Run the training stages in order from ``base``, each cached under its chain.

    Shown in 04_combined (the reference cells do the same with tfmot directly). A stage's
    cache key holds the base model's file, every stage before it with its settings (seed
    included) and the data's identity, so pipelines with a common beginning share it.

    Returns:
        ``(model, entries)``: the last trained model (``ptq`` is not a training stage) and
        one :class:`CachedModel` per training stage.

    Raises:
        ValueError: see :func:`validate_pipeline`.
    """
    validate_pipeline(stages)
    model, entries = base.model, []
    chain: list[str | dict[str, Any]] = [base.path.stem]  # base file, then each stage's settings
    for i, stage in enumerate(stages):
        if stage.name == "ptq":
            break
        chain.append(stage.settings())
        prior = stages[:i]
        previous = model
        rebuild = partial(_quantize, previous, stage.name) if stage.name in QUANT_STAGES else None
        entry = cached_model(
            f"{model_name}-{pipeline_name(stages[: i + 1])}",
            {"chain": list(chain), **data_identity(data)},
            partial(_run_stage, previous, stage, prior, data),
            custom_objects_scope=None,
            rebuild=rebuild,
        )
        entries.append(entry)
        model = entry.model
    return model, entries


def _train_chains(
    base_path: str, model_name: str, pipelines: Sequence[Sequence[Stage]], data: Dataset
) -> None:
    base = load_entry(base_path)
    for stages in pipelines:
        train_pipeline(base, stages, data, model_name=model_name)


def train_pipelines(
    bases: dict[str, CachedModel],
    pipelines: dict[str, Sequence[Sequence[Stage]]],
    data: Dataset,
    processes: int | None = None,
) -> list[int]:
    """Train every stage of many pipelines into the cache, in worker processes.

    Shown in 04_combined, before its loop of :func:`run_pipeline` calls, which then finds
    every stage cached and only converts and measures. The pipelines of one model that
    begin with the same stage share it, so they form one call of
    :func:`~course_lib.training.train_in_workers` (that stage is trained once, then the
    rest of each pipeline); the calls of the largest base models go first.

    Args:
        bases: each model's cached float32 baseline, by model name.
        pipelines: each model's pipelines (lists of :class:`Stage`), by model name.
        data: the training data, as given to :func:`run_pipeline`.
        processes: see :func:`~course_lib.training.train_in_workers`.

    Returns:
        What ``train_in_workers`` returns: the indices of the calls that trained something.

    Raises:
        ValueError: a model without a base, or see :func:`validate_pipeline`.
    """
    missing = sorted(set(pipelines) - set(bases))
    if missing:
        raise ValueError(f"no base model for {missing}; give one per model in `pipelines`")
    calls, sizes = [], []
    for name, chains in pipelines.items():
        groups: dict[str, list[Sequence[Stage]]] = {}
        for stages in chains:
            validate_pipeline(stages)
            first = json.dumps(stages[0].settings(), sort_keys=True)  # a dict is no key
            groups.setdefault(first, []).append(stages)
        for group in groups.values():
            calls.append(partial(_train_chains, str(bases[name].path), name, group))
            sizes.append(count_params(bases[name].model))
    order = sorted(range(len(calls)), key=lambda i: -sizes[i])  # stable: ties keep their order
    return train_in_workers([calls[i] for i in order], data, processes)


def _convert_last(model: keras.Model, stages: Sequence[Stage], data: Dataset) -> bytes:
    last = stages[-1].name
    kind = "int8" if last in QUANT_STAGES else "float32"
    calibration = data.x_train if last == "ptq" else None
    return convert(model, kind, representative_data=calibration, cache=True)


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

    Shown in 04_combined: its reference cells run prune -> cluster -> PCQAT -> int8 with
    tfmot and the converter directly; this helper does the same for any valid pipeline.
    Every training stage is cached under the chain of stages that led to it
    (:func:`train_pipeline`). The last stage decides the conversion: ``ptq`` converts to
    int8 with calibration data, a QAT stage to int8 from the learned ranges; a pipeline
    without quantization converts to float32.

    Example::

        stages = [Stage("prune", sparsity=0.9), Stage("cluster", clusters=16), Stage("pcqat")]
        outcome = run_pipeline(base, stages, data, model_name="seed_cnn", baseline="float")

    Returns:
        A :class:`PipelineOutcome`; its Result has ``technique="combined"`` and the fields
        ``pipeline``, ``huffman_bytes``, ``stages`` and ``stored_weights`` (zeros and
        distinct values counted in the .tflite's own weight buffers).

    Raises:
        ValueError: see :func:`validate_pipeline`.
    """
    model, entries = train_pipeline(base, stages, data, model_name=model_name)
    content = _convert_last(model, stages, data)
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


def seed_repeats(
    base: CachedModel,
    stages: Sequence[Stage],
    data: Dataset,
    seeds: Sequence[int],
    *,
    model_name: str,
) -> list[float]:
    """Repeat only the last stage of a pipeline with each seed; return int8 test accuracies.

    Introduced in 04_combined. The earlier stages come from the cache (they are the same
    for every seed), so a repeat costs one fine-tune, one conversion and one evaluation.
    The seed is part of the last stage's cache key. Accuracy is measured on
    ``data.x_test`` by LiteRT, one image per ``invoke()``, as in :func:`run_pipeline`.
    :func:`seed_repeats_correct` gives the answers per test image instead.

    Raises:
        ValueError: no seeds, a last stage that does not train (``ptq``), or see
            :func:`validate_pipeline`.
    """
    correct = seed_repeats_correct(base, stages, data, seeds, model_name=model_name)
    return [float(np.mean(c)) for c in correct]


def seed_repeats_correct(
    base: CachedModel,
    stages: Sequence[Stage],
    data: Dataset,
    seeds: Sequence[int],
    *,
    model_name: str,
) -> list[np.ndarray]:
    """As :func:`seed_repeats`, but per seed the right/wrong of each test image.

    Shown in 04_combined: the arrays of two pipelines go to
    :func:`course_lib.stats.seed_comparison`, which then also asks McNemar's test whether
    the test images separate each seed's two models.

    Raises:
        ValueError: as :func:`seed_repeats`.
    """
    if not seeds:
        raise ValueError("give at least one seed")
    if stages[-1].name in ("ptq", "prune"):
        raise ValueError(f"the last stage {stages[-1].name!r} has no seed to repeat")
    correct = []
    for seed in seeds:
        run = [*stages[:-1], stages[-1].with_seed(int(seed))]
        model, _ = train_pipeline(base, run, data, model_name=model_name)
        correct.append(tflite_correct(_convert_last(model, run, data), data))
    return correct
