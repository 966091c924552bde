"""Pipelines of pruning, clustering and QAT; Huffman coding and Deep Compression counting."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import combined, training
from course_lib.combined import Stage
from course_lib.compat import tfmot

from .conftest import same_weights


def S(*names):  # noqa: N802 - short helper: S("prune", "ptq")
    return [Stage(n, sparsity=0.5, clusters=4) for n in names]


@pytest.mark.parametrize(
    "names",
    [
        ("prune", "ptq"),
        ("prune", "pqat"),
        ("cluster", "cqat"),
        ("prune", "cluster", "pcqat"),
        ("qat",),
        ("ptq",),
        ("prune",),
        ("prune", "cluster"),
    ],
)
def test_valid_pipelines(names):
    combined.validate_pipeline(S(*names))


@pytest.mark.parametrize(
    "names,match",
    [
        ((), "at least one stage"),
        (("prune", "distill"), "unknown stage 'distill'"),
        (("qat", "prune"), "must come last"),
        (("pqat", "prune"), "must come last"),
        (("ptq", "cluster"), "must come last"),
        (("cluster", "prune"), "prune before cluster"),
        (("prune", "prune", "ptq"), "more than once"),
        (("pqat",), "needs prune first"),
        (("prune", "cqat"), "needs cluster first"),
        (("cluster", "pcqat"), "needs prune first"),
        (("prune", "qat"), "use 'pqat'"),
        (("prune", "cluster", "cqat"), "use 'pcqat'"),
        (("cluster", "qat"), "use 'cqat'"),
    ],
)
def test_pipelines_that_cannot_work_are_refused(names, match):
    with pytest.raises(ValueError, match=match):
        combined.validate_pipeline(S(*names))


@pytest.mark.parametrize(
    "stage,match",
    [
        (Stage("prune"), "needs a sparsity"),
        (Stage("prune", sparsity=0.0), r"in \(0, 1\)"),
        (Stage("prune", sparsity=1.0), r"in \(0, 1\)"),
        (Stage("prune", sparsity=90), r"in \(0, 1\)"),
        (Stage("prune", sparsity=-0.5), r"in \(0, 1\)"),
        (Stage("prune", sparsity=float("nan")), r"in \(0, 1\)"),
        (Stage("prune", sparsity=True), r"in \(0, 1\)"),
        (Stage("prune", sparsity="0.5"), r"in \(0, 1\)"),
        (Stage("prune", sparsity={"fc1": 0.9, "fc2": 1.2}), "'fc2'"),
        (Stage("prune", sparsity={}), "names no layer"),
        (Stage("cluster"), "integer >= 2"),
        (Stage("cluster", clusters=1), "integer >= 2"),
        (Stage("cluster", clusters=16.0), "integer >= 2"),
        (Stage("cluster", clusters=True), "integer >= 2"),
        (Stage("cluster", clusters=np.bool_(True)), "integer >= 2"),
        (Stage("cluster", clusters="16"), "integer >= 2"),
        (Stage("cluster", clusters=16, epochs=0), "epochs must be an integer >= 1"),
        (Stage("cluster", clusters=16, batch_size=2.5), "batch_size"),
        (Stage("cluster", clusters=16, learning_rate=0), "learning_rate"),
        (Stage("prune", sparsity=0.5, seed=1), "takes no seed"),
    ],
)
def test_stage_settings_are_checked_before_any_training(stage, match):
    with pytest.raises(ValueError, match=match):
        combined.validate_pipeline([stage])


def test_numpy_settings_are_accepted_and_stored_as_plain_numbers():
    import json

    stages = [
        Stage("prune", sparsity=np.float32(0.75)),
        Stage("cluster", clusters=np.int64(16)),
        Stage("pcqat", epochs=np.int32(1)),
    ]
    combined.validate_pipeline(stages)
    settings = [s.settings() for s in stages]
    assert json.loads(json.dumps(settings)) == settings
    assert settings[0]["sparsity"] == 0.75 and settings[1]["clusters"] == 16
    assert type(settings[1]["clusters"]) is int


@pytest.mark.parametrize(
    "stages,match",
    [
        ("prune>cluster>pcqat", "not the string 'prune>cluster>pcqat'"),
        ("prune", "not the string"),
        (["prune", "ptq"], "stage 0 is 'prune'.*not a Stage"),
        ([Stage("prune", sparsity=0.5), "ptq"], "stage 1 is 'ptq'"),
    ],
)
def test_strings_instead_of_stages_are_refused_with_a_message(stages, match):
    with pytest.raises(ValueError, match=match):
        combined.validate_pipeline(stages)


def test_run_pipeline_refuses_bad_settings_before_tfmot(tiny_model, tiny_data, tmp_root):
    base = training.CachedModel(tiny_model, tmp_root / "tiny.keras", True)
    with pytest.raises(ValueError, match="integer >= 2"):
        combined.run_pipeline(
            base, [Stage("cluster"), Stage("cqat")], tiny_data, model_name="t", baseline="b"
        )


def test_the_seed_is_in_the_key_of_training_stages_only():
    cluster = Stage("cluster", clusters=8)
    assert cluster.settings()["seed"] == cluster.seed
    assert cluster.with_seed(5).settings() == {**cluster.settings(), "seed": 5}
    assert "seed" not in Stage("prune", sparsity=0.5).settings()
    assert Stage("ptq").settings() == {"name": "ptq"}


def test_pipeline_name_and_settings():
    stages = [Stage("prune", sparsity={"fc1": 0.9}, epochs=2), Stage("ptq")]
    assert combined.pipeline_name(stages) == "prune>ptq"
    assert stages[0].settings()["sparsity"] == {"fc1": 0.9} and stages[1].settings() == {
        "name": "ptq"
    }


def test_huffman_on_a_hand_worked_example():
    symbols = list("aaaaabbcd")  # a:5, b:2, c:1, d:1
    assert combined.huffman_code_lengths(symbols) == {"a": 1, "b": 2, "c": 3, "d": 3}
    assert combined.huffman_bits(symbols) == 5 * 1 + 2 * 2 + 3 + 3
    assert combined.huffman_bits(["x"] * 7) == 7  # one symbol: 1 bit each
    assert combined.huffman_bits([]) == 0
    with pytest.raises(ValueError, match="no symbols"):
        combined.huffman_code_lengths([])


def test_huffman_never_beats_entropy_and_stays_within_one_bit_of_it():
    rng = np.random.default_rng(0)
    symbols = rng.choice(8, size=5000, p=[0.4, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / counts.sum()
    entropy_bits = -(p * np.log2(p)).sum() * len(symbols)
    assert entropy_bits <= combined.huffman_bits(symbols) <= entropy_bits + len(symbols)


def test_sparse_index_stream_inserts_filler_zeros():
    values = np.zeros(14, dtype=np.int8)
    values[1], values[13] = 3, 5
    stored, gaps = combined.sparse_index_stream(values, index_bits=3)  # gaps up to 7
    assert stored.tolist() == [3, 0, 5] and gaps.tolist() == [2, 7, 5]
    with pytest.raises(ValueError, match="index_bits"):
        combined.sparse_index_stream(values, 0)


def test_stored_stats_and_deep_compression_count_a_pruned_model(tiny_model, tiny_data):
    from course_lib.compat import keras
    from course_lib.pruning import magnitude_mask
    from course_lib.tflite import convert

    model = keras.models.clone_model(tiny_model)
    weights = tiny_model.get_weights()
    weights[2] = weights[2] * magnitude_mask(weights[2], 0.9)
    model.set_weights(weights)
    dense_file = convert(tiny_model, "int8", representative_data=tiny_data.x_train)
    sparse_file = convert(model, "int8", representative_data=tiny_data.x_train)
    stats = {s["tensor"]: s for s in combined.stored_weight_stats(sparse_file)}
    fc = next(s for name, s in stats.items() if "dense" in name)
    assert fc["sparsity"] >= 0.9 and fc["dtype"] == "int8"
    assert (
        combined.deep_compression_bytes(sparse_file)
        < combined.deep_compression_bytes(dense_file) / 3
    )


def test_stored_stats_name_each_kernel_by_its_keras_layer(tiny_model, tiny_data):
    from course_lib.tflite import convert

    rows = combined.stored_weight_stats(convert(tiny_model), tiny_model)
    # TFLite stores kernels output channel first: conv (8, 3, 3, 1), dense (10, 13*13*8)
    assert sorted((r["layer"], tuple(r["shape"])) for r in rows) == [
        ("conv", (8, 3, 3, 1)),
        ("dense", (10, 1352)),
    ]
    assert all(r["layer"] == "?" for r in combined.stored_weight_stats(convert(tiny_model)))


def test_the_ptq_stage_calibrates_on_training_images(tiny_model, tiny_data, monkeypatch):
    seen = []
    monkeypatch.setattr(
        combined,
        "convert",
        lambda model, kind, representative_data=None: seen.append((kind, representative_data)),
    )
    combined._convert_last(tiny_model, [Stage("prune", sparsity=0.5), Stage("ptq")], tiny_data)
    combined._convert_last(tiny_model, [Stage("prune", sparsity=0.5)], tiny_data)
    assert seen[0][0] == "int8" and seen[0][1] is tiny_data.x_train
    assert seen[1] == ("float32", None)


def test_run_pipeline_keeps_sparsity_and_clusters_in_the_file(tmp_root, tiny_data):
    base = training.train_baseline(
        "lenet_300_100", "mnist", training.TrainConfig(epochs=1), data=tiny_data
    )
    stages = [
        Stage("prune", sparsity=0.8, epochs=1, learning_rate=1e-3),
        Stage("cluster", clusters=8, epochs=1),
        Stage("pcqat", epochs=1),
    ]
    outcome = combined.run_pipeline(
        base, stages, tiny_data, model_name="lenet_300_100", baseline="base"
    )
    result = outcome.result
    assert result.technique == "combined" and result.extra["pipeline"] == "prune>cluster>pcqat"
    for stats in result.extra["stored_weights"]:
        assert stats["dtype"] == "int8" and stats["max_unique_per_channel"] <= 8
        assert stats["sparsity"] >= 0.75  # the zeros survived clustering and QAT
    assert result.params == base.model.count_params()
    assert result.nonzero_params < 0.3 * result.params
    assert 0 < result.extra["huffman_bytes"] < result.tflite_bytes
    again = combined.run_pipeline(
        base, stages[:1] + [Stage("ptq")], tiny_data, model_name="lenet_300_100", baseline="base"
    )
    assert again.stages[0].from_cache  # the pruned model is shared between pipelines


def test_array_bits_picks_the_cheaper_coding():
    dense = np.arange(1, 101, dtype=np.int8)  # 100 distinct non-zeros: no index needed
    assert combined.array_bits(dense, 5) == combined.huffman_bits(dense) + 8 * 100
    sparse = np.zeros(1000, dtype=np.int8)
    sparse[::50] = 7  # 20 non-zeros, gaps of 50 > 31: fillers needed at 5 bits
    stored, gaps = combined.sparse_index_stream(sparse, 5)
    expected = combined.huffman_bits(stored) + combined.huffman_bits(gaps) + 8 * 2
    assert combined.array_bits(sparse, 5) == expected < combined.huffman_bits(sparse) + 16


def test_clustering_leaves_the_base_model_untouched(tmp_root, tiny_data):
    from course_lib import measure

    base = training.train_baseline(
        "lenet_300_100", "mnist", training.TrainConfig(epochs=1), data=tiny_data
    )
    before = [w.copy() for w in base.model.get_weights()]
    names = [v.name for v in base.model.weights]
    combined.run_pipeline(
        base,
        [Stage("cluster", clusters=4), Stage("cqat")],
        tiny_data,
        model_name="lenet_300_100",
        baseline="base",
    )
    assert [v.name for v in base.model.weights] == names
    assert measure.count_params(base.model) == 266_610
    for a, b in zip(before, base.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_seed_repeats_retrain_only_the_last_stage(tiny_model, tiny_data, tmp_root):
    base = training.CachedModel(tiny_model, tmp_root / "tiny.keras", True)
    stages = [Stage("cluster", clusters=4, epochs=1), Stage("cqat", epochs=1)]
    first = combined.seed_repeats(base, stages, tiny_data, [1, 2], model_name="tiny")
    assert len(first) == 2 and all(0.5 < a <= 1 for a in first)
    model_1, entries_1 = combined.train_pipeline(
        base, [stages[0], stages[1].with_seed(1)], tiny_data, model_name="tiny"
    )
    model_2, entries_2 = combined.train_pipeline(
        base, [stages[0], stages[1].with_seed(2)], tiny_data, model_name="tiny"
    )
    assert all(e.from_cache for e in entries_1 + entries_2)  # seed is in the key: both kept
    assert entries_1[0].path == entries_2[0].path  # one clustered model shared by the seeds
    assert entries_1[1].path != entries_2[1].path
    kernels = [m.get_layer("quant_dense").get_weights()[0] for m in (model_1, model_2)]
    assert not np.array_equal(*kernels)  # another seed, another fine-tune
    assert combined.seed_repeats(base, stages, tiny_data, [1, 2], model_name="tiny") == first
    with pytest.raises(ValueError, match="no seed"):
        combined.seed_repeats(base, [Stage("ptq")], tiny_data, [1], model_name="tiny")


def test_clustering_loops_over_batches_with_the_weights_of_plain_keras(
    tiny_model, tiny_data, looped
):
    api = tfmot.clustering.keras
    stage = Stage("cluster", clusters=8, epochs=1, batch_size=8)  # 75 batches: 32 + 32 + 11
    training.set_seeds(0)  # the k-means++ initial centroids
    clustered, _ = combined._cluster(tiny_model, stage, tiny_data, preserve_sparsity=False)
    assert looped == [training.STEPS_PER_EXECUTION] and training.STEPS_PER_EXECUTION > 1
    training.set_seeds(0)
    wrapped = api.cluster_weights(
        training.copy_model(tiny_model),
        number_of_clusters=8,
        cluster_centroids_init=api.CentroidInitialization.KMEANS_PLUS_PLUS,
    )
    training.compile_model(wrapped, stage.learning_rate)
    training.set_seeds(stage.seed)
    wrapped.fit(
        tiny_data.x_train,
        tiny_data.y_train,
        batch_size=8,
        validation_data=(tiny_data.x_val, tiny_data.y_val),
        shuffle=True,
        verbose=0,
    )
    same_weights(clustered, api.strip_clustering(wrapped))
    assert len(np.unique(clustered.get_layer("dense").get_weights()[0])) <= 8
