"""Weight pruning: magnitude masks in NumPy, tfmot schedules you can check, and a one-call
"prune, fine-tune, strip, convert, measure".

Introduced in 02_pruning.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from course_lib import config
from course_lib.compat import keras, tfmot
from course_lib.data import Dataset
from course_lib.data import identity as data_identity
from course_lib.measure import overall_sparsity, sparsity_report
from course_lib.report import Result
from course_lib.training import CachedModel, TrainConfig, cached_model, compile_model, fit
from course_lib.variants import convert_and_measure, keras_predictions

sparsity_api = tfmot.sparsity.keras


def _check_sparsity(sparsity: float, name: str = "sparsity") -> None:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)):
        raise ValueError(f"{name} must be a number in [0, 1), got {sparsity!r}")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {sparsity} (1 would remove everything)")


def magnitude_mask(weights: np.ndarray, sparsity: float) -> np.ndarray:
    """Return a boolean mask that keeps the largest-magnitude weights (True = keep).

    Exactly ``round(sparsity * weights.size)`` entries are dropped: those with the smallest
    absolute values (ties broken by position, so the count is exact).

    Raises:
        ValueError: ``sparsity`` outside [0, 1), or an empty array.
    """
    _check_sparsity(sparsity)
    weights = np.asarray(weights)
    if weights.size == 0:
        raise ValueError("cannot prune an empty array")
    n_drop = int(round(sparsity * weights.size))
    order = np.argsort(np.abs(weights), axis=None, kind="stable")
    mask = np.ones(weights.size, dtype=bool)
    mask[order[:n_drop]] = False
    return mask.reshape(weights.shape)


def m_by_n_violations(kernel: np.ndarray, m: int = 2, n: int = 4) -> int:
    """Count the blocks of ``n`` consecutive input weights holding fewer than ``m`` zeros.

    tfmot's ``sparsity_m_by_n=(m, n)`` asks for at least ``m`` zeros in every ``n``
    consecutive weights along the input dimension (as TFLite stores them: the last axis of
    a ``(out, ..., in)`` kernel). For 2:4 that is: at most 2 non-zeros in every 4. Blocks at
    the end of a row are padded with zeros, as tfmot does. 0 means the pattern holds.

    Args:
        kernel: a Dense ``(in, out)`` or Conv2D ``(h, w, in, out)`` kernel.
        m: required zeros per block.
        n: block length.

    Raises:
        ValueError: ``m > n``, ``n < 1``, ``m < 0``, or a kernel of another rank.
    """
    if n < 1 or m < 0 or m > n:
        raise ValueError(f"need 0 <= m <= n and n >= 1, got m={m}, n={n}")
    kernel = np.asarray(kernel)
    if kernel.ndim == 2:
        rows = kernel.T  # (out, in)
    elif kernel.ndim == 4:
        rows = np.transpose(kernel, (3, 0, 1, 2)).reshape(-1, kernel.shape[2])
    else:
        raise ValueError(f"expected a rank-2 or rank-4 kernel, got shape {kernel.shape}")
    pad = (-rows.shape[1]) % n
    blocks = np.pad(rows, ((0, 0), (0, pad))).reshape(rows.shape[0], -1, n)
    zeros = np.sum(blocks == 0, axis=-1)
    return int(np.sum(zeros < m))


@dataclass(frozen=True)
class ScheduleCheck:
    """What a pruning schedule will do within a given number of training steps."""

    total_steps: int
    pruning_steps: list[int]
    final_sparsity: float
    target_sparsity: float

    @property
    def prunes(self) -> bool:
        """True if at least one mask update with a non-zero sparsity happens."""
        return bool(self.pruning_steps) and self.final_sparsity > 0

    @property
    def reaches_target(self) -> bool:
        """True if the last mask update applies the schedule's target sparsity."""
        return self.prunes and math.isclose(self.final_sparsity, self.target_sparsity, abs_tol=1e-6)

    def __str__(self) -> str:
        if not self.prunes:
            return (
                f"This schedule never prunes in {self.total_steps} training steps: tfmot "
                "updates the masks only at steps s >= 1 with (s - begin_step) % frequency "
                "== 0 (and s <= end_step). Lower `frequency` or `begin_step`, or train longer."
            )
        first, last = self.pruning_steps[0], self.pruning_steps[-1]
        text = (
            f"{len(self.pruning_steps)} mask updates between steps {first} and {last} of "
            f"{self.total_steps}; the last one applies {100 * self.final_sparsity:.1f} % sparsity"
        )
        if not self.reaches_target:
            text += f", short of the target {100 * self.target_sparsity:.1f} %"
        return text + "."


def _target_of(schedule: Any) -> float:
    for attr in ("final_sparsity", "target_sparsity"):
        if hasattr(schedule, attr):
            return float(getattr(schedule, attr))
    raise ValueError(f"unsupported schedule {type(schedule).__name__}")


def check_schedule(schedule: Any, total_steps: int) -> ScheduleCheck:
    """Work out at which steps a tfmot schedule updates the masks, and to what sparsity.

    tfmot's pruning step counter is 1 on the first training batch; a mask update happens
    at step ``s`` when ``begin_step <= s <= end_step`` (or ``end_step == -1``) and
    ``(s - begin_step) % frequency == 0``. ``ConstantSparsity(0.8, begin_step=0)`` with the
    default ``frequency=100`` therefore prunes nothing in a run of fewer than 100 steps.

    Shown in 02_pruning: the reference cell "Prune while training" lists the update steps
    with the same rule in one line of Python.

    Args:
        schedule: ``ConstantSparsity`` or ``PolynomialDecay``.
        total_steps: number of training batches the schedule will see.

    Raises:
        ValueError: ``total_steps`` < 1 or an unsupported schedule.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    target = _target_of(schedule)
    begin, end, freq = schedule.begin_step, schedule.end_step, schedule.frequency
    last = total_steps if end < 0 else min(end, total_steps)
    steps = [s for s in range(max(begin, 1), last + 1) if (s - begin) % freq == 0]
    final = float(schedule(np.int64(steps[-1]))[1].numpy()) if steps else 0.0
    return ScheduleCheck(total_steps, steps, round(final, 6), target)


def require_pruning(schedule: Any, total_steps: int) -> ScheduleCheck:
    """Like :func:`check_schedule`, but raise if the schedule would never prune.

    Raises:
        ValueError: no mask update happens within ``total_steps`` (the message says why).
    """
    check = check_schedule(schedule, total_steps)
    if not check.prunes:
        raise ValueError(str(check))
    return check


def polynomial_schedule(
    target: float, total_steps: int, end_fraction: float = 0.6, updates: int = 20
) -> Any:
    """Return a ``PolynomialDecay`` from 0 to ``target`` that surely reaches it.

    The ramp ends at about ``end_fraction`` of training, on a mask-update step, leaving the
    rest of training to recover accuracy at the final sparsity. ``frequency`` is chosen to
    give about ``updates`` mask updates (at most every 100 steps, as tfmot's default).

    Shown in 02_pruning (its reference cell builds the same ``PolynomialDecay`` by hand).

    Raises:
        ValueError: target outside [0, 1), ``total_steps`` < 2, or ``end_fraction`` not in
            (0, 1].
    """
    _check_sparsity(target, "target")
    if total_steps < 2 or not 0 < end_fraction <= 1:
        raise ValueError(
            f"need total_steps >= 2 and 0 < end_fraction <= 1, got {total_steps}, {end_fraction}"
        )
    ramp = max(1, int(end_fraction * total_steps))
    frequency = max(1, min(100, ramp // updates))
    end_step = max(frequency, ramp // frequency * frequency)
    return sparsity_api.PolynomialDecay(0.0, target, 0, end_step, frequency=frequency)


@dataclass(frozen=True)
class PruneConfig:
    """How to prune and fine-tune.

    Attributes:
        sparsity: one target for every prunable layer, or ``{layer_name: target}`` (layers
            not named stay dense).
        epochs, batch_size, learning_rate: fine-tuning settings.
        m_by_n: structured sparsity, e.g. ``(2, 4)``; ``sparsity`` is then ignored.
        xnnpack_policy: use ``PruneForLatencyOnXNNPack`` (prunes only 1x1 convolutions).
        end_fraction: fraction of fine-tuning spent ramping up the sparsity.
        seed: seeds the fine-tuning's shuffling (part of the cache key, so each seed of a
            repeated comparison is its own cached model).
    """

    sparsity: float | dict[str, float] = 0.9
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-3
    m_by_n: tuple[int, int] | None = None
    xnnpack_policy: bool = False
    end_fraction: float = 0.6
    seed: int = config.SEED

    def __post_init__(self) -> None:
        if isinstance(self.sparsity, dict) and not self.sparsity:
            raise ValueError("sparsity={} names no layer: give {layer_name: target} or a number")
        targets = self.sparsity.values() if isinstance(self.sparsity, dict) else [self.sparsity]
        for target in targets:
            _check_sparsity(target)
        if self.m_by_n is not None:
            m, n = self.m_by_n
            if not 0 < m < n:
                raise ValueError(f"m_by_n needs 0 < m < n, got {self.m_by_n}")


def _prunable(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, sparsity_api.PrunableLayer) or (
        type(layer)
        in (
            keras.layers.Conv2D,
            keras.layers.Dense,
            keras.layers.DepthwiseConv2D,
            keras.layers.SeparableConv2D,
        )
    )


def wrap_for_pruning(model: keras.Model, cfg: PruneConfig, total_steps: int) -> keras.Model:
    """Return a copy of ``model`` with tfmot pruning wrappers, weights copied.

    A single ``cfg.sparsity`` wraps the whole model with ``prune_low_magnitude``; a dict
    wraps only the named layers, through ``keras.models.clone_model(model,
    clone_function=...)``. Shown in 02_pruning (reference cells "Prune while training" and
    "Prune only the dense layer").

    Example::

        cfg = PruneConfig(sparsity={"conv": 0.5, "dense": 0.95})
        wrapped = wrap_for_pruning(model, cfg, total_steps=steps_per_epoch(data, 32) * 3)

    Raises:
        ValueError: no prunable layer (Conv2D, Dense...), a named layer that does not
            exist, or a schedule that would never prune in ``total_steps``.
    """
    if not any(_prunable(layer) for layer in model.layers):
        raise ValueError(
            f"model {model.name!r} has no layer that can be pruned (Conv2D, Dense, ...)"
        )
    params: dict[str, Any] = {}
    if cfg.m_by_n is not None:
        params["sparsity_m_by_n"] = cfg.m_by_n
    if cfg.xnnpack_policy:
        params["pruning_policy"] = sparsity_api.PruneForLatencyOnXNNPack()
    targets = cfg.sparsity if isinstance(cfg.sparsity, dict) else None
    if targets:
        unknown = set(targets) - {layer.name for layer in model.layers}
        if unknown:
            raise ValueError(f"no layers named {sorted(unknown)} in model {model.name!r}")
    # One schedule per named layer, or one ("*") for the whole model.
    per_layer = cfg.sparsity if isinstance(cfg.sparsity, dict) else {"*": cfg.sparsity}
    schedules = {}
    for name, target in per_layer.items():
        schedules[name] = polynomial_schedule(max(target, 1e-6), total_steps, cfg.end_fraction)
        if cfg.m_by_n is None and target > 0:
            require_pruning(schedules[name], total_steps)

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if targets is None:
            return fresh
        if targets.get(layer.name, 0) > 0:
            return sparsity_api.prune_low_magnitude(
                fresh, pruning_schedule=schedules[layer.name], **params
            )
        return fresh

    copy = keras.models.clone_model(model, clone_function=clone)
    for new, old in zip(copy.layers, model.layers, strict=True):
        getattr(new, "layer", new).set_weights(old.get_weights())
    if targets is None:
        copy = sparsity_api.prune_low_magnitude(copy, pruning_schedule=schedules["*"], **params)
    return copy


def fine_tune_pruned(
    model: keras.Model, data: Dataset, cfg: PruneConfig, verbose: int = 0
) -> tuple[keras.Model, dict[str, Any]]:
    """Prune ``model`` while fine-tuning it on ``data``; return the stripped model and meta.

    The returned model is a plain Keras model (``strip_pruning``) whose zeros are real zeros.
    ``meta`` records the history, the number of steps and the wall-clock time. It trains
    with the ``UpdatePruningStep`` callback, seeded by ``cfg.seed``. Shown in 02_pruning
    (reference cell "Prune while training").
    """
    steps = cfg.epochs * steps_per_epoch(data, cfg.batch_size)
    wrapped = compile_model(wrap_for_pruning(model, cfg, steps), cfg.learning_rate)
    start = time.perf_counter()
    history = fit(
        wrapped,
        data,
        TrainConfig(cfg.epochs, cfg.batch_size, cfg.learning_rate, seed=cfg.seed),
        callbacks=[sparsity_api.UpdatePruningStep()],
        verbose=verbose,
        validate=False,  # nothing reads a fine-tune's validation curve
    )
    stripped = sparsity_api.strip_pruning(wrapped)
    compile_model(stripped, cfg.learning_rate)
    return stripped, {
        "history": history,
        "train_seconds": time.perf_counter() - start,
        "steps": steps,
    }


def pruned_model(
    base: CachedModel, variant: str, data: Dataset, cfg: PruneConfig, *, model_name: str
) -> CachedModel:
    """Return the pruned, fine-tuned, stripped model, from the cache or made now.

    The cache key holds the base model, the data identity and every field of ``cfg`` (the
    seed too), so repeating a comparison with other seeds caches each run apart.
    :func:`prune_and_measure` calls it; use it alone when only the Keras model is needed
    (e.g. seed repeats measured on the test images). Shown in 02_pruning.

    Returns:
        A :class:`~course_lib.training.CachedModel` (``meta`` holds ``train_seconds``).
    """
    key = {"base": base.path.stem, **data_identity(data), **asdict(cfg)}
    return cached_model(
        f"{model_name}-{variant}", key, lambda: fine_tune_pruned(base.model, data, cfg)
    )


def prune_and_measure(
    base: CachedModel,
    variant: str,
    data: Dataset,
    cfg: PruneConfig,
    *,
    model_name: str,
    baseline: str,
    sparse_format: bool = False,
    folder: str = "02_pruning",
) -> tuple[Result, keras.Model]:
    """Prune, fine-tune, strip, convert, measure, in one call; cached like every model.

    Does in one call what the reference cells of 02_pruning show step by step
    (``prune_low_magnitude`` with a ``PolynomialDecay``, ``UpdatePruningStep``,
    ``strip_pruning``, conversion, gzip). Shown in 02_pruning.

    Args:
        base: the trained model to start from (e.g. ``training.train_baseline()``).
        variant: the Result's name.
        data: training data for fine-tuning and the test set for measuring.
        cfg: the pruning settings.
        model_name, baseline, folder: copied into the Result / used for the .tflite path.
        sparse_format: convert with ``EXPERIMENTAL_SPARSITY`` (sparse weight storage).

    Returns:
        The Result (``technique="pruning"``, plus ``sparsity`` = measured kernel sparsity,
        ``target_sparsity`` and fine-tuning details) and the stripped Keras model.
    """
    entry = pruned_model(base, variant, data, cfg, model_name=model_name)
    model = entry.model
    per_layer = {r.layer: round(r.sparsity, 4) for r in sparsity_report(model, kernels_only=True)}
    result = convert_and_measure(
        model,
        variant,
        data,
        model_name=model_name,
        technique="pruning",
        baseline=baseline,
        sparse_format=sparse_format,
        folder=folder,
        sparsity=round(overall_sparsity(model), 4),
        target_sparsity=cfg.sparsity,
        layer_sparsity=per_layer,
        m_by_n=list(cfg.m_by_n) if cfg.m_by_n else None,
        fine_tune_epochs=cfg.epochs,
        fine_tune_seconds=round(entry.meta.get("train_seconds", 0.0), 1),
        seed=cfg.seed,
    )
    return result, model


def layer_sensitivity(
    model: keras.Model,
    layer_names: list[str],
    sparsities: list[float],
    x: np.ndarray,
    y: np.ndarray,
) -> dict[str, list[float]]:
    """Prune ONE layer at a time (magnitude, no fine-tuning) and record the accuracy.

    The model's weights are restored afterwards.

    Returns:
        ``{layer_name: [accuracy at each sparsity]}``.

    Raises:
        ValueError: an unknown layer, a layer without a kernel, or a bad sparsity.
    """
    for s in sparsities:
        _check_sparsity(s)
    curves: dict[str, list[float]] = {}
    for name in layer_names:
        layer = model.get_layer(name)
        if getattr(layer, "kernel", None) is None:
            raise ValueError(f"layer {name!r} has no kernel to prune")
        original = layer.get_weights()
        curves[name] = []
        try:
            for s in sparsities:
                kernel = original[0] * magnitude_mask(original[0], s)
                layer.set_weights([kernel, *original[1:]])
                predictions = keras_predictions(model, x)  # remembered by weights and images
                curves[name].append(float(np.mean(predictions == y)))
        finally:
            layer.set_weights(original)
    return curves


def per_layer_for_total(
    model: keras.Model, fixed: dict[str, float], free: str, total: float
) -> dict[str, float]:
    """Choose the sparsity of layer ``free`` so all kernels together reach ``total``.

    Example: keep the fragile conv at 50 % and give the dense layer whatever makes the
    whole model 95 % sparse: ``per_layer_for_total(model, {"conv": 0.5}, "dense", 0.95)``.

    Returns:
        ``{**fixed, free: sparsity}``, ready for ``PruneConfig(sparsity=...)``.

    Raises:
        ValueError: unknown layers, bad sparsities, or a total the free layer cannot reach.
    """
    _check_sparsity(total, "total")
    sizes = {r.layer: r.size for r in sparsity_report(model, kernels_only=True)}
    unknown = (set(fixed) | {free}) - set(sizes)
    if unknown:
        raise ValueError(f"no prunable kernels named {sorted(unknown)}; have {sorted(sizes)}")
    for s in fixed.values():
        _check_sparsity(s)
    others = {name: fixed.get(name, 0.0) for name in sizes if name != free}
    zeros_needed = total * sum(sizes.values()) - sum(others[n] * sizes[n] for n in others)
    needed = zeros_needed / sizes[free]
    if not 0 <= needed < 1:
        raise ValueError(
            f"layer {free!r} would need sparsity {needed:.4f} to reach {total}; not possible"
        )
    return {**fixed, free: round(needed, 6)}


def steps_per_epoch(data: Dataset, batch_size: int) -> int:
    """Training batches per epoch: ``ceil(len(x_train) / batch_size)``.

    Shown in 02_pruning (its reference cell computes the step count the same way).
    """
    return math.ceil(len(data.x_train) / batch_size)


def default_epochs() -> int:
    """Fine-tuning epochs for pruning: 3 in full mode, 2 in fast mode."""
    return config.pick(full=3, fast=2)
