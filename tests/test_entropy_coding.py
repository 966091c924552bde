"""course_lib.entropy_coding: varints, the step grid, and the shipped file's round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import entropy_coding as ec
from course_lib import tflite
from course_lib.compat import keras, set_seeds

STEPS = (0.05, 0.02)  # kernel and bias steps of the small model below


@pytest.mark.parametrize(
    "n, encoded",
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")],
)
def test_varint_matches_leb128_by_hand(n, encoded):
    out = bytearray()
    ec.write_varint(n, out)
    assert bytes(out) == encoded  # LEB128: low 7 bits first, high bit = more bytes follow
    assert ec.read_varint(b"xx" + encoded, 2) == (n, 2 + len(encoded))


def test_varint_round_trips_large_numbers_and_refuses_bad_input():
    for n in (2**32 - 1, 2**40 + 5):
        out = bytearray()
        ec.write_varint(n, out)
        assert ec.read_varint(bytes(out), 0) == (n, len(out))
    with pytest.raises(ValueError, match=">= 0"):
        ec.write_varint(-1, bytearray())
    with pytest.raises(ValueError, match="truncated"):
        ec.read_varint(b"\x80\x80", 0)


def test_zigzag_interleaves_signs():
    assert [ec._zigzag(n) for n in (0, -1, 1, -2, 2)] == [0, 1, 2, 3, 4]
    assert all(ec._unzigzag(ec._zigzag(n)) == n for n in range(-300, 300))


def test_dequantize_is_one_float32_product_and_zero_is_positive():
    k = np.array([-3, 0, 2], np.int32)
    values = ec.dequantize(k, 0.1)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, np.float32(0.1) * np.array([-3, 0, 2], np.float32))
    assert not np.signbit(values[1])  # +0.0, never -0.0


def test_as_symbols_recovers_grid_values_and_rejects_the_rest():
    k = np.array([[-4, 0], [7, 1]], np.int32)
    np.testing.assert_array_equal(ec.as_symbols(ec.dequantize(k, 0.03), 0.03), k)
    on_grid = ec.dequantize(k, 0.03)
    assert ec.as_symbols(on_grid + np.float32(1e-3), 0.03) is None  # off the grid
    assert ec.as_symbols(np.array([-0.0], np.float32), 0.03) is None  # not bit-identical
    assert ec.as_symbols(np.array([1.0, np.nan], np.float32), 0.5) is None
    assert ec.as_symbols(np.array([1e6], np.float32), 1.0) is None  # beyond the symbol range
    assert ec.as_symbols(on_grid, 0.0) is None and ec.as_symbols(on_grid, -0.03) is None


def test_entropy_bytes_matches_the_formula():
    # [0, 0, 0, 1]: p = 3/4, 1/4 -> 4 * H(1/4) bits
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert ec.entropy_bytes(np.array([0, 0, 0, 1])) == pytest.approx(4 * h / 8)
    assert ec.entropy_bytes(np.zeros(100, np.int32)) == 0.0


@pytest.fixture(scope="module")
def grid_model():
    """A small CNN whose kernels sit on a 0.05 grid and biases on a 0.02 grid, 70 % zeros."""
    set_seeds(1)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="softmax", name="dense"),
        ]
    )
    rng = np.random.default_rng(3)
    symbols = []
    for layer in (model.get_layer("conv"), model.get_layer("dense")):
        kernel, bias = layer.get_weights()
        k = rng.integers(-6, 7, kernel.shape) * (rng.random(kernel.shape) < 0.3)
        b = rng.integers(-3, 4, bias.shape)
        layer.set_weights([ec.dequantize(k, STEPS[0]), ec.dequantize(b, STEPS[1])])
        symbols += [k, b]
    return model, symbols


@pytest.fixture(scope="module")
def grid_file(grid_model) -> bytes:
    return tflite.convert(grid_model[0])


def test_round_trip_rebuilds_the_file_byte_for_byte(grid_model, grid_file):
    model, symbols = grid_model
    shipped = ec.encode(grid_file, STEPS)
    assert ec.decode(shipped) == grid_file
    parts = ec.parts(shipped)
    assert parts.total == len(shipped)
    assert parts.coded_tensors == 4  # two kernels, two biases
    assert parts.coded_values == sum(s.size for s in symbols)
    # and the weights LiteRT reads are the Keras weights (TFLite stores kernels transposed)
    stored = sorted(
        np.sort(w.ravel()).tobytes()
        for w in tflite.weight_tensors(ec.decode(shipped)).values()
        if w.dtype == np.float32
    )
    expected = sorted(np.sort(w.ravel()).tobytes() for w in model.get_weights())
    assert stored == expected


def test_the_coded_stream_costs_about_the_entropy(grid_model, grid_file):
    shipped = ec.encode(grid_file, STEPS)
    entropy = sum(ec.entropy_bytes(s) for s in grid_model[1])
    stream = ec.parts(shipped).stream
    assert entropy <= stream <= entropy + 4 * 4  # ANS: within a word or so per tensor


def test_a_large_stream_stays_within_one_percent_of_its_entropy(tmp_path):
    """A 0.2 %-dense tensor of 200,000 weights: the coder must use the tensor's own counts."""
    rng = np.random.default_rng(0)
    k = (rng.random(200_000) < 0.002) * rng.integers(1, 4, 200_000)
    model = keras.Sequential([keras.Input((400,)), keras.layers.Dense(500, name="fc")])
    model.get_layer("fc").set_weights(
        [ec.dequantize(k.reshape(400, 500), 0.01), np.zeros(500, np.float32)]
    )
    shipped = ec.encode(tflite.convert(model), [0.01])
    entropy = ec.entropy_bytes(k) + ec.entropy_bytes(np.zeros(500))
    assert ec.parts(shipped).stream <= 1.01 * entropy + 8
    assert ec.decode(shipped) == tflite.convert(model)


def test_constants_off_every_grid_stay_in_the_skeleton(grid_model, grid_file):
    shipped = ec.encode(grid_file, [STEPS[0]])  # the biases' 0.02 grid is not offered
    assert ec.parts(shipped).coded_tensors == 2
    assert ec.decode(shipped) == grid_file


def test_encode_refuses_bad_input(grid_file):
    with pytest.raises(ValueError, match="TFL3"):
        ec.encode(b"not a model at all", STEPS)
    with pytest.raises(ValueError, match="positive finite"):
        ec.encode(grid_file, [0.05, float("nan")])
    with pytest.raises(ValueError, match="positive finite"):
        ec.encode(grid_file, [])
    with pytest.raises(ValueError, match="nothing to code"):
        ec.encode(grid_file, [0.0123])


def test_decode_refuses_damaged_files(grid_file):
    shipped = ec.encode(grid_file, STEPS)
    with pytest.raises(ValueError, match="not a shipped model"):
        ec.decode(b"TFL3" + shipped)
    with pytest.raises(ValueError, match="truncated"):
        ec.decode(shipped[:-3])
    with pytest.raises(ValueError, match="trailing"):
        ec.decode(shipped + b"\x00")
    with pytest.raises(ValueError, match="truncated"):
        ec.decode(shipped[:10])


def test_files_on_disk_are_accepted(grid_file, tmp_path):
    source = tmp_path / "m.tflite"
    source.write_bytes(grid_file)
    shipped = tmp_path / "m.lc"
    shipped.write_bytes(ec.encode(source, STEPS))
    assert ec.decode(shipped) == grid_file
    assert ec.parts(shipped).total == shipped.stat().st_size


def test_a_tensor_of_one_repeated_value_costs_no_stream(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="fc")])
    kernel = ec.dequantize(np.array([[1, 0], [0, 2], [-1, 0]]), 0.25)
    model.get_layer("fc").set_weights([kernel, ec.dequantize(np.array([3, 3]), 0.25)])
    content = tflite.convert(model)
    shipped = ec.encode(content, [0.25])
    assert ec.decode(shipped) == content
    assert ec.parts(shipped).coded_tensors == 2
