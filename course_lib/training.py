"""Seeded training and a cache of trained models, written atomically.

Introduced in 01_baseline. Any notebook can run on its own: it asks the cache for the
baseline and trains it only when no matching model exists. A cache entry is keyed by a hash
of everything that determines the weights (model, dataset, mode, hyper-parameters,
TensorFlow version), and is written to a temporary file that is renamed into place, so an
interrupted run never leaves a half-written model for a later notebook to load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config
from course_lib.atomic import atomic_path, remove_stale_temps, write_json_atomic
from course_lib.compat import keras, set_seeds, tf
from course_lib.data import Dataset, load_dataset
from course_lib.data import identity as data_identity
from course_lib.models import build_model


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (the seed article's values by default)."""

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = config.SEED

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a dict (used in cache keys and results)."""
        return asdict(self)


def baseline_config() -> TrainConfig:
    """Return the baseline's training settings: the article's 10 epochs at batch 32 with
    Adam(1e-3) in full mode, 2 epochs in fast mode."""
    return TrainConfig(epochs=config.pick(full=10, fast=2))


def copy_model(model: keras.Model) -> keras.Model:
    """Return an independent copy of a model: same architecture and weights, not compiled.

    tfmot's ``cluster_weights`` wraps the layer objects of the model it is given and changes
    them, so give it a copy when the original must stay usable.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def compile_model(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    """Compile with Adam, sparse categorical cross-entropy and accuracy (as the article does).

    Returns the same model, for chaining.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


STEPS_PER_EXECUTION = 32
"""Training batches that :func:`fit` (and ``distillation.distill``) run per call into TensorFlow.

With the Keras default of one, ``model.fit`` returns to Python after every batch, which costs
about a millisecond per batch on a 2-core CPU; with 32, one compiled function loops over 32
batches: after the first epoch, epochs of the seed CNN ran 1.35 times faster, LeNet-300-100
1.5 and a pruning fine-tune 1.3. Each batch still does the same operations on the same data
in the same order, so the trained weights are bit-identical (checked for the plain models,
QAT, clustering, the PQAT/CQAT schemes, tfmot pruning and the Distiller). The catch: Keras
then calls per-batch callbacks (``on_train_batch_begin`` and friends) once per 32 batches,
so :func:`faster_steps` keeps one batch per call whenever a callback watches batches, such
as chapter 06's throughput meter. (tfmot 0.8's ``UpdatePruningStep`` does not: the wrappers
count pruning steps inside the compiled step.)
"""

MULTI_STEP_MIN_BATCHES = 500
"""The fewest training batches (all epochs) for which :func:`faster_steps` loops.

Tracing the looping train and validation functions costs up to about a second more than the
one-batch ones, which only pays off over some hundreds of batches: a full-mode epoch (1,719
batches of 32) gains, a fast-mode run (94 per epoch) would lose, so it keeps one per call.
"""

_BATCH_HOOKS = (
    "on_batch_begin",
    "on_batch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
)


def watches_batches(callback: keras.callbacks.Callback) -> bool:
    """Whether ``callback`` has its own per-batch hook (training or validation batches).

    True for chapter 06's ``ThroughputCallback`` (it times every batch) and for a
    ``LambdaCallback`` given a batch function; False for ``EarlyStopping``, ``History`` or
    tfmot's ``UpdatePruningStep``, whose hooks run per epoch or once per ``fit``.
    """
    base = keras.callbacks.Callback
    for hook in _BATCH_HOOKS:
        method = getattr(callback, hook)
        if getattr(method, "__func__", method) is not getattr(base, hook):
            return True
    return False


@contextlib.contextmanager
def faster_steps(
    model: keras.Model, batches: int, callbacks: Iterable[keras.callbacks.Callback] = ()
) -> Iterator[int]:
    """Within the block, ``model.fit`` runs :data:`STEPS_PER_EXECUTION` batches per call.

    Args:
        model: a compiled model.
        batches: how many training batches the ``fit`` runs in all (epochs x batches per
            epoch); under :data:`MULTI_STEP_MIN_BATCHES`, one batch per call is kept.
        callbacks: the callbacks the ``fit`` will get. If one of them watches batches
            (:func:`watches_batches`), one batch per call is used, whatever the model was
            compiled with, so that every batch reaches it.

    The model's own setting is restored afterwards (and is what a saved model records), so a
    model handed to a learner behaves as compiled.

    Yields:
        The number of batches per call used in the block.

    Raises:
        ValueError: the model is not compiled.
    """
    if model.optimizer is None:
        raise ValueError(f"model {model.name!r} is not compiled; call compile_model(model) first")
    watched = any(watches_batches(c) for c in callbacks)
    steps = 1 if watched or batches < MULTI_STEP_MIN_BATCHES else STEPS_PER_EXECUTION
    compiled_with = int(model.steps_per_execution.numpy())

    def use(value: int) -> None:
        model.steps_per_execution = value
        # Keras keeps the train/test functions it made for the previous setting; a one-batch
        # function driven with 32 would silently train on every 32nd batch only.
        model.make_train_function(force=True)
        model.make_test_function(force=True)

    use(steps)
    try:
        yield steps
    finally:
        use(compiled_with)


def fit(
    model: keras.Model,
    data: Dataset,
    cfg: TrainConfig,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    verbose: int = 0,
    validate: bool = True,
) -> dict[str, list[float]]:
    """Train a compiled model on ``data.x_train`` with validation on ``data.x_val``.

    The shuffling order is seeded from ``cfg.seed``, so the same model, data and config give
    the same weights on the same machine. Long runs go :data:`STEPS_PER_EXECUTION` batches
    per call into TensorFlow (see :func:`faster_steps`), one at a time when a callback
    watches batches: the weights are the same either way.

    ``validate=False`` skips the pass over ``data.x_val`` after every epoch. The weights are
    the same (validation only reads the model); the history then has no ``val_`` entries.
    The compression fine-tunes use it: nothing reads their validation curves, and the
    passes cost about 0.3-1 s per epoch on 2 cores, plus tracing, over dozens of fine-tunes.

    Returns:
        The Keras history (``loss``, ``accuracy``, and with ``validate`` ``val_loss``,
        ``val_accuracy``, per epoch).

    Raises:
        ValueError: the model is not compiled.
    """
    if model.optimizer is None:
        raise ValueError(f"model {model.name!r} is not compiled; call compile_model(model) first")
    callbacks = list(callbacks)
    batches = cfg.epochs * math.ceil(len(data.x_train) / cfg.batch_size)
    set_seeds(cfg.seed)
    with faster_steps(model, batches, callbacks):
        history = model.fit(
            data.x_train,
            data.y_train,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            validation_data=(data.x_val, data.y_val) if validate else None,
            shuffle=True,
            callbacks=callbacks,
            verbose=verbose,
        )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def _plain_number(value: Any) -> int | float:
    """JSON fallback for NumPy scalars in cache keys (``np.float32(0.5)`` keys like 0.5)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(str(value))  # np.float32(0.1) keys like 0.1, not 0.10000000149

    raise TypeError(f"cache key parts must be JSON-serialisable, got {type(value).__name__}")


def cache_key(**parts: Any) -> str:
    """Return a short, stable hash of JSON-serialisable key parts.

    The mode and TensorFlow version are always included, so a fast-mode model is never
    mistaken for a full-mode one and a TensorFlow upgrade retrains.

    Raises:
        TypeError: a part is not JSON-serialisable.
    """
    payload = {"mode": config.mode(), "tensorflow": tf.__version__, **parts}
    text = json.dumps(payload, sort_keys=True, default=_plain_number)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_model_atomic(model: keras.Model, path: str | Path) -> Path:
    """Save a model to ``path`` (``.keras``) via a temporary file and an atomic rename.

    Raises:
        ValueError: ``path`` does not end in ``.keras``.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"save models as .keras files, got {path.name!r}")
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path


class CacheMissError(LookupError):
    """Raised inside :func:`is_cached` when a call would have to train something."""


_PROBE = {"on": False}
"""While on (inside :func:`is_cached`), :func:`cached_model` neither loads nor trains."""

_WORKER_NOTE: dict[str, str] = {}
"""Set in the worker processes of :func:`train_in_workers`; recorded in every model's meta."""


@dataclass
class CachedModel:
    """A model from the cache: the model, where it lives, and what was recorded with it."""

    model: keras.Model
    path: Path
    from_cache: bool
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def history(self) -> dict[str, list[float]]:
        """Training history recorded when the model was made (empty if none)."""
        return self.meta.get("history", {})


def cached_model(
    name: str,
    key_parts: dict[str, Any],
    create: Callable[[], tuple[keras.Model, dict[str, Any]]],
    custom_objects_scope: Callable[[], contextlib.AbstractContextManager] | None = None,
    rebuild: Callable[[], keras.Model] | None = None,
) -> CachedModel:
    """Load a model from ``artifacts/<mode>/models`` or create, save and return it.

    Args:
        name: a readable prefix for the file name (e.g. ``"seed_cnn-mnist"``).
        key_parts: everything that determines the weights; hashed by :func:`cache_key`.
        create: builds and trains the model; returns ``(model, meta)`` where ``meta`` is a
            JSON-serialisable dict (history, timings) stored beside the model.
        custom_objects_scope: a context manager needed to load the model, e.g.
            ``tfmot.sparsity.keras.prune_scope`` for a model with pruning wrappers.
        rebuild: for models the ``.keras`` format cannot reload (tfmot's quantization-aware
            models): a function that builds the same, untrained architecture. Only the
            weights are cached then (legacy ``.h5``), and loaded into ``rebuild()``.

    Returns:
        A :class:`CachedModel`; ``from_cache`` says whether training was skipped.
    """
    key = cache_key(name=name, **key_parts)
    suffix = ".h5" if rebuild else ".keras"
    folder = config.artifacts_dir("models")
    remove_stale_temps(folder)  # what a save killed part-way left behind
    path = folder / f"{name}-{key}{suffix}"
    meta_path = path.with_name(f"{name}-{key}.json")
    scope = custom_objects_scope or contextlib.nullcontext
    if path.is_file() and meta_path.is_file():  # meta is written last: both = complete
        if _PROBE["on"]:  # is_cached: found, and not loaded
            return CachedModel(None, path, True, {})
        if rebuild:
            model = rebuild()
            model.load_weights(path)
        else:
            with scope():
                model = keras.models.load_model(path)
        return CachedModel(model, path, True, json.loads(meta_path.read_text()))
    if _PROBE["on"]:
        raise CacheMissError(path.name)
    model, meta = create()
    meta = {"key_parts": key_parts, "mode": config.mode(), **meta, **_WORKER_NOTE}
    if rebuild:
        with atomic_path(path) as tmp:
            model.save_weights(tmp)
    else:
        save_model_atomic(model, path)
    write_json_atomic(meta, meta_path)
    return CachedModel(model, path, False, meta)


def train_model(
    model_name: str,
    data: Dataset,
    cfg: TrainConfig,
    verbose: int = 0,
) -> tuple[keras.Model, dict[str, Any]]:
    """Build a fresh model by name, train it, and return ``(model, meta)``.

    ``meta`` holds the history and the wall-clock training time in seconds.
    """
    set_seeds(cfg.seed)
    model = compile_model(
        build_model(model_name, data.input_shape, data.num_classes), cfg.learning_rate
    )
    start = time.perf_counter()
    history = fit(model, data, cfg, verbose=verbose)
    return model, {"history": history, "train_seconds": time.perf_counter() - start}


def train_baseline(
    model_name: str = "seed_cnn",
    dataset: str = "mnist",
    cfg: TrainConfig | None = None,
    data: Dataset | None = None,
    verbose: int = 0,
) -> CachedModel:
    """Return the trained float32 baseline of a model, from the cache or freshly trained.

    Introduced in 01_baseline; every later chapter calls it to get the model it compares
    against, so the baseline is trained once per machine and mode. Shown in 01_baseline,
    whose reference cells build, compile and fit the same model in plain tf_keras.

    Args:
        model_name: a key of ``course_lib.models.MODELS``.
        dataset: a key of ``course_lib.data.DATASETS``.
        cfg: training settings (default :func:`baseline_config`).
        data: the loaded dataset, to avoid loading it twice (must match ``dataset``).
        verbose: Keras ``fit`` verbosity when training.

    Raises:
        ValueError: unknown model or dataset, or ``data`` is a different dataset.
    """
    cfg = cfg or baseline_config()
    if data is None:
        data = load_dataset(dataset)
    elif data.name != dataset:
        raise ValueError(f"data is {data.name!r} but dataset={dataset!r} was requested")
    build_model(model_name)  # fail early on an unknown name
    key_parts = {
        "model": model_name,
        "dataset": dataset,
        **data_identity(data),
        **cfg.as_dict(),
    }
    return cached_model(
        f"{model_name}-{dataset}",
        key_parts,
        lambda: train_model(model_name, data, cfg, verbose=verbose),
    )


def load_entry(path: str | Path) -> CachedModel:
    """Return the cache entry :func:`cached_model` stored at ``path`` (a ``.keras`` file).

    For calls that run in another process (:func:`train_in_workers`): the worker gets the
    path of a base model instead of the model itself, and loads it here.

    Raises:
        FileNotFoundError: no complete entry (model and its ``.json``) at ``path``.
    """
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        raise FileNotFoundError(f"no cached model at {path}")
    if _PROBE["on"]:
        return CachedModel(None, path, True, {})
    meta = json.loads(meta_path.read_text())
    return CachedModel(keras.models.load_model(path), path, True, meta)


def is_cached(call: Callable[[Dataset], object], data: Dataset) -> bool:
    """Whether ``call(data)`` would find every model it asks :func:`cached_model` for.

    The call runs with the cache in probe mode: an entry that exists is returned without
    its model (``model`` is None) and is not loaded, and the first missing one stops the
    call. So ``call`` may only use the models it gets to ask for further cache entries
    (their paths), as the pipeline stages of :mod:`course_lib.combined` do.
    """
    _PROBE["on"] = True
    try:
        call(data)
    except CacheMissError:
        return False
    finally:
        _PROBE["on"] = False
    return True


TRAINING_PROCESSES = 2
"""Worker processes of :func:`train_in_workers` (fewer when there are fewer calls or cores).

On the 2-core AMD EPYC of the course's timings, two models trained side by side in
processes of one TensorFlow thread each finished their epochs 1.3 (seed CNN) to 2.9
(LeNet-300-100) times sooner than one after the other with TensorFlow's two threads, which
layers this small cannot keep busy; chapter 04's pipeline stages took 121 s instead of
about 178 s. The seed CNN's own trainings gain nothing: two side by side each ran about
half as fast as one alone (chapter 02's fine-tunes took as long in all; chapter 04's seed
repeats, 44 s instead of 29 s), so chapters 02 and 03 and the seed repeats do not use it.
"""

_WORKER_DATA: dict[str, Dataset] = {}


def _start_worker(data: Dataset, note: str) -> None:
    _WORKER_DATA["data"] = data
    _WORKER_NOTE["trained_by"] = note


def _run_in_worker(call: Callable[[Dataset], object]) -> None:
    call(_WORKER_DATA["data"])


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def train_in_workers(
    calls: Sequence[Callable[[Dataset], object]],
    data: Dataset,
    processes: int | None = None,
) -> list[int]:
    """Fill the model cache by running ``call(data)`` for each call in worker processes.

    Introduced in 04_combined. Each call trains models through :func:`cached_model` (e.g.
    ``partial(train_baseline_job, "lenet_5", cfg)``); the notebook then asks for the same
    models as usual and gets them from the cache. Calls whose models are all cached already
    (:func:`is_cached`) are skipped, so a cached run starts no process. The workers are
    fresh ("spawned") Python processes with one TensorFlow thread each per core they share,
    and every model they train records ``trained_by`` in its meta. Calls must be picklable
    (module-level functions, ``functools.partial`` of them) and independent of each other:
    two calls that need the same new model would both train it.

    Args:
        calls: the cache-filling calls.
        data: the dataset every call gets (sent once to each worker).
        processes: worker processes (default :data:`TRAINING_PROCESSES` in full mode, at
            most one per call and per core); 1 runs the calls here, one after the other.
            Fast mode runs them here by default: its trainings are too short to pay for
            starting TensorFlow in two more processes, and its tests run two notebooks at
            once already.

    Returns:
        The indices of the calls that were run (the others were cached).

    Raises:
        ValueError: ``processes`` < 1.
    """
    if processes is not None and processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    todo = [i for i, call in enumerate(calls) if not is_cached(call, data)]
    cores = config.usable_cores()
    default = config.pick(full=TRAINING_PROCESSES, fast=1)
    workers = min(processes or default, len(todo), cores)
    if workers <= 1:
        for i in todo:
            calls[i](data)
        return todo
    threads = str(max(1, cores // workers))
    note = f"a worker process, {workers} training at once, {threads} TensorFlow thread(s) each"
    env = {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1"}
    with (
        _environment(env),  # the spawned workers read it when TensorFlow starts
        ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(data, note),
        ) as pool,
    ):
        list(pool.map(_run_in_worker, [calls[i] for i in todo]))
    return todo


def train_baseline_job(model_name: str, cfg: TrainConfig | None, data: Dataset) -> None:
    """``train_baseline(model_name, data.name, cfg, data)`` as a call for
    :func:`train_in_workers` (use ``functools.partial(train_baseline_job, name, cfg)``)."""
    train_baseline(model_name, data.name, cfg, data)
