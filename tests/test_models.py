"""The course's models have exactly the published architectures."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import models


@pytest.mark.parametrize(
    "name,params",
    [("seed_cnn", 216_650), ("lenet_300_100", 266_610), ("lenet_5", 431_080)],
)
def test_parameter_counts_match_the_papers(name, params):
    model = models.build_model(name)
    assert model.count_params() == params
    assert model.output_shape == (None, 10)


def test_seed_cnn_is_the_articles_model():
    model = models.seed_cnn()
    conv, flatten, dense = model.layers
    assert (conv.filters, conv.kernel_size, conv.activation.__name__) == (32, (3, 3), "relu")
    assert flatten.output_shape == (None, 26 * 26 * 32)
    assert (dense.units, dense.activation.__name__) == (10, "softmax")
    assert [layer.name for layer in model.layers] == ["conv", "flatten", "dense"]


def test_outputs_are_probabilities():
    model = models.lenet_5()
    out = model(np.zeros((2, 28, 28, 1), np.float32)).numpy()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_other_input_shapes_and_class_counts():
    model = models.build_model("seed_cnn", input_shape=(32, 32, 3), num_classes=5)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 5)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="Known models: lenet_300_100, lenet_5, seed_cnn,"):
        models.build_model("resnet50")


def test_xnnpack_sparse_cnn_fits_tfmots_latency_policy():
    from course_lib.compat import tfmot

    api = tfmot.sparsity.keras
    model = models.build_model("xnnpack_sparse_cnn")
    wrapped = api.prune_low_magnitude(model, pruning_policy=api.PruneForLatencyOnXNNPack())
    pruned = [layer.layer.name for layer in wrapped.layers if hasattr(layer, "pruning_vars")]
    assert pruned == ["pw1", "pw2", "pw3"]
