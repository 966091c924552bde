"""Turn a model into a measured :class:`~course_lib.report.Result` in one call.

Introduced in 01_baseline. Converts (if needed), saves the .tflite under
``artifacts/<mode>/tflite/``, and measures size, gzip size, accuracy on the test set and
single-image latency with LiteRT, plus parameters, non-zeros and MACs from the Keras model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config
from course_lib.compat import keras
from course_lib.data import Dataset
from course_lib.measure import count_macs, count_nonzero, count_params, gzip_size
from course_lib.memo import digest, package_version, remembered_json
from course_lib.report import Result
from course_lib.stats import accuracy_ci95
from course_lib.system import cpu_name
from course_lib.tflite import LiteModel, convert, save_tflite

LATENCY_ROUNDS = 5
"""Latency is measured in this many rounds, each after its own warm-up, and pooled."""


def latency_runs() -> int:
    """Timed ``invoke()`` calls per latency measurement: 1000 in full mode, 100 in fast."""
    return config.pick(full=1000, fast=100)


RUNTIME_PACKAGE = "ai-edge-litert"
"""The runtime whose version is part of every remembered accuracy."""


def tflite_accuracy(content: bytes, data: Dataset, threads: int = 1) -> float:
    """Top-1 accuracy of a .tflite on ``data``'s test images through LiteRT, remembered.

    The answer depends only on the file's bytes, the images and labels, the interpreter's
    threads, the LiteRT version and the CPU (XNNPACK picks its kernels by the CPU's
    features), so it is stored in ``artifacts/<mode>/outputs/litert/`` under a digest of
    all of them (:mod:`course_lib.memo`) and read back on a later run. Latency is never
    remembered: it is about now.
    """
    key = digest(
        "litert-accuracy",
        content,
        data.x_test,
        data.y_test,
        threads,
        package_version(RUNTIME_PACKAGE),
        cpu_name(),
    )
    accuracy = remembered_json(
        "litert",
        key,
        lambda: LiteModel(content, num_threads=threads).evaluate(data.x_test, data.y_test),
    )
    return float(accuracy)  # type: ignore[arg-type]  # a JSON number


def tflite_path(variant: str, folder: str = "tflite", dataset: str = "mnist") -> Path:
    """Return ``artifacts/<mode>/<folder>/<variant>.tflite`` (MNIST, the course's dataset).

    Any other dataset gets its own sub-folder, ``artifacts/<mode>/<folder>/<dataset>/``, so
    a Fashion-MNIST run never overwrites an MNIST file of the same variant.
    """
    parts = (folder,) if dataset == "mnist" else (folder, dataset)
    return config.artifacts_dir(*parts) / f"{variant}.tflite"


def measure_tflite(
    content: bytes,
    variant: str,
    data: Dataset,
    keras_model: keras.Model,
    *,
    model_name: str,
    technique: str,
    baseline: str | None = None,
    folder: str = "tflite",
    threads: int = 1,
    nonzero_params: int | None = None,
    **extra: Any,
) -> Result:
    """Measure a .tflite: save it, then size, gzip size, accuracy and latency, with spreads.

    The accuracy is remembered by content (:func:`tflite_accuracy`); the latency is
    measured on every call.

    The Result carries the accuracy's Wilson 95 % interval (``accuracy_ci95``) and the
    latency's interquartile range over ``LATENCY_ROUNDS`` rounds (``latency_iqr_us``).

    Args:
        content: the .tflite bytes.
        variant: the Result's name, also the file name.
        data: the dataset; accuracy is measured on ``data.x_test`` (all 10,000 images in
            full mode), one image per ``invoke()``.
        keras_model: the model it was converted from (params, non-zeros and MACs).
        model_name, technique, baseline: copied into the Result.
        folder: sub-folder of ``artifacts/<mode>/`` for the file (e.g. the notebook stem).
        threads: interpreter threads for the latency measurement.
        nonzero_params: override the non-zero count taken from ``keras_model`` (e.g. with
            the zeros counted in the .tflite itself).
        **extra: extra Result fields (e.g. ``sparsity=0.9``).
    """
    path = save_tflite(content, tflite_path(variant, folder, dataset=data.name))
    lite = LiteModel(content, num_threads=threads)
    accuracy = tflite_accuracy(content, data, threads)
    stats = lite.latency(data.x_test[:1], warmup=50, runs=latency_runs(), rounds=LATENCY_ROUNDS)
    return Result(
        variant=variant,
        model=model_name,
        technique=technique,
        accuracy=accuracy,
        params=count_params(keras_model),
        nonzero_params=count_nonzero(keras_model) if nonzero_params is None else nonzero_params,
        macs=count_macs(keras_model),
        tflite_bytes=len(content),
        tflite_gzip_bytes=gzip_size(content),
        latency_us=round(stats.median_us, 2),
        accuracy_ci95=accuracy_ci95(accuracy, len(data.y_test)),
        latency_iqr_us=stats.iqr_us,
        baseline=baseline,
        extra={
            "latency_p90_us": round(stats.p90_us, 2),
            "tflite_file": path.name,
            "dataset": data.name,
            "test_images": len(data.y_test),
            **extra,
        },
    )


def convert_and_measure(
    keras_model: keras.Model,
    variant: str,
    data: Dataset,
    *,
    model_name: str,
    technique: str,
    kind: str = "float32",
    baseline: str | None = None,
    representative_data: np.ndarray | None = None,
    sparse_format: bool = False,
    folder: str = "tflite",
    **extra: Any,
) -> Result:
    """Convert a Keras model with :func:`course_lib.tflite.convert`, then :func:`measure_tflite`.

    The conversion is remembered by content (``cache=True``): a second run with the same
    model and settings reads the same bytes back instead of converting again.

    Shown in 01_baseline (convert, write the file, run it with LiteRT, by hand).

    For ``int8`` / ``int16x8`` the calibration images default to ``data.x_train``. The
    conversion kind is recorded in the Result as ``conversion``; ``sparse_format=True``
    converts with ``EXPERIMENTAL_SPARSITY`` (recorded as ``sparse_format``).
    """
    if kind in ("int8", "int16x8") and representative_data is None:
        representative_data = data.x_train
    content = convert(
        keras_model,
        kind,
        representative_data=representative_data,
        sparse_format=sparse_format,
        cache=True,
    )
    return measure_tflite(
        content,
        variant,
        data,
        keras_model,
        model_name=model_name,
        technique=technique,
        baseline=baseline,
        folder=folder,
        conversion=kind,
        sparse_format=sparse_format,
        **extra,
    )
