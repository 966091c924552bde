"""Filter removal and dense factorization (distillation: tests/test_distillation.py)."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import measure, models, structure, training
from course_lib.compat import keras

L = keras.layers


def _two_conv():
    model = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            L.Conv2D(6, 3, activation="relu", name="c1"),
            L.BatchNormalization(name="bn"),
            L.MaxPooling2D(2, name="pool"),
            L.Conv2D(4, 3, activation="relu", name="c2"),
            L.Flatten(name="flat"),
            L.Dense(5, activation="relu", name="d1"),
            L.Dense(3, name="out"),
        ]
    )
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def test_filter_norms_and_strongest():
    model = _two_conv()
    norms = structure.filter_norms(model, "c1", order=1)
    kernel = model.get_layer("c1").get_weights()[0]
    np.testing.assert_allclose(norms, np.abs(kernel).sum(axis=(0, 1, 2)), rtol=1e-6)
    l2 = structure.filter_norms(model, "d1", order=2)
    np.testing.assert_allclose(
        l2, np.linalg.norm(model.get_layer("d1").kernel.numpy(), axis=0), rtol=1e-6
    )
    assert structure.strongest(np.array([0.5, 2.0, 0.1, 1.5]), 2).tolist() == [1, 3]
    with pytest.raises(ValueError, match="keep must be in 1..4"):
        structure.strongest(np.ones(4), 0)
    with pytest.raises(ValueError, match="order"):
        structure.filter_norms(model, "c1", order=3)
    with pytest.raises(ValueError, match="'pool'.*no kernel"):
        structure.filter_norms(model, "pool")


def test_removing_dead_filters_keeps_the_outputs():
    model = _two_conv()
    k1, b1 = model.get_layer("c1").get_weights()
    k1[..., 2], b1[2] = 0.0, -1.0  # filter 2 is dead after ReLU...
    model.get_layer("c1").set_weights([k1, b1])
    bn = model.get_layer("bn").get_weights()
    bn[1][2] = 0.0  # ...and batch norm maps its zeros to beta = 0
    bn[2][2] = 0.0
    model.get_layer("bn").set_weights(bn)
    k2, b2 = model.get_layer("c2").get_weights()
    k2[..., 1], b2[1] = 0.0, -1.0  # filter 1 of c2 is dead too
    model.get_layer("c2").set_weights([k2, b2])
    thin = structure.remove_filters(model, {"c1": [0, 1, 3, 4, 5], "c2": [0, 2, 3]})
    x = np.random.default_rng(1).normal(size=(8, 12, 12, 1)).astype(np.float32)
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), atol=1e-5)
    assert thin.get_layer("c1").filters == 5 and thin.get_layer("c2").kernel.shape == (3, 3, 5, 3)
    assert thin.get_layer("bn").gamma.shape == (5,)
    assert thin.get_layer("d1").kernel.shape == (3 * 3 * 3, 5)  # flatten of 3x3x3


def test_removing_dense_neurons_shrinks_the_next_layer():
    model = _two_conv()
    thin = structure.remove_filters(model, {"d1": [0, 4]})
    assert thin.get_layer("d1").units == 2 and thin.get_layer("out").kernel.shape == (2, 3)
    np.testing.assert_array_equal(
        thin.get_layer("out").kernel.numpy(), model.get_layer("out").kernel.numpy()[[0, 4]]
    )


@pytest.mark.parametrize(
    "keep,match",
    [
        ({"c1": []}, "removing every filter of layer 'c1'"),
        ({"c1": [0, 9]}, "in 0..5"),
        ({"c1": [1, 1]}, "distinct"),
        ({"bn": [0]}, "layer 'bn' of type BatchNormalization"),
        ({"out": [0]}, "output layer"),
        ({"nope": [0]}, "no layer named 'nope'"),
    ],
)
def test_remove_filters_rejects_bad_requests(keep, match):
    with pytest.raises(ValueError, match=match):
        structure.remove_filters(_two_conv(), keep)


def test_remove_filters_names_unsupported_layers():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(4, 3, name="c"),
            L.UpSampling2D(name="up"),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    with pytest.raises(ValueError, match="'up' of type UpSampling2D"):
        structure.remove_filters(model, {"c": [0, 1]})
    functional = keras.Model(model.inputs, model.outputs)
    with pytest.raises(ValueError, match="not a keras.Sequential"):
        structure.remove_filters(functional, {"c": [0]})


def test_factorize_dense_full_rank_is_exact_and_low_rank_is_smaller():
    model = models.lenet_300_100()
    x = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    full = structure.factorize_dense(model, "fc1", 300)
    np.testing.assert_allclose(full(x).numpy(), model(x).numpy(), atol=1e-5)
    small = structure.factorize_dense(model, "fc1", 32)
    assert measure.count_params(small) == 266_610 - 235_200 - 300 + 32 * (784 + 300) + 300
    assert [layer.name for layer in small.layers][:3] == ["flatten", "fc1_u", "fc1_v"]
    # Eckart-Young: the best rank-32 product misses exactly the energy of the other values
    kernel = model.get_layer("fc1").kernel.numpy().astype(np.float64)
    product = small.get_layer("fc1_u").kernel.numpy() @ small.get_layer("fc1_v").kernel.numpy()
    tail = np.linalg.svd(kernel, compute_uv=False)[32:]
    assert np.linalg.norm(kernel - product) == pytest.approx(np.sqrt((tail**2).sum()), rel=1e-4)
    np.testing.assert_array_equal(
        small.get_layer("fc1_v").bias.numpy(), model.get_layer("fc1").bias.numpy()
    )


@pytest.mark.parametrize("rank,match", [(0, "1..300"), (301, "1..300"), (-2, "1..300")])
def test_factorize_dense_rejects_bad_ranks(rank, match):
    with pytest.raises(ValueError, match=match):
        structure.factorize_dense(models.lenet_300_100(), "fc1", rank)


def test_factorize_dense_names_a_non_dense_layer():
    with pytest.raises(ValueError, match="'conv' is a Conv2D"):
        structure.factorize_dense(models.seed_cnn(), "conv", 2)


def test_thin_and_low_rank_fine_tuning_are_cached(tmp_root, tiny_data):
    base = training.train_baseline(
        "seed_cnn", "mnist", training.TrainConfig(epochs=1), data=tiny_data
    )
    cfg = training.TrainConfig(epochs=1)
    thin = structure.thin_and_fine_tune(base, "conv", 4, tiny_data, cfg)
    assert thin.model.get_layer("conv").filters == 4
    assert measure.count_macs(thin.model) == 26 * 26 * 4 * 9 + 26 * 26 * 4 * 10
    assert structure.thin_and_fine_tune(base, "conv", 4, tiny_data, cfg).from_cache
    lenet = training.train_baseline("lenet_300_100", "mnist", cfg, data=tiny_data)
    assert (
        structure.low_rank_and_fine_tune(lenet, "fc1", 8, tiny_data, cfg)
        .model.get_layer("fc1_u")
        .units
        == 8
    )


def test_removed_filters_are_sliced_out_of_a_depthwise_layer():
    model = keras.Sequential(
        [
            keras.Input((10, 10, 1)),
            L.Conv2D(4, 3, activation="relu", name="c1"),
            L.DepthwiseConv2D(3, name="dw"),
            L.Flatten(name="flat"),
            L.Dense(3, name="out"),
        ]
    )
    rng = np.random.default_rng(2)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    k1, b1 = model.get_layer("c1").get_weights()
    k1[..., 1], b1[1] = 0.0, -1.0  # filter 1 outputs only zeros after ReLU
    model.get_layer("c1").set_weights([k1, b1])
    dw_kernel, dw_bias = model.get_layer("dw").get_weights()
    dw_bias[1] = 0.0  # so its depthwise channel stays zero too
    model.get_layer("dw").set_weights([dw_kernel, dw_bias])
    thin = structure.remove_filters(model, {"c1": [0, 2, 3]})
    np.testing.assert_array_equal(thin.get_layer("dw").get_weights()[0], dw_kernel[:, :, [0, 2, 3]])
    np.testing.assert_array_equal(thin.get_layer("dw").get_weights()[1], dw_bias[[0, 2, 3]])
    x = rng.normal(size=(4, 10, 10, 1)).astype(np.float32)
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), atol=1e-5)
