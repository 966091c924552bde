"""The checkers of 04_combined: right answers pass, blanks are "not attempted", NaN and every
plausible wrong answer fail with a reason. Expected values are hand counts."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from course_lib import deep_compression
from course_lib.compat import keras, tf, tfmot
from course_lib.exercises import ____
from course_lib.exercises import combined as ex


def solution_namespace(problem, **names):
    namespace = {"np": np, "tf": tf, "keras": keras, "tfmot": tfmot, "gzip": gzip, **names}
    exec(problem.solution_code, namespace)
    return namespace


# ------------------------------------------------------------------ q1: sparse storage bits

HAND_COUNTED_BITS = [
    # 40 weights, non-zeros at 2, 3, 30, 3-bit indices (gaps <= 7): the gap of 27 needs
    # fillers at 10, 17, 24 -> 6 entries x (4 + 3) bits
    42,
    # 1000 weights, non-zeros at 0, 500, 999, 5-bit indices (gaps <= 31): 500 and 499 need
    # 16 fillers each -> 35 entries x (2 + 5)
    245,
    # every second of 64 weights, 2-bit indices (gaps <= 3): 32 entries x (8 + 2)
    320,
    # one weight at position 299, 4-bit indices (gaps <= 15): 19 fillers -> 20 x (3 + 4)
    140,
]


def test_the_cases_match_hand_counts_and_the_library_encoder():
    for (length, positions, value_bits, index_bits), bits in zip(
        ex.SPARSE_CASES, HAND_COUNTED_BITS, strict=True
    ):
        values = ex._case(length, positions)
        assert np.flatnonzero(values).tolist() == list(positions)
        entries = ex.stored_entries(values, index_bits)
        assert entries * (value_bits + index_bits) == bits
        stored, _ = deep_compression.sparse_index_stream(values, index_bits)
        assert len(stored) == entries


def test_q1_solution_blank_and_nan():
    namespace = solution_namespace(ex.q1)
    assert ex.q1.check(sparse_bits=namespace["sparse_bits"]).status == "correct"
    assert ex.q1.check(sparse_bits=____).status == "not_attempted"
    assert ex.q1.check(sparse_bits=lambda v, a, b: ____).status == "not_attempted"
    result = ex.q1.check(sparse_bits=lambda v, a, b: float("nan"))
    assert result.status == "incorrect" and "NaN" in result.message


def test_q1_accepts_numpy_integers():
    right = solution_namespace(ex.q1)["sparse_bits"]
    assert ex.q1.check(sparse_bits=lambda v, a, b: np.int64(right(v, a, b))).status == "correct"


def _no_fillers(values, value_bits, index_bits):
    return np.count_nonzero(values) * (value_bits + index_bits)


def _bytes(values, value_bits, index_bits):
    right = solution_namespace(ex.q1)["sparse_bits"]
    return right(values, value_bits, index_bits) / 8


def _no_index(values, value_bits, index_bits):
    return np.count_nonzero(values) * value_bits


def _every_weight(values, value_bits, index_bits):
    return np.size(values) * (value_bits + index_bits)


def _one_byte_per_nonzero(values, value_bits, index_bits):
    return 8 * np.count_nonzero(values)  # the 3,000 B the old +-20 % window accepted


def _gap_off_by_one(values, value_bits, index_bits):  # max gap 2**b instead of 2**b - 1
    max_gap, entries, last = 2**index_bits, 0, -1
    for position in np.flatnonzero(values):
        while position - last > max_gap:
            last += max_gap
            entries += 1
        entries += 1
        last = position
    return entries * (value_bits + index_bits)


@pytest.mark.parametrize(
    "function,reason",
    [
        (_no_fillers, "filler zeros"),
        (_bytes, "bits, not bytes"),
        (_no_index, "relative position"),
        (_every_weight, "only the non-zeros"),
        (_one_byte_per_nonzero, "expected"),
        (_gap_off_by_one, "expected"),
        (lambda v, a, b: "42", "should be a number"),
        (lambda v, a, b: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_q1_wrong_answers(function, reason):
    result = ex.q1.check(sparse_bits=function)
    assert result.status == "incorrect" and reason in result.message, result.message


# ------------------------------------------------------------------ q2: cluster to 8 values


def _clustered(clusters: int, strip: bool = True):
    api = tfmot.clustering.keras
    wrapped = api.cluster_weights(
        ex.q2.fresh_model(),
        number_of_clusters=clusters,
        cluster_centroids_init=api.CentroidInitialization.KMEANS_PLUS_PLUS,
    )
    return api.strip_clustering(wrapped) if strip else wrapped


def _float_ratio(model) -> float:
    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    return len(content) / len(gzip.compress(content, compresslevel=9))


@pytest.fixture(scope="module")
def eight():
    model = _clustered(8)
    return model, _float_ratio(model)


def test_q2_solution_blank_and_nan(eight):
    model, ratio = eight
    kernels = [w for w in model.get_weights() if w.ndim > 1]
    assert all(len(np.unique(k)) <= 8 for k in kernels)  # independent check of the fixture
    namespace = solution_namespace(ex.q2)
    assert ex.q2.check(cluster_to_8=namespace["cluster_to_8"]).status == "correct"
    for answer in (np.float32(ratio), float(f"{ratio:.3g}")):
        assert ex.q2.check(cluster_to_8=lambda m, a=answer: (model, a)).status == "correct"
    assert ex.q2.check(cluster_to_8=____).status == "not_attempted"
    assert ex.q2.check(cluster_to_8=lambda m: ____).status == "not_attempted"
    assert ex.q2.check(cluster_to_8=lambda m: (____, ____)).status == "not_attempted"
    assert ex.q2.check(cluster_to_8=lambda m: (model, ____)).status == "not_attempted"
    nan = ex.q2.check(cluster_to_8=lambda m: (model, float("nan")))
    assert nan.status == "incorrect" and "NaN" in nan.message


@pytest.mark.parametrize(
    "case,reason",
    [
        ("unclustered", "distinct values"),
        ("sixteen", "distinct values"),
        ("wrapped", "strip_clustering"),
        ("inverted", "invert it"),
        ("percent", "divide the .tflite"),
        ("unclustered_ratio", "divide the .tflite"),
        ("not_a_model", "Keras model"),
        ("model_only", "return two things"),
    ],
)
def test_q2_wrong_answers(eight, case, reason):
    model, ratio = eight
    answers = {
        "unclustered": lambda m: (m, ratio),
        "sixteen": lambda m: (_clustered(16), ratio),
        "wrapped": lambda m: (_clustered(8, strip=False), ratio),
        "inverted": lambda m: (model, 1 / ratio),
        "percent": lambda m: (model, 100 * (1 - 1 / ratio)),
        "unclustered_ratio": lambda m: (model, _float_ratio(m)),
        "not_a_model": lambda m: ("model.keras", ratio),
        "model_only": lambda m: model,
    }
    result = ex.q2.check(cluster_to_8=answers[case])
    assert result.status == "incorrect" and reason in result.message, result.message


# ------------------------------------------------------------------ q3: PQAT keeps zeros


def test_q3_pruned_model_starts_at_80_percent_zeros():
    kernel = ex.q3.pruned_model().get_layer("dense").get_weights()[0]
    assert 0.79 <= np.mean(kernel == 0) <= 0.81


def test_q3_solution_and_blank():
    namespace = solution_namespace(ex.q3)
    result = ex.q3.check(make_pqat=namespace["make_pqat"])
    assert result.status == "correct", result.message
    assert ex.q3.check(make_pqat=____).status == "not_attempted"
    assert ex.q3.check(make_pqat=lambda m: ____).status == "not_attempted"


def _plain_qat(model):
    return tfmot.quantization.keras.quantize_model(model)


@pytest.mark.parametrize(
    "function,reason",
    [
        (lambda m: m, "not quantization-aware"),
        (_plain_qat, "grow back"),
        (lambda m: "pqat", "Keras model"),
        (lambda m: tfmot.quantization.keras.quantize_annotate_model(m), "not quantization"),
    ],
)
def test_q3_wrong_answers(function, reason):
    result = ex.q3.check(make_pqat=function)
    assert result.status == "incorrect" and reason in result.message, result.message
