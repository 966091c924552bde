"""Measure what each deployment target cares about: cold start, threads, batch, memory.

Introduced in 07_deployment. A phone app feels the time to create the interpreter
and its memory as much as one image's latency; a server pays for images per second per core
at large batches; a microcontroller has a fixed flash and RAM (see :mod:`course_lib.tflm`).
Every function here runs the real runtime (LiteRT, or TensorFlow for the Keras model) and
returns plain numbers.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config, report, variants
from course_lib.compat import tf
from course_lib.measure import LatencyStats, time_calls
from course_lib.report import Result
from course_lib.tflite import Interpreter, LiteModel, OpResolverType, read_tflite


@dataclass(frozen=True)
class Shipped:
    """A variant an earlier chapter measured, with the .tflite file it measured."""

    notebook: str
    result: Result
    path: Path

    @property
    def name(self) -> str:
        """``variant`` alone; the notebook is in :attr:`notebook`."""
        return self.result.variant


def course_variants(notebooks: Sequence[str], folder: str | Path | None = None) -> list[Shipped]:
    """Every variant the named chapters wrote to their results files, with its .tflite file.

    Reads ``results/<notebook>.json`` (fast mode: the fast results folder) and finds each
    row's file under ``artifacts/<mode>/<notebook>/``, where the chapter saved it.

    Raises:
        FileNotFoundError: a chapter's results file is missing, or it names a .tflite
            that is not there; the message says which chapter to run.
        report.ResultsFileError: a results file cannot be read.
    """
    folder = Path(folder) if folder else config.results_dir()
    shipped = []
    for notebook in notebooks:
        for r in report.load_results(notebook, folder).results:
            stem = Path(str(r.extra.get("tflite_file", r.variant))).name.removesuffix(".tflite")
            dataset = str(r.extra.get("dataset", "mnist"))
            path = variants.tflite_path(stem, notebook, dataset=dataset)
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} is missing: run {notebook} again (it writes the file), "
                    f"e.g. `.venv/bin/python -m course_lib.runner {notebook}`"
                )
            shipped.append(Shipped(notebook, r, path))
    return shipped


KEPT_FIELDS = ("tflite_file", "dataset", "test_images", "conversion")
"""Fields of the chapter's row that a deployment row keeps (the rest stay in that chapter)."""

NAMED_SETTINGS = ("threads", "batch", "xnnpack", "jit_compile")
"""Settings that, when given, become part of a deployment row's variant name."""


def deployment_result(
    source: Shipped,
    target: str,
    runtime: str,
    latency: LatencyStats | None = None,
    **fields: Any,
) -> Result:
    """A deployment row: the chapter's Result for the model, plus what this chapter measured.

    The model's own numbers (accuracy through LiteRT, sizes, parameters, MACs) are the
    chapter's; ``target``, ``runtime`` and ``fields`` (see
    :data:`course_lib.report.DEPLOYMENT_FIELDS`) are checked by :class:`Result`. With
    ``latency``, ``latency_us`` and its spread are this measurement's, at the row's own
    threads and delegate; without it they stay the chapter's single-thread numbers. The
    variant is named after the source and the settings, e.g.
    ``ptq_int8/mobile/litert/threads=2/xnnpack=True``; ``source`` names the chapter's row and
    ``source_baseline`` its baseline there (``baseline`` is None: the row's reference is the
    same model in its chapter, not another row of this file).
    """
    r = source.result
    extra = {k: r.extra[k] for k in KEPT_FIELDS if k in r.extra}
    extra.update(source=f"{source.notebook}/{r.variant}", target=target, runtime=runtime)
    extra.update(fields)
    name = "/".join(
        [r.variant, target, runtime, *(f"{k}={fields[k]}" for k in NAMED_SETTINGS if k in fields)]
    )
    latency_us, latency_iqr_us = r.latency_us, r.latency_iqr_us
    if latency is not None:
        latency_us, latency_iqr_us = round(latency.median_us, 2), latency.iqr_us
        extra["latency_p90_us"] = round(latency.p90_us, 2)
    # the chapter's baseline is not in this chapter's file: keep its name, not the link
    extra["source_baseline"] = r.baseline
    return dataclasses.replace(
        r,
        variant=name,
        baseline=None,
        extra=extra,
        latency_us=latency_us,
        latency_iqr_us=latency_iqr_us,
    )


def litert_interpreter(
    model: bytes | str | Path, threads: int = 1, xnnpack: bool = True
) -> Interpreter:
    """A LiteRT interpreter (tensors not yet allocated), with or without the XNNPACK delegate.

    ``xnnpack=False`` uses ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``: LiteRT's own
    built-in kernels, what runs where XNNPACK does not (or before it was the default).

    Raises:
        ValueError: ``threads`` < 1.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return Interpreter(
        model_content=read_tflite(model),
        num_threads=threads,
        experimental_op_resolver_type=resolver,
    )


def cold_start_ms(
    model: bytes | str | Path, threads: int = 1, xnnpack: bool = True, repeats: int = 7
) -> float:
    """Median milliseconds to create the interpreter and ``allocate_tensors()`` (an app's start).

    With XNNPACK the weights are packed for the CPU here, so bigger models start slower.

    Raises:
        ValueError: ``repeats`` < 2 or ``threads`` < 1.
    """
    if repeats < 2:
        raise ValueError(f"repeats must be >= 2, got {repeats}")
    content = read_tflite(model)
    stats = time_calls(
        lambda: litert_interpreter(content, threads, xnnpack).allocate_tensors(),
        warmup=0,
        runs=repeats,
        threads=threads,
    )
    return stats.median_us / 1e3


@dataclass(frozen=True)
class Throughput:
    """Images per second of repeated batch calls: the median, and the interquartile range."""

    batch: int
    images_per_s: float
    iqr_images_per_s: list[float]
    """``[low, high]``: the batch over the 75th and the 25th percentile of the call times."""
    calls: LatencyStats

    @classmethod
    def of(cls, batch: int, calls: LatencyStats) -> Throughput:
        per_s = [batch / (us / 1e6) for us in (calls.median_us, calls.p75_us, calls.p25_us)]
        return cls(batch, per_s[0], [per_s[1], per_s[2]], calls)


def _check_batch_run(batch: int, runs: int) -> None:
    if batch < 1 or runs < 2:
        raise ValueError(f"need batch >= 1 and runs >= 2, got batch={batch}, runs={runs}")


def _batch_of(x: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` images from ``x``, repeated if ``x`` is shorter."""
    reps = -(-batch // len(x))
    return np.concatenate([x] * reps)[:batch] if reps > 1 else x[:batch]


def litert_throughput(
    model: bytes | str | Path,
    x: np.ndarray,
    batch: int,
    threads: int = 2,
    runs: int = 20,
    xnnpack: bool = True,
    rounds: int = 1,
) -> Throughput:
    """Images per second of LiteRT with the input resized to ``batch`` (``runs`` timed calls).

    The input is quantized as :class:`course_lib.tflite.LiteModel` does, then one warm-up
    ``invoke()`` runs untimed (one per round with ``rounds`` > 1, as in
    :func:`course_lib.measure.time_calls`). At ``batch=1`` the call times are the
    single-image latency: ``.calls``.

    Raises:
        ValueError: ``batch`` or ``threads`` < 1, ``runs`` < 2, or impossible ``rounds``.
    """
    _check_batch_run(batch, runs)
    content = read_tflite(model)
    images = LiteModel(content).prepare_input(_batch_of(x, batch))
    interpreter = litert_interpreter(content, threads, xnnpack)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, images)
    calls = time_calls(interpreter.invoke, warmup=1, runs=runs, threads=threads, rounds=rounds)
    return Throughput.of(batch, calls)


def keras_throughput(
    model: Any, x: np.ndarray, batch: int, jit_compile: bool = False, runs: int = 20
) -> Throughput:
    """Images per second of a Keras model called as a ``tf.function`` (``runs`` timed calls).

    ``jit_compile=True`` compiles the function with XLA. The first call (tracing and, with
    XLA, compiling) is not timed.

    Raises:
        ValueError: ``batch`` < 1 or ``runs`` < 2.
    """
    _check_batch_run(batch, runs)
    images = tf.constant(_batch_of(np.asarray(x, np.float32), batch))
    serve = tf.function(lambda t: model(t, training=False), jit_compile=jit_compile)
    calls = time_calls(lambda: serve(images).numpy(), warmup=1, runs=runs)
    return Throughput.of(batch, calls)


def core_seconds_per_million(images_per_second: float, threads: int) -> float:
    """CPU core-seconds to serve a million images: ``threads x 1e6 / images_per_second``.

    Raises:
        ValueError: a throughput <= 0 or ``threads`` < 1.
    """
    if not images_per_second > 0 or threads < 1:
        raise ValueError(
            f"need images_per_second > 0 and threads >= 1, got {images_per_second}, {threads}"
        )
    return threads * 1e6 / images_per_second


_MEMORY_PROBE = """
import json, resource, sys, time
from ai_edge_litert.interpreter import Interpreter

def peak_bytes():
    try:  # Linux: this address space's high-water mark (ru_maxrss survives exec on Linux)
        with open("/proc/self/status") as status:
            line = next(l for l in status if l.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
    except OSError:  # macOS: ru_maxrss, in bytes there
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

path, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
before = peak_bytes()
start = time.perf_counter()
if path != "-":
    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    for _ in range(runs):
        interpreter.invoke()
print(json.dumps({"before": before, "peak": peak_bytes(), "seconds": time.perf_counter() - start}))
"""


def peak_rss_bytes(model_path: str | Path | None, threads: int = 1, runs: int = 10) -> dict:
    """Peak resident memory of a fresh process that loads the model and runs it ``runs`` times.

    A separate process, so nothing else of this one (TensorFlow, the notebook) is counted:
    the process imports only LiteRT. ``model_path=None`` measures that process without a
    model, the floor every model's number includes. The peak is the process's high-water
    mark (``VmHWM`` on Linux; ``ru_maxrss`` is no good there: it survives ``exec`` and would
    report this process's peak), ``ru_maxrss`` on macOS.

    Returns:
        ``{"peak_rss_bytes", "before_model_bytes", "seconds"}``: the peak over the whole
        process, the peak before the model was loaded, and the time loading and running took.

    Raises:
        FileNotFoundError: no such model file.
        RuntimeError: the probe process failed (its error is quoted).
    """
    if model_path is not None and not Path(model_path).is_file():
        raise FileNotFoundError(f"no model file {model_path}")
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(model_path or "-"), str(threads), str(runs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the memory probe failed: {done.stderr.strip()[-500:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "peak_rss_bytes": int(found["peak"]),
        "before_model_bytes": int(found["before"]),
        "seconds": float(found["seconds"]),
    }


SERVING_INPUT = "image"
"""The serving signature's input name (float32 images, any batch size)."""

SERVING_OUTPUT = "probabilities"
"""The serving signature's output name."""


def export_saved_model(model: Any, folder: str | Path) -> Path:
    """Write a SavedModel with a ``serving_default`` signature, the format TF Serving loads.

    The signature takes ``image`` (float32, any batch size, the model's image shape) and
    returns ``probabilities``. TensorFlow Serving serves ``<base>/<version>/``, for example
    ``models/seed_cnn/1``.

    Raises:
        ValueError: ``folder`` exists and is not an empty folder (no silent overwrite).
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"{folder} exists and is not an empty folder: choose a new version")
    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name=SERVING_INPUT)

    @tf.function(input_signature=[spec])
    def serve(image):
        return {SERVING_OUTPUT: model(image, training=False)}

    tf.saved_model.save(model, str(folder), signatures={"serving_default": serve})
    return folder


def saved_model_predict(folder: str | Path, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Reload a SavedModel with ``tf.saved_model.load`` and run its serving signature on ``x``.

    Raises:
        ValueError: ``batch`` < 1.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    x = np.asarray(x, np.float32)
    parts = [
        serve(**{SERVING_INPUT: tf.constant(x[i : i + batch])})[SERVING_OUTPUT].numpy()
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(parts)
