"""Turn a model into a measured :class:`~course_lib.report.Result` in one call.

Introduced in 01_baseline. Converts (if needed), saves the .tflite under
``artifacts/<mode>/tflite/``, and measures size, gzip size, accuracy on the test set and
single-image latency with LiteRT, plus parameters, non-zeros and MACs from the Keras model.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config
from course_lib.compat import keras
from course_lib.data import Dataset
from course_lib.measure import count_macs, count_nonzero, count_params, gzip_size
from course_lib.memo import digest, package_version, remembered_array, remembered_json
from course_lib.report import Result
from course_lib.stats import accuracy_ci95
from course_lib.system import cpu_name, gpu_names
from course_lib.tflite import (
    LiteModel,
    convert,
    integer_labels,
    model_digest_parts,
    read_tflite,
    save_tflite,
)

LATENCY_ROUNDS = 5
"""Latency is measured in this many rounds, each after its own warm-up, and pooled."""


def latency_runs() -> int:
    """Timed ``invoke()`` calls per latency measurement: 1000 in full mode, 100 in fast."""
    return config.pick(full=1000, fast=100)


RUNTIME_PACKAGE = "ai-edge-litert"
"""The runtime whose version is part of every remembered accuracy."""


def tflite_predictions(model: bytes | str | Path, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """The top-1 class of each image of ``x`` through LiteRT, one image per ``invoke()``,
    remembered.

    The answer depends only on the file's bytes, the images, the interpreter's threads, the
    LiteRT version and the CPU (XNNPACK picks its kernels by the CPU's features), so it is
    stored in ``artifacts/<mode>/outputs/litert/`` under a digest of all of them
    (:mod:`course_lib.memo`) and read back on a later run, in this notebook or another (07
    runs the files of 02-06 again). Latency is never remembered: it is about now.

    Raises:
        ValueError: not a .tflite, or images of the wrong shape or dtype.
    """
    content = read_tflite(model)
    x = np.asarray(x)
    key = digest("litert-top1", content, x, threads, package_version(RUNTIME_PACKAGE), cpu_name())
    return remembered_array(
        "litert",
        key,
        lambda: LiteModel(content, num_threads=threads).predict(x).argmax(axis=-1),
    )


def tflite_correct(model: bytes | str | Path, data: Dataset, threads: int = 1) -> np.ndarray:
    """Per test image of ``data``, whether the .tflite's top-1 class is right, remembered.

    The same as ``LiteModel(model).correct(data.x_test, data.y_test)``, read back when
    :func:`tflite_predictions` has the answer. Two models' arrays feed
    :func:`course_lib.stats.mcnemar`.
    """
    labels = integer_labels(data.y_test)
    predictions = tflite_predictions(model, data.x_test, threads)
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} test images but {len(labels)} labels")
    return predictions == labels


def tflite_accuracy(content: bytes, data: Dataset, threads: int = 1) -> float:
    """Top-1 accuracy of a .tflite on ``data``'s test images through LiteRT, remembered.

    The share of :func:`tflite_correct`: the predictions are read back when stored.
    """
    return float(np.mean(tflite_correct(content, data, threads)))


KERAS_PACKAGES = ("tensorflow", "tf-keras")
"""Packages whose versions are part of every remembered Keras prediction."""


def keras_predictions(model: keras.Model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The top-1 class of each image of ``x`` from ``model.predict``, remembered.

    Keyed by the model's architecture (``to_json``, its dtype policy included) and every
    weight, the images, the batch size, the TensorFlow and tf_keras versions, the CPU and
    the GPUs TensorFlow sees:
    06 asks again on every run for the accuracy of models that emulate float16 on the CPU,
    several seconds each. A model that cannot describe itself as JSON is predicted every
    time.
    """
    x = np.asarray(x)

    def predict() -> np.ndarray:
        return model.predict(x, batch_size=batch_size, verbose=0).argmax(axis=-1)

    parts = model_digest_parts(model)
    if parts is None:
        return predict()
    key = digest(
        "keras-top1",
        *parts,
        x,
        int(batch_size),
        *(package_version(name) for name in KERAS_PACKAGES),
        cpu_name(),
        ", ".join(gpu_names()),  # a GPU computes other float16 and bfloat16 roundings
    )
    return remembered_array("keras", key, predict)


def tflite_gzip_size(content: bytes) -> int:
    """:func:`course_lib.measure.gzip_size` of a .tflite (level 9), remembered by content.

    gzip -9 takes about 0.3 s on a pruned seed-CNN file (its runs of zeros are slow to
    match), and the course measures some files in several chapters. The size depends only
    on the bytes and the zlib version, both part of the key.
    """
    key = digest("gzip-9", bytes(content), zlib.ZLIB_RUNTIME_VERSION)
    return int(remembered_json("gzip", key, lambda: gzip_size(content)))  # type: ignore[call-overload]


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
        tflite_gzip_bytes=tflite_gzip_size(content),
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
