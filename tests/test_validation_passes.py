"""The compression fine-tunes skip the per-epoch validation pass; the weights do not change.

A dataset whose validation images have the wrong shape makes any validation pass fail, so
each helper below would raise if it still validated after its epochs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from course_lib import combined, distillation, pruning, quantization, structure, training
from course_lib.combined import Stage
from course_lib.pruning import PruneConfig
from course_lib.training import CachedModel, TrainConfig

from .conftest import build_tiny_model, same_weights


@pytest.fixture
def no_val(tiny_data):
    """``tiny_data`` whose validation images (5x5) no 28x28 model can take."""
    bad = np.zeros((10, 5, 5, 1), np.float32)
    return dataclasses.replace(tiny_data, x_val=bad, y_val=np.zeros(10, np.int64))


def test_fit_without_validation_gives_the_same_weights_and_no_val_history(tiny_data, no_val):
    cfg = TrainConfig(epochs=2, batch_size=64, seed=5)
    models, histories = [], []
    for data, validate in ((tiny_data, True), (no_val, False)):
        training.set_seeds(0)
        model = training.compile_model(build_tiny_model())
        histories.append(training.fit(model, data, cfg, validate=validate))
        models.append(model)
    same_weights(*models)
    assert set(histories[0]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert set(histories[1]) == {"loss", "accuracy"}
    assert histories[0]["loss"] == histories[1]["loss"]
    training.set_seeds(0)
    with pytest.raises(ValueError):  # the control: validating on these images fails
        training.fit(training.compile_model(build_tiny_model()), no_val, cfg)


def test_compression_fine_tunes_do_not_validate(tmp_root, tiny_model, no_val):
    base = CachedModel(tiny_model, tmp_root / "tiny-base.keras", True, {})
    one = TrainConfig(epochs=1, batch_size=64)
    _, meta = pruning.fine_tune_pruned(tiny_model, no_val, PruneConfig(0.5, epochs=1))
    assert set(meta["history"]) == {"loss", "accuracy"}
    stages = [Stage("prune", sparsity=0.5), Stage("cluster", clusters=4), Stage("pcqat")]
    _, entries = combined.train_pipeline(base, stages, no_val, model_name="tiny")
    assert len(entries) == 3
    for entry in entries:
        assert set(entry.meta["history"]) == {"loss", "accuracy"}
    qat = quantization.quantization_aware_model(base, no_val)
    assert set(qat.meta["history"]) == {"loss", "accuracy"}
    thin = structure.thin_and_fine_tune(base, "conv", 4, no_val, one)
    assert set(thin.meta["history"]) == {"loss", "accuracy"}
    student = distillation.distill(base, "strided_cnn", no_val, one)
    assert set(student.meta["history"]) <= {"loss", "accuracy", "student_loss", "distill_loss"}
