"""course_lib.learned_compression: the coded layers, the bit count, training and export."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import entropy_coding as ec
from course_lib import learned_compression as lc
from course_lib import tflite
from course_lib.compat import keras, set_seeds, tf


def _logistic_cdf(t: np.ndarray, scale: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-t / scale))


@pytest.fixture(scope="module")
def rate(tiny_model):
    return lc.rate_model(tiny_model, step_fraction=0.5)


def test_rate_model_computes_the_rounded_weights(tiny_model, rate, tiny_data):
    # independent: round each weight to its step with NumPy, put it in a plain copy
    plain = keras.models.clone_model(tiny_model)
    weights = []
    for layer in tiny_model.layers:
        for w in layer.get_weights():
            step = np.float32(0.5 * np.std(w))
            weights.append((np.rint(w / step) * step).astype(np.float32))
    plain.set_weights(weights)
    x = tiny_data.x_test[:20]
    np.testing.assert_allclose(rate(x).numpy(), plain(x).numpy(), atol=1e-5)
    names = [t.name for t in lc.coded_tensors(rate)]
    assert names == ["kernel", "bias", "kernel", "bias"]


def test_bits_follow_the_mixture_of_logistics(rate):
    tensor = lc.coded_tensors(rate)[2]  # the dense kernel
    k = np.rint(tensor.value.numpy() / tensor.step.numpy())
    pi = 1 / (1 + math.exp(-float(tensor.logit_pi.numpy())))
    s0, s1 = np.exp(tensor.log_scales.numpy())

    def cdf(t):
        return pi * _logistic_cdf(t, s0) + (1 - pi) * _logistic_cdf(t, s1)

    expected = -np.log2(cdf(k + 0.5) - cdf(k - 0.5)).sum()
    assert float(tensor.bits(noise=False)) == pytest.approx(expected, rel=1e-4)
    assert lc.total_bits(rate) == pytest.approx(
        sum(float(t.bits(noise=False)) for t in lc.coded_tensors(rate)), rel=1e-6
    )


def test_rounding_passes_the_gradient_straight_through(rate):
    tensor = lc.coded_tensors(rate)[0]
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(tensor.quantized())
    gradient = tape.gradient(total, tensor.value)
    np.testing.assert_array_equal(gradient.numpy(), np.ones(tensor.value.shape, np.float32))


def test_a_rate_penalty_buys_fewer_bits_and_more_zeros(tiny_model, tiny_data):
    outcomes = {}
    for beta in (0.0, 200.0):
        model = lc.rate_model(tiny_model)
        history = lc.train_rate(
            model,
            tiny_data,
            lc.RateConfig(beta=beta, epochs=2, batch_size=32, learning_rate=1e-2, seed=3),
        )
        outcomes[beta] = history
        assert set(history) == {"loss", "bits", "nonzero", "val_accuracy"}
        assert len(history["bits"]) == 2
    assert outcomes[200.0]["bits"][-1] < 0.7 * outcomes[0.0]["bits"][-1]
    assert outcomes[200.0]["nonzero"][-1] < outcomes[0.0]["nonzero"][-1]


def test_export_writes_values_the_coder_rebuilds(tiny_model, rate, tiny_data):
    plain, steps = lc.export(rate, tiny_model)
    assert len(steps) == 4
    for tensor, value in zip(lc.coded_tensors(rate), plain.get_weights(), strict=True):
        expected = ec.dequantize(tensor.symbols(), float(np.float32(tensor.step.numpy())))
        np.testing.assert_array_equal(value.view(np.uint32), expected.view(np.uint32))
    content = tflite.convert(plain)
    shipped = ec.encode(content, steps)
    assert ec.parts(shipped).coded_tensors == 4
    assert ec.decode(shipped) == content
    x = tiny_data.x_test[:20]
    np.testing.assert_allclose(rate(x).numpy(), plain(x).numpy(), atol=1e-5)
    assert tiny_model.get_weights()[0] is not plain.get_weights()[0]


def test_rate_model_refuses_what_it_cannot_code(tiny_model):
    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="Sequential"):
        lc.rate_model(functional)
    with pytest.raises(ValueError, match="no Dense or Conv2D"):
        lc.rate_model(keras.Sequential([keras.Input((4, 4)), keras.layers.Flatten()]))
    with pytest.raises(ValueError, match="step_fraction"):
        lc.rate_model(tiny_model, step_fraction=0.0)
    set_seeds(0)
    no_bias = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, use_bias=False)])
    with pytest.raises(ValueError, match="bias"):
        lc.rate_model(no_bias)
    with pytest.raises(TypeError, match="Dense or Conv2D"):
        lc.CodedLayer(keras.layers.Flatten())


@pytest.mark.parametrize(
    "field, value",
    [
        ("beta", -1.0),
        ("beta", float("nan")),
        ("epochs", 0),
        ("batch_size", 1.5),
        ("learning_rate", 0.0),
        ("step_fraction", -0.1),
    ],
)
def test_rate_config_refuses_bad_settings(field, value):
    with pytest.raises(ValueError, match=field):
        lc.RateConfig(**{field: value})


def test_train_rate_needs_a_rate_model(tiny_model, tiny_data):
    with pytest.raises(ValueError, match="rate_model"):
        lc.train_rate(tiny_model, tiny_data, lc.RateConfig(epochs=1))
