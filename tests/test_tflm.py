"""course_lib.tflm: TFLM runs, arena search, C arrays; checked against LiteRT and TFLM itself."""

from __future__ import annotations

import re

import numpy as np
import pytest

from course_lib import tflite, tflm

pytest.importorskip(
    "tflite_micro",
    reason="tflite-micro publishes wheels for Linux x86-64 only; the TFLM tests need it",
)


@pytest.fixture(scope="module")
def int8_file(tiny_model, tiny_data) -> bytes:
    return tflite.convert(tiny_model, "int8", representative_data=tiny_data.x_train[:200])


def test_tflm_predicts_what_litert_predicts(int8_file, tiny_data):
    micro = tflm.MicroModel(int8_file)
    lite = tflite.LiteModel(int8_file)
    x, y = tiny_data.x_test, tiny_data.y_test
    ours, theirs = micro.predict(x), lite.predict(x)
    assert ours.shape == theirs.shape == (len(x), 10) and ours.dtype == np.float32
    # two int8 implementations (TFLM's reference kernels, LiteRT's XNNPACK) of the same
    # arithmetic: most outputs identical, none more than two output steps (2/256) apart
    step = lite.output_quantization[0]
    assert np.mean(ours == theirs) >= 0.9
    assert np.max(np.abs(ours - theirs)) <= 2 * step + 1e-7
    assert tflm.prediction_agreement(ours, theirs) >= 0.99
    assert micro.evaluate(x, y) == pytest.approx(lite.evaluate(x, y), abs=0.01)
    with pytest.raises(ValueError, match="differ in length"):
        micro.evaluate(x, y[:-1])
    with pytest.raises(ValueError, match="shape"):
        micro.predict(x[:, :27])


def test_min_arena_is_what_tflm_itself_counts_and_exact_to_16_bytes(int8_file):
    arena = tflm.min_arena_bytes(int8_file)
    report = tflm.MicroModel(int8_file).allocation_report()
    total = int(re.search(r"Arena allocation total (\d+) bytes", report).group(1))
    assert arena == total  # TFLM's RecordingMicroAllocator, an independent count
    assert arena % tflm.ARENA_ALIGNMENT == 0
    assert tflm.allocates(int8_file, arena) and not tflm.allocates(int8_file, arena - 16)
    micro = tflm.MicroModel(int8_file, arena)  # runs in exactly that arena
    assert micro.predict(np.zeros((1, 28, 28, 1), np.float32)).shape == (1, 10)
    with pytest.raises(tflm.MicroRuntimeError, match=rf"{arena - 16:,}-byte arena.*allocate"):
        tflm.MicroModel(int8_file, arena - 16)


def test_tflm_refuses_dynamic_range_and_float16_with_its_reason(tiny_model, monkeypatch):
    dynamic = tflite.convert(tiny_model, "dynamic")
    with pytest.raises(tflm.MicroRuntimeError, match="FLOAT32 with filter type: INT8 not supp"):
        tflm.MicroModel(dynamic)
    float16 = tflite.convert(tiny_model, "float16")
    with pytest.raises(tflm.MicroRuntimeError, match="DEQUANTIZE"):
        tflm.MicroModel(float16)
    monkeypatch.setattr(tflm, "MAX_ARENA_BYTES", 4096)  # the search gives up quickly
    with pytest.raises(tflm.MicroRuntimeError, match="even with a 4,096-byte arena.*not supp"):
        tflm.min_arena_bytes(dynamic)


def test_bad_arguments_are_refused(int8_file):
    for bad in (0, -16):
        with pytest.raises(ValueError, match="arena_bytes must be >= 1"):
            tflm.MicroModel(int8_file, bad)
        with pytest.raises(ValueError, match="arena_bytes must be >= 1"):
            tflm.allocates(int8_file, bad)
    with pytest.raises(ValueError, match="step must be >= 1"):
        tflm.min_arena_bytes(int8_file, step=0)


def test_c_array_holds_every_byte_aligned_and_named(int8_file):
    source = tflm.c_array(int8_file, "g_model", per_line=10)
    lines = source.splitlines()
    assert lines[1] == "alignas(16) const unsigned char g_model[] = {"
    assert lines[-1] == f"const unsigned int g_model_len = {len(int8_file)};"
    assert f"{len(int8_file):,} bytes" in lines[0] and source.endswith(";\n")
    body = lines[2:-2]
    assert lines[-2] == "};" and len(body) == -(-len(int8_file) // 10)
    assert all(len(row.split()) == 10 for row in body[:-1])
    parsed = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2}),", source))
    assert parsed == int8_file
    tiny = tflm.c_array(b"\x1c\x00\x00\x00TFL3" + bytes(8), "m")  # a hand-checked one
    assert "  0x1c, 0x00, 0x00, 0x00, 0x54, 0x46, 0x4c, 0x33, 0x00, 0x00, 0x00, 0x00," in tiny


@pytest.mark.parametrize("name", ["", "2model", "my-model", "model name", "a.b"])
def test_c_array_refuses_names_c_cannot_take(int8_file, name):
    with pytest.raises(ValueError, match="not a C identifier"):
        tflm.c_array(int8_file, name)


def test_c_array_needs_a_positive_line_length(int8_file):
    with pytest.raises(ValueError, match="per_line must be >= 1"):
        tflm.c_array(int8_file, "m", per_line=0)


def test_prediction_agreement_counts_the_same_top_class():
    a = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    b = np.array([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9], [0.0, 1.0]])
    assert tflm.prediction_agreement(a, b) == 0.75  # rows 1, 2 and 4 agree
    with pytest.raises(ValueError, match="same, non-empty shape"):
        tflm.prediction_agreement(a, b[:3])
    with pytest.raises(ValueError, match="same, non-empty shape"):
        tflm.prediction_agreement(np.empty((0, 2)), np.empty((0, 2)))
