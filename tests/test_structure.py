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
    with pytest.raises(
        ValueError, match=r"^layer 'up' of type UpSampling2D is not supported by remove_filters$"
    ):
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


def test_depthwise_layer_without_bias_follows_removed_filters():
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            L.Conv2D(3, 3, name="c1"),
            L.DepthwiseConv2D(3, use_bias=False, name="dw"),
            L.Flatten(name="flat"),
            L.Dense(2, name="out"),
        ]
    )
    dw_kernel = model.get_layer("dw").get_weights()[0]
    thin = structure.remove_filters(model, {"c1": [0, 2]})
    weights = thin.get_layer("dw").get_weights()
    assert len(weights) == 1  # no bias before, none after
    np.testing.assert_array_equal(weights[0], dw_kernel[:, :, [0, 2]])


# --- pure functions: exact values, boundaries and messages -----------------------------


def test_strongest_ties_and_bounds():
    assert structure.strongest(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), 2).tolist() == [1, 2]
    assert structure.strongest([2.0, 1.0, 3.0], 3).tolist() == [0, 1, 2]  # keep == len
    assert structure.strongest([2.0, 1.0, 3.0], 1).tolist() == [2]
    with pytest.raises(ValueError, match=r"^keep must be in 1..3, got 4$"):
        structure.strongest([2.0, 1.0, 3.0], 4)


def test_strongest_keeps_lower_indices_among_many_ties():
    # 17 norms, 12 tied at the top: the 4 kept are the first four 1s by index (a hand count).
    # Beyond 16 values NumPy's default quicksort is not stable, so this needs kind="stable".
    norms = [1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert structure.strongest(np.array(norms, float), 4).tolist() == [0, 1, 2, 9]


def test_filter_norms_by_hand():
    model = keras.Sequential([keras.Input((1, 1, 2)), L.Conv2D(2, 1, name="c")])
    kernel = np.array([[[[3.0, -1.0], [-4.0, 1.0]]]], np.float32)  # (1, 1, in 2, out 2)
    model.get_layer("c").set_weights([kernel, np.zeros(2, np.float32)])
    assert structure.filter_norms(model, "c").tolist() == [7.0, 2.0]  # default L1
    np.testing.assert_allclose(structure.filter_norms(model, "c", 2), [5.0, np.sqrt(2.0)])
    with pytest.raises(ValueError, match=r"^order must be 1 \(L1\) or 2 \(L2\), got 0$"):
        structure.filter_norms(model, "c", order=0)


def test_filter_norms_refuses_depthwise_layers():
    model = keras.Sequential([keras.Input((4, 4, 2)), L.DepthwiseConv2D(3, name="dw")])
    with pytest.raises(
        ValueError, match=r"^layer 'dw' \(DepthwiseConv2D\) has no kernel with output filters$"
    ):
        structure.filter_norms(model, "dw")


def _filled(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def test_remove_filters_without_biases_and_global_pooling():
    model = _filled(
        keras.Sequential(
            [
                keras.Input((5, 5, 2)),
                L.Conv2D(3, 3, use_bias=False, name="c"),
                L.GlobalAveragePooling2D(name="gap"),
                L.Dense(4, use_bias=False, name="d"),
                L.Dense(2, name="out"),
            ],
            name="nb",
        )
    )
    thin = structure.remove_filters(model, {"c": [0, 2], "d": [1, 3]})
    assert thin.name == "nb_thin"
    assert [len(layer.get_weights()) for layer in thin.layers] == [1, 0, 1, 2]
    c, d = model.get_layer("c").kernel.numpy(), model.get_layer("d").kernel.numpy()
    np.testing.assert_array_equal(thin.get_layer("c").kernel.numpy(), c[..., [0, 2]])
    np.testing.assert_array_equal(thin.get_layer("d").kernel.numpy(), d[[0, 2]][:, [1, 3]])
    out = model.get_layer("out").get_weights()
    np.testing.assert_array_equal(thin.get_layer("out").kernel.numpy(), out[0][[1, 3]])
    np.testing.assert_array_equal(thin.get_layer("out").bias.numpy(), out[1])


def test_remove_filters_slices_flattened_rows_per_position():
    model = _filled(
        keras.Sequential(
            [
                keras.Input((2, 1, 1)),
                L.Conv2D(3, 1, name="c"),  # output (2, 1, 3): flatten order h, w, c
                L.Flatten(name="f"),
                L.Dense(2, name="out"),
            ]
        )
    )
    thin = structure.remove_filters(model, {"c": [1]})
    rows = model.get_layer("out").kernel.numpy()  # 6 rows: (h0: c0 c1 c2), (h1: c0 c1 c2)
    np.testing.assert_array_equal(thin.get_layer("out").kernel.numpy(), rows[[1, 4]])
    np.testing.assert_array_equal(
        thin.get_layer("c").bias.numpy(), model.get_layer("c").bias.numpy()[[1]]
    )


def test_separable_layers_keep_their_channels():
    layers = [
        keras.Input((6, 6, 2)),
        L.SeparableConv2D(3, 3, name="sep"),
        L.Conv2D(4, 1, name="c"),
        L.Flatten(),
        L.Dense(2, name="out"),
    ]
    model = _filled(keras.Sequential(layers))
    thin = structure.remove_filters(model, {"c": [0, 3]})  # before the change: copied as is
    kept = thin.get_layer("sep").get_weights()
    for a, b in zip(kept, model.get_layer("sep").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    after = _filled(
        keras.Sequential(
            [
                keras.Input((6, 6, 2)),
                L.Conv2D(4, 1, name="c"),
                L.SeparableConv2D(3, 3, name="sep"),
                L.Flatten(),
                L.Dense(2, name="out"),
            ]
        )
    )
    with pytest.raises(
        ValueError, match=r"^layer 'sep' \(SeparableConv2D\) cannot follow removed filters$"
    ):
        structure.remove_filters(after, {"c": [0]})
    assert structure.remove_filters(after, {}).get_layer("sep").depth_multiplier == 1


@pytest.mark.parametrize(
    "keep,message",
    [
        ({"c1": [-1, 2]}, "indices for layer 'c1' must be distinct and in 0..5"),
        ({"c1": [0, 6]}, "indices for layer 'c1' must be distinct and in 0..5"),
        ({"c1": np.array([], dtype=int)}, "removing every filter of layer 'c1' leaves nothing"),
        ({"out": [0]}, "layer 'out' is the output layer; its units are the classes"),
        (
            {"pool": [0]},
            "cannot remove filters from layer 'pool' of type MaxPooling2D; "
            "only Conv2D filters and Dense neurons$",
        ),
    ],
)
def test_remove_filters_messages(keep, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        structure.remove_filters(_two_conv(), keep)
    full = structure.remove_filters(_two_conv(), {"c1": [5, 0, 1, 2, 3, 4]})  # every index
    assert full.get_layer("c1").filters == 6


def test_remove_filters_lists_the_layers_of_an_unknown_name():
    with pytest.raises(ValueError, match=r"^no layer named 'x'; layers: \['c1', 'bn', 'pool'"):
        structure.remove_filters(_two_conv(), {"x": [0]})


def test_factorize_dense_names_and_messages():
    model = _filled(
        keras.Sequential(
            [keras.Input((4,)), L.Dense(3, activation="relu", name="d"), L.Dense(2, name="o")],
            name="m",
        )
    )
    small = structure.factorize_dense(model, "d", 2)
    assert small.name == "m_rank2" and [layer.name for layer in small.layers] == ["d_u", "d_v", "o"]
    assert small.get_layer("d_u").bias is None and small.get_layer("d_u").units == 2
    assert small.get_layer("d_v").get_config()["activation"] == "relu"
    np.testing.assert_array_equal(small.get_layer("o").kernel.numpy(), model.get_layer("o").kernel)
    full = structure.factorize_dense(model, "d", 3)  # min(4, 3) = 3: full rank allowed
    x = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(full(x).numpy(), model(x).numpy(), atol=1e-5)
    with pytest.raises(
        ValueError, match=r"^rank for layer 'd' must be in 1..3 \(its kernel is 4x3\), got 4$"
    ):
        structure.factorize_dense(model, "d", 4)
    functional = keras.Model(model.inputs, model.outputs, name="fn")
    with pytest.raises(ValueError, match=r"^model 'fn' is not a keras.Sequential model$"):
        structure.factorize_dense(functional, "d", 2)


def test_factorize_dense_splits_the_singular_values_evenly():
    kernel = np.diag([4.0, 1.0]).astype(np.float32)  # singular values 4 and 1
    model = keras.Sequential([keras.Input((2,)), L.Dense(2, use_bias=False, name="d")])
    model.get_layer("d").set_weights([kernel])
    small = structure.factorize_dense(model, "d", 1)
    u, v = small.get_layer("d_u").kernel.numpy(), small.get_layer("d_v").kernel.numpy()
    np.testing.assert_allclose(np.abs(u), [[2.0], [0.0]], atol=1e-6)  # sqrt(4) each side
    np.testing.assert_allclose(np.abs(v), [[2.0, 0.0]], atol=1e-6)
    assert len(small.get_layer("d_v").get_weights()) == 1  # no bias before, none after


def test_fit_new_compiles_with_the_rate_and_trains(tiny_data):
    model = keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(), L.Dense(10, name="d")])
    trained, meta = structure._fit_new(
        model, tiny_data, training.TrainConfig(epochs=1, learning_rate=0.005)
    )
    assert trained is model
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.005)
    assert len(meta["history"]["loss"]) == 1


def test_fit_new_times_the_fit(monkeypatch, tiny_data):
    clock = iter([100.0, 103.5])
    monkeypatch.setattr(structure.time, "perf_counter", lambda: next(clock))
    validated = []
    monkeypatch.setattr(
        structure,
        "fit",
        lambda model, data, cfg, validate=True: validated.append(validate) or {"loss": [1.0]},
    )
    model = keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(), L.Dense(10)])
    _, meta = structure._fit_new(model, tiny_data, training.TrainConfig(epochs=1))
    assert meta == {"history": {"loss": [1.0]}, "train_seconds": 3.5}
    assert validated == [False]


def test_fine_tune_helpers_cache_under_their_settings(monkeypatch, tiny_data):
    from pathlib import Path
    from types import SimpleNamespace

    from course_lib.data import identity

    seen = []
    monkeypatch.setattr(
        structure, "cached_model", lambda name, key, create: seen.append((name, key, create))
    )
    monkeypatch.setattr(structure, "_fit_new", lambda model, data, cfg: (model, {}))
    model = _two_conv()
    kernel, bias = model.get_layer("c1").get_weights()
    kernel[:] = 0.1  # L1 0.9, L2 0.3 for filters 2..5
    kernel[..., 0] = 0.0
    kernel[0, 0, 0, 0] = 3.0  # filter 0: L1 3, L2 3
    kernel[..., 1] = 0.5  # filter 1: L1 4.5, L2 1.5
    model.get_layer("c1").set_weights([kernel, bias])
    base = SimpleNamespace(model=model, path=Path("models/base-abc.keras"))
    model._name = "two"
    cfg = training.TrainConfig(epochs=2, learning_rate=0.01)
    structure.thin_and_fine_tune(base, "c1", 1, tiny_data, cfg, order=2)
    structure.thin_and_fine_tune(base, "c1", 1, tiny_data, cfg)
    structure.low_rank_and_fine_tune(base, "d1", 2, tiny_data, cfg)
    settings = {"epochs": 2, "batch_size": 32, "learning_rate": 0.01, "seed": 42}
    key = {"base": "base-abc", "layer": "c1", "keep": 1, "order": 2}
    assert seen[0][:2] == ("two-c1-keep1", {**key, **identity(tiny_data), **settings})
    assert seen[1][1]["order"] == 1  # the default: L1
    assert seen[2][:2] == (
        "two-d1-rank2",
        {"base": "base-abc", "layer": "d1", "rank": 2, **identity(tiny_data), **settings},
    )
    by_l2, by_l1, low_rank = (create()[0] for _, _, create in seen)
    np.testing.assert_array_equal(by_l2.get_layer("c1").kernel.numpy(), kernel[..., [0]])
    np.testing.assert_array_equal(by_l1.get_layer("c1").kernel.numpy(), kernel[..., [1]])
    assert low_rank.get_layer("d1_u").units == 2
