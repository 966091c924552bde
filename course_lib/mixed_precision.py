"""Mixed-precision training: number formats, a safe policy switch, gradients under float16,
and throughput measured per policy.

Introduced in 06_mixed_precision, whose reference cells show ``set_global_policy``, the
dtypes and ``LossScaleOptimizer`` in plain tf_keras. A Keras *policy* sets two dtypes per
layer: the *variable* dtype (weights stay float32 in every policy) and the *compute* dtype
(float16 or bfloat16 under ``mixed_float16`` / ``mixed_bfloat16``). The number formats and
float16 gradients are in :mod:`course_lib.float16`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from course_lib import config, system
from course_lib.compat import keras, set_seeds, tf
from course_lib.data import Dataset
from course_lib.data import identity as data_identity
from course_lib.models import build_model, with_softmax
from course_lib.report import Result
from course_lib.training import CachedModel, TrainConfig, cached_model, compile_model, fit
from course_lib.variants import convert_and_measure, keras_predictions

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
"""The global policies this course compares."""


class MixedPrecisionWarning(UserWarning):
    """The requested policy will be emulated (slow) on this machine."""


def gpu_compute_capability() -> tuple[int, int] | None:
    """The first GPU's compute capability, e.g. ``(8, 0)``; None without a GPU."""
    for device in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(device).get("compute_capability")
        if capability:
            return tuple(capability)
    return None


def native_support(policy: str) -> tuple[bool, str]:
    """Say whether this machine computes in the policy's low-precision type natively.

    float16 runs fast on NVIDIA GPUs with Tensor Cores (compute capability 7.0 or higher) and
    on CPUs with AVX-512 FP16 or AMX-FP16; bfloat16 on GPUs from compute capability 8.0 and on
    CPUs with AVX-512 BF16 or AMX-BF16. Elsewhere TensorFlow emulates it, usually slower
    than float32.

    Returns:
        ``(native, reason)``.

    Raises:
        ValueError: unknown policy (the message lists the valid ones).
    """
    _check_policy(policy)
    if policy == "float32":
        return True, "float32 is native everywhere"
    capability = gpu_compute_capability()
    flags = system.cpu_flags()
    if policy == "mixed_float16":
        if capability and capability >= (7, 0):
            cc = f"{capability[0]}.{capability[1]}"
            return True, f"GPU with compute capability {cc} (Tensor Cores)"
        if {"avx512_fp16", "amx_fp16"} & flags:
            return True, (
                "the CPU has AVX-512 FP16 / AMX-FP16 instructions (whether TensorFlow's "
                "training kernels use them is measured below)"
            )
        where = (
            f"GPU compute capability {capability[0]}.{capability[1]} < 7.0"
            if capability
            else "no GPU, and the CPU lacks AVX-512 FP16 and AMX-FP16"
        )
        return False, f"float16 is emulated here ({where})"
    if capability and capability >= (8, 0):
        return True, f"GPU with compute capability {capability[0]}.{capability[1]}"
    if {"avx512_bf16", "amx_bf16"} & flags:
        return True, "CPU with " + " and ".join(
            name
            for name, flag in (("AVX-512 BF16", "avx512_bf16"), ("AMX-BF16", "amx_bf16"))
            if flag in flags
        )
    return False, "bfloat16 is emulated here (no AVX-512 BF16 / AMX-BF16 CPU, no GPU >= 8.0)"


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}")


@contextlib.contextmanager
def policy_scope(policy: str, warn: bool = True) -> Iterator[keras.mixed_precision.Policy]:
    """Set Keras' global dtype policy for a block and ALWAYS restore the previous one.

    Shown in 06_mixed_precision as ``set_global_policy`` in a ``try`` / ``finally``. Usage::

        with policy_scope("mixed_bfloat16"):
            model = build_model("seed_cnn")  # computes in bfloat16, variables float32

    Models built inside the block use the policy; the previous policy comes back even when
    the block raises, so a notebook that fails half-way does not leave later cells in mixed
    precision.

    Warns (:class:`MixedPrecisionWarning`, no error) when the policy will be emulated here.

    Raises:
        ValueError: unknown policy (the message lists the valid ones).
    """
    _check_policy(policy)
    if warn:
        native, reason = native_support(policy)
        if not native:
            warnings.warn(
                f"{policy} will run, but slowly: {reason}", MixedPrecisionWarning, stacklevel=3
            )
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield keras.mixed_precision.global_policy()
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_for_policy(model_name: str, policy: str) -> keras.Model:
    """Build a model under ``policy`` with its final softmax kept in float32.

    Shown in 06_mixed_precision: its reference cell builds the seed CNN under
    ``set_global_policy`` with an ``Activation("softmax", dtype="float32")`` at the end.

    Under ``mixed_float16`` a float16 softmax can round small probabilities to 0 and the
    loss to inf; the usual fix, applied here, is a separate float32 softmax layer.
    """
    with policy_scope(policy, warn=False):
        logits = build_model(model_name, logits=True)
        return with_softmax(logits, dtype="float32")


def float32_copy(model_name: str, model: keras.Model) -> keras.Model:
    """The same model built under float32, with the trained (float32) weights copied in.

    Variables are float32 under every policy, so this is exact; it is what gets converted
    and deployed.
    """
    copy = build_for_policy(model_name, "float32")
    copy.set_weights(model.get_weights())
    return copy


class ThroughputCallback(keras.callbacks.Callback):
    """Measure training images per second, leaving out the first ``warmup_steps`` batches.

    The first batches include graph tracing and memory allocation; they say nothing about
    the steady-state speed. Only the training steps themselves are timed (from each batch's
    start to its end), not validation or the work between epochs.
    """

    def __init__(self, batch_size: int, warmup_steps: int = 20) -> None:
        super().__init__()
        if warmup_steps < 0 or batch_size < 1:
            raise ValueError(
                f"need warmup_steps >= 0 and batch_size >= 1, got {warmup_steps}, {batch_size}"
            )
        self.batch_size, self.warmup_steps = batch_size, warmup_steps
        self.steps, self.seconds, self._batch_start = 0, 0.0, 0.0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Start the clock for this batch."""
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Count the batch; after the warm-up, add its duration."""
        if self.steps >= self.warmup_steps:
            self.seconds += time.perf_counter() - self._batch_start
        self.steps += 1

    @property
    def timed_steps(self) -> int:
        """Batches that were timed (all after the warm-up)."""
        return max(0, self.steps - self.warmup_steps)

    @property
    def images_per_second(self) -> float:
        """Training throughput; raises if no batch after the warm-up was timed.

        Raises:
            ValueError: training was shorter than the warm-up.
        """
        if self.timed_steps == 0 or self.seconds <= 0:
            raise ValueError(f"no batch after the {self.warmup_steps} warm-up steps was timed")
        return self.timed_steps * self.batch_size / self.seconds


def device_name() -> str:
    """The GPU TensorFlow trains on, or the CPU model when there is none."""
    gpus = system.gpu_names()
    return gpus[0] if gpus else system.cpu_name()


def train_with_policy(
    model_name: str, policy: str, data: Dataset, cfg: TrainConfig, warmup_steps: int = 20
) -> CachedModel:
    """Train a fresh model under ``policy``; record throughput and (on a GPU) peak memory.

    Cached per model, policy, data size, settings AND device, so a GPU run never reuses a
    CPU measurement.
    """

    def create() -> tuple[keras.Model, dict[str, Any]]:
        set_seeds(cfg.seed)
        model = compile_model(build_for_policy(model_name, policy), cfg.learning_rate)
        meter = ThroughputCallback(cfg.batch_size, warmup_steps)
        gpu = bool(tf.config.list_physical_devices("GPU"))
        if gpu:
            tf.config.experimental.reset_memory_stats("GPU:0")
        start = time.perf_counter()
        with policy_scope(policy, warn=False):
            history = fit(model, data, cfg, callbacks=[meter])
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20 if gpu else None
        return model, {
            "history": history,
            "train_seconds": time.perf_counter() - start,
            "train_images_per_s": meter.images_per_second,
            "peak_memory_mb": peak,
        }

    key = {
        "model": model_name,
        "policy": policy,
        "device": device_name(),
        **data_identity(data),
        "warmup_steps": warmup_steps,
        **cfg.as_dict(),
    }
    return cached_model(f"{model_name}-{policy}", key, create)


def measure_policy(
    model_name: str,
    policy: str,
    trained: CachedModel,
    data: Dataset,
    cfg: TrainConfig,
    folder: str = "06_mixed_precision",
) -> Result:
    """Measure a model trained under ``policy`` as deployed: a float32 .tflite via LiteRT.

    The Result adds ``policy``, ``train_images_per_s``, ``device``, the Keras accuracy in the
    training policy, the training time and (on a GPU) the peak memory.
    """
    keras_top1 = keras_predictions(trained.model, data.x_test)  # remembered: seconds in float16
    return convert_and_measure(
        float32_copy(model_name, trained.model),
        f"{model_name}_{policy}",
        data,
        model_name=model_name,
        technique="mixed_precision",
        baseline=None if policy == "float32" else f"{model_name}_float32",
        folder=folder,
        policy=policy,
        train_images_per_s=round(trained.meta["train_images_per_s"], 1),
        device=device_name(),
        keras_accuracy=round(float(np.mean(keras_top1 == data.y_test)), 4),
        train_seconds=round(trained.meta["train_seconds"], 1),
        peak_memory_mb=trained.meta.get("peak_memory_mb"),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
    )


def benchmark_configs() -> dict[str, TrainConfig]:
    """Training settings of the benchmark: the seed CNN for 5 epochs, the wide CNN for 1
    (fast mode: 2 and 1), batch 128, Adam at 0.001."""
    return {
        "seed_cnn": TrainConfig(epochs=config.pick(full=5, fast=2), batch_size=128),
        "wide_cnn": TrainConfig(epochs=1, batch_size=128),
    }


SLOWDOWN_LIMIT = 10.0
"""A policy whose probe trains more than this many times slower than float32 is not trained
for the benchmark's full epochs: on such a machine it would take hours, and its slowness is
the finding. Its probe is reported instead (:func:`probe_throughput`)."""


def probe_throughput(
    model_name: str,
    policy: str,
    data: Dataset,
    batch_size: int = 32,
    steps: int = 5,
    warmup_steps: int = 2,
    decided_below: float | None = None,
) -> float:
    """Training images per second of a fresh model under ``policy``, over a few small batches.

    A quick look (seconds, not epochs) that decides whether a full training run under the
    policy is affordable on this machine. Small batches keep it quick even where a policy is
    emulated hundreds of times slower. The speed is that of the median batch: a float32
    batch of the seed CNN takes milliseconds, so one batch delayed by the machine (another
    process, a page fault) would otherwise make float32 look several times slower and let an
    emulated policy through to hours of training. Not cached: it is cheap, and it is about now.

    With ``decided_below`` (images/s), the probe stops as soon as more than half of the
    ``steps`` timed batches ran slower than that: the median of all of them would be slower
    too, whatever the other batches do. It then returns the median of the batches it timed.
    This spares a policy emulated hundreds of times slower its last batches (seconds each).

    Raises:
        ValueError: unknown policy, too few training images for the batches asked for, or
            ``decided_below`` not positive.
    """
    _check_policy(policy)
    needed = batch_size * (steps + warmup_steps)
    if len(data.x_train) < needed:
        raise ValueError(f"the probe needs {needed} training images, got {len(data.x_train)}")
    if decided_below is not None and not decided_below > 0:
        raise ValueError(f"decided_below must be a positive speed, got {decided_below!r}")
    set_seeds(config.SEED)
    model = compile_model(build_for_policy(model_name, policy))
    seconds: list[float] = []
    with policy_scope(policy, warn=False):
        for i in range(steps + warmup_steps):
            x = data.x_train[i * batch_size : (i + 1) * batch_size]
            y = data.y_train[i * batch_size : (i + 1) * batch_size]
            start = time.perf_counter()
            model.train_on_batch(x, y)
            if i < warmup_steps:  # the first batches trace the graph and allocate memory
                continue
            seconds.append(time.perf_counter() - start)
            if decided_below is not None:
                slow = sum(batch_size / s < decided_below for s in seconds)
                if slow > steps // 2:  # a majority of all `steps` batches: the median is slow
                    break
    return batch_size / float(np.median(seconds))


def affordable_policies(
    data: Dataset,
    model_names: tuple[str, ...] = ("seed_cnn", "wide_cnn"),
    policies: tuple[str, ...] = POLICIES,
    limit: float = SLOWDOWN_LIMIT,
) -> tuple[dict[str, tuple[str, ...]], list[dict[str, Any]]]:
    """Probe every policy against float32 and keep, per model, those within ``limit``.

    Returns:
        ``(kept, probes)``: the policies to train per model (float32 always first), and
        one record per probe: ``model``, ``policy``, ``images_per_s``, ``vs_float32``,
        ``trained`` (False when it was more than ``limit`` times slower).
    """
    kept: dict[str, tuple[str, ...]] = {}
    probes: list[dict[str, Any]] = []
    for name in model_names:
        base = probe_throughput(name, "float32", data)
        keep = ["float32"]
        for policy in policies:
            if policy == "float32":
                continue
            speed = probe_throughput(name, policy, data, decided_below=base / limit)
            trained = speed * limit >= base
            probes.append(
                {
                    "model": name,
                    "policy": policy,
                    "images_per_s": round(speed, 1),
                    "float32_images_per_s": round(base, 1),
                    "vs_float32": round(speed / base, 4),
                    "trained": trained,
                }
            )
            if trained:
                keep.append(policy)
        kept[name] = tuple(keep)
    return kept, probes


def benchmark(
    data: Dataset,
    model_names: tuple[str, ...] = ("seed_cnn", "wide_cnn"),
    policies: tuple[str, ...] | dict[str, tuple[str, ...]] = POLICIES,
    folder: str = "06_mixed_precision",
) -> list[Result]:
    """Train and measure every model under every policy (float32 first: it is the baseline).

    ``policies`` may map each model to its own policies (e.g. the ``kept`` of
    :func:`affordable_policies`, which leaves out policies too slow to train here).

    Raises:
        ValueError: an unknown policy or model without benchmark settings.
    """
    if isinstance(policies, dict):
        per_model = {name: policies.get(name, ("float32",)) for name in model_names}
    else:
        per_model = {name: tuple(policies) for name in model_names}
    for chosen in per_model.values():
        for policy in chosen:
            _check_policy(policy)
    configs = benchmark_configs()
    unknown = [name for name in model_names if name not in configs]
    if unknown:
        raise ValueError(f"no benchmark settings for {unknown}; known: {', '.join(configs)}")
    results = []
    for name in model_names:
        cfg = configs[name]
        ordered = ("float32", *(p for p in per_model[name] if p != "float32"))
        for policy in ordered:
            trained = train_with_policy(
                name, policy, data, cfg, warmup_steps=config.pick(full=20, fast=5)
            )
            results.append(measure_policy(name, policy, trained, data, cfg, folder))
    return results


SEEDS = (config.SEED, 1, 2)
"""Seeds of the repeated runs (the first is the benchmark's own run, reused from the cache)."""


def deployed_correct(model_name: str, trained: CachedModel, data: Dataset) -> np.ndarray:
    """Per test image, whether the deployed float32 copy of a trained model is right.

    For paired comparisons (``stats.mcnemar``) of two policies on the same test images.
    """
    return keras_predictions(float32_copy(model_name, trained.model), data.x_test) == data.y_test


def seed_runs(
    data: Dataset,
    model_name: str = "seed_cnn",
    policies: tuple[str, ...] = ("float32", "mixed_bfloat16"),
    seeds: tuple[int, ...] = SEEDS,
) -> dict[str, dict[str, list[float]]]:
    """Train ``model_name`` under each policy once per seed, with the benchmark's settings.

    The seed is part of each run's cache key (via ``TrainConfig.seed``), so the benchmark's
    run is reused for its seed and later calls load every run from the cache.

    Returns:
        ``{policy: {"accuracy": [...], "images_per_s": [...]}}``, one value per seed, in
        ``seeds`` order: the deployed float32 copy's test accuracy and the training
        throughput.

    Raises:
        ValueError: an unknown policy or model without benchmark settings.
    """
    for policy in policies:
        _check_policy(policy)
    configs = benchmark_configs()
    if model_name not in configs:
        raise ValueError(f"no benchmark settings for {model_name!r}; known: {', '.join(configs)}")
    runs: dict[str, dict[str, list[float]]] = {}
    for policy in policies:
        runs[policy] = {"accuracy": [], "images_per_s": []}
        for seed in seeds:
            cfg = dataclasses.replace(configs[model_name], seed=seed)
            trained = train_with_policy(
                model_name, policy, data, cfg, warmup_steps=config.pick(full=20, fast=5)
            )
            correct = deployed_correct(model_name, trained, data)
            runs[policy]["accuracy"].append(float(np.mean(correct)))
            runs[policy]["images_per_s"].append(float(trained.meta["train_images_per_s"]))
    return runs
