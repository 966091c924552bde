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
        lambda model, kind, representative_data=None, cache=False: seen.append(
            (kind, representative_data, cache)
        ),
    )
    combined._convert_last(tiny_model, [Stage("prune", sparsity=0.5), Stage("ptq")], tiny_data)
    combined._convert_last(tiny_model, [Stage("prune", sparsity=0.5)], tiny_data)
    assert seen[0][0] == "int8" and seen[0][1] is tiny_data.x_train
    assert seen[1] == ("float32", None, True)  # remembered by content (tflite.convert)
    assert seen[0][2] is True


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
    # the same runs, per test image: LiteRT's answers on the cached files
    correct = combined.seed_repeats_correct(base, stages, tiny_data, [1, 2], model_name="tiny")
    assert [c.dtype for c in correct] == [np.dtype(bool)] * 2
    assert [len(c) for c in correct] == [len(tiny_data.x_test)] * 2
    assert [float(np.mean(c)) for c in correct] == first
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


# --- pure functions and wiring: exact values, boundaries and messages -------------------


def test_stage_defaults():
    from dataclasses import asdict

    assert asdict(Stage("qat")) == {
        "name": "qat",
        "sparsity": None,
        "clusters": None,
        "epochs": 1,
        "learning_rate": 1e-4,
        "batch_size": 32,
        "seed": 42,
    }
    assert combined.STAGES == ("prune", "cluster", "ptq", "qat", "pqat", "cqat", "pcqat")


def test_stage_settings_in_full():
    assert Stage("prune", sparsity=0.5, epochs=2, learning_rate=0.01, batch_size=8).settings() == {
        "name": "prune",
        "epochs": 2,
        "learning_rate": 0.01,
        "batch_size": 8,
        "sparsity": 0.5,
    }
    assert Stage("prune", sparsity={"a": np.float32(0.25)}).settings()["sparsity"] == {"a": 0.25}
    assert Stage("cluster", clusters=8, seed=3).settings() == {
        "name": "cluster",
        "epochs": 1,
        "learning_rate": 1e-4,
        "batch_size": 32,
        "seed": 3,
        "clusters": 8,
    }
    assert Stage("pqat", clusters=8, sparsity=0.5).settings() == {
        "name": "pqat",
        "epochs": 1,
        "learning_rate": 1e-4,
        "batch_size": 32,
        "seed": 42,
    }
    settings = Stage("qat", learning_rate=1, epochs=np.int64(2)).settings()
    assert type(settings["learning_rate"]) is float and type(settings["epochs"]) is int
    with pytest.raises(
        TypeError, match=r"^a 'prune' stage needs a sparsity, e.g. Stage\('prune', sparsity=0.8\)$"
    ):
        Stage("prune").settings()
    with pytest.raises(
        TypeError, match=r"^a 'cluster' stage needs clusters, e.g. Stage\('cluster', clusters=16\)$"
    ):
        Stage("cluster").settings()


def test_with_seed_keeps_every_other_field():
    stage = Stage("cluster", sparsity=0.5, clusters=8, epochs=3, learning_rate=0.01, batch_size=16)
    assert stage.with_seed(7) == Stage("cluster", 0.5, 8, 3, 0.01, 16, 7)


def test_pipeline_name_joins_with_arrows():
    assert combined.pipeline_name([Stage("qat")]) == "qat"
    assert combined.pipeline_name(S("prune", "cluster", "pcqat")) == "prune>cluster>pcqat"
    assert combined.pipeline_name([]) == ""


@pytest.mark.parametrize(
    "stages,message",
    [
        (
            [Stage("ptq"), Stage("prune")],
            "stage 1 ('prune') needs a sparsity: Stage('prune', sparsity=0.8) or "
            "Stage('prune', sparsity={'dense': 0.9})",
        ),
        ([Stage("prune", sparsity={})], "stage 0 ('prune'): the sparsity dict names no layer"),
        (
            [Stage("prune", sparsity=1.5)],
            "stage 0 ('prune'): sparsity of 'sparsity' must be a number in (0, 1) "
            "(a fraction of weights set to zero), got 1.5",
        ),
        (
            [Stage("prune", sparsity=float("inf"))],
            "stage 0 ('prune'): sparsity of 'sparsity' must be a number in (0, 1) "
            "(a fraction of weights set to zero), got inf",
        ),
        (
            [Stage("cluster", clusters=1)],
            "stage 0 ('cluster') needs clusters, an integer >= 2 "
            "(e.g. Stage('cluster', clusters=16)), got 1",
        ),
        (
            [Stage("ptq", seed=1)],
            "stage 0 ('ptq') takes no seed: only clustering and QAT stages are re-seeded",
        ),
        ([Stage("qat", epochs=True)], "stage 0 ('qat'): epochs must be an integer >= 1, got True"),
        (
            [Stage("qat", batch_size=0)],
            "stage 0 ('qat'): batch_size must be an integer >= 1, got 0",
        ),
        ([Stage("qat", epochs=1.0)], "stage 0 ('qat'): epochs must be an integer >= 1, got 1.0"),
        (
            [Stage("qat", learning_rate=-0.1)],
            "stage 0 ('qat'): learning_rate must be a number > 0, got -0.1",
        ),
        (
            [Stage("qat", learning_rate=float("nan"))],
            "stage 0 ('qat'): learning_rate must be a number > 0, got nan",
        ),
        (
            [Stage("qat", learning_rate=True)],
            "stage 0 ('qat'): learning_rate must be a number > 0, got True",
        ),
        (
            [Stage("qat", learning_rate="1e-3")],
            "stage 0 ('qat'): learning_rate must be a number > 0, got '1e-3'",
        ),
    ],
)
def test_setting_messages_in_full(stages, message):
    import re

    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        combined.validate_pipeline(stages)


def test_setting_boundaries_that_are_accepted():
    combined.validate_pipeline([Stage("cluster", clusters=2), Stage("cqat", seed=7)])
    combined.validate_pipeline([Stage("prune", sparsity=0.001), Stage("ptq")])
    combined.validate_pipeline([Stage("prune", sparsity={"a": 0.999, "b": 0.5})])
    combined.validate_pipeline([Stage("qat", epochs=1, batch_size=1, learning_rate=1e-9)])
    combined.validate_pipeline([Stage("qat", epochs=np.int64(2), learning_rate=np.float32(1))])
    # ptq does not train: its training settings are not looked at
    combined.validate_pipeline([Stage("ptq", epochs=0, batch_size=0, learning_rate=0)])


@pytest.mark.parametrize(
    "stages,message",
    [
        (
            "qat",
            "a pipeline is a list of Stage objects, not the string 'qat': write e.g. "
            "[Stage('prune', sparsity=0.8), Stage('ptq')]",
        ),
        (b"qat", "a pipeline is a list of Stage objects, not the string b'qat'"),
        ([], "a pipeline needs at least one stage"),
        ([3], "stage 0 is 3 (int), not a Stage: write Stage(3, ...) with its settings"),
        (
            [Stage("kd")],
            "unknown stage 'kd'; known stages: prune, cluster, ptq, qat, pqat, cqat, pcqat",
        ),
        (S("cluster", "cluster"), "stage 'cluster' appears more than once"),
        (
            S("ptq", "qat"),
            "quantization stage 'ptq' must come last, but 'qat' follows it: "
            "training after quantization would move the weights off the int8 grid",
        ),
        (
            S("cluster", "prune"),
            "prune before cluster: pruning a clustered layer destroys its clusters",
        ),
        (
            S("pcqat"),
            "'pcqat' preserves what cluster and prune made, so it needs cluster and prune first",
        ),
        (S("cqat"), "'cqat' preserves what cluster made, so it needs cluster first"),
        (S("prune", "qat"), "'qat' after pruning lets zeros grow back; use 'pqat'"),
        (S("prune", "cluster", "cqat"), "'cqat' after pruning lets zeros grow back; use 'pcqat'"),
        (S("cluster", "qat"), "'qat' after clustering breaks the clusters; use 'cqat'"),
    ],
)
def test_pipeline_messages_in_full(stages, message):
    import re

    with pytest.raises(ValueError, match="^" + re.escape(message)):
        combined.validate_pipeline(stages)


def test_order_rules_that_are_accepted():
    combined.validate_pipeline(S("cluster"))  # clustering alone
    combined.validate_pipeline(S("cluster", "ptq"))
    combined.validate_pipeline(S("prune", "cluster", "ptq"))
    combined.validate_pipeline(S("cluster", "cqat"))
    combined.validate_pipeline(S("prune", "cluster", "pqat"))  # pqat needs prune only


def test_train_config_of_a_stage():
    stage = Stage("qat", epochs=3, learning_rate=0.01, batch_size=16, seed=5)
    assert combined._train_config(stage) == training.TrainConfig(3, 16, 0.01, 5)


def test_quantize_uses_the_scheme_of_each_stage(monkeypatch, tiny_model):
    from course_lib.compat import tfmot

    q = tfmot.quantization.keras
    seen = []
    monkeypatch.setattr(q, "quantize_model", lambda m: seen.append(("model", m)) or "qat")
    monkeypatch.setattr(q, "quantize_annotate_model", lambda m: ("annotated", m))
    monkeypatch.setattr(q, "quantize_apply", lambda m, scheme: seen.append((m[0], scheme)))
    assert combined._quantize(tiny_model, "qat") == "qat"
    assert seen[0][1] is not tiny_model  # a copy: tfmot must not touch the original
    for stage in ("pqat", "cqat", "pcqat"):
        combined._quantize(tiny_model, stage)
    combine = tfmot.experimental.combine
    schemes = [scheme for _, scheme in seen[1:]]
    assert [type(s) for s in schemes] == [
        combine.Default8BitPrunePreserveQuantizeScheme,
        combine.Default8BitClusterPreserveQuantizeScheme,
        combine.Default8BitClusterPreserveQuantizeScheme,
    ]
    assert schemes[2].preserve_sparsity is True  # pcqat keeps the zeros of pruning
    assert all(kind == "annotated" for kind, _ in seen[1:])


def test_run_stage_routes_each_stage(monkeypatch):
    seen = []
    monkeypatch.setattr(
        combined, "fine_tune_pruned", lambda m, d, cfg: seen.append(cfg) or ("pruned", {})
    )
    monkeypatch.setattr(
        combined,
        "_cluster",
        lambda m, stage, d, preserve_sparsity: seen.append(preserve_sparsity) or ("c", {}),
    )
    stage = Stage("prune", sparsity={"a": 0.5}, epochs=2, learning_rate=0.01, batch_size=8)
    model, meta = combined._run_stage("base", stage, [], "data")
    assert model == "pruned" and meta["train_seconds"] >= 0
    assert seen[0] == combined.PruneConfig(
        sparsity={"a": 0.5}, epochs=2, batch_size=8, learning_rate=0.01
    )
    combined._run_stage("base", Stage("cluster", clusters=4), [], "data")
    combined._run_stage("base", Stage("cluster", clusters=4), S("prune"), "data")
    assert seen[1:] == [False, True]  # clustering after pruning keeps the zeros
    with pytest.raises(ValueError, match=r"^a 'prune' stage needs a sparsity"):
        combined._run_stage("base", Stage("prune"), [], "data")


def test_train_pipeline_chains_cache_keys(monkeypatch, tiny_data):
    from pathlib import Path
    from types import SimpleNamespace

    from course_lib.data import identity

    calls = []

    def fake_cached(name, key, create, custom_objects_scope=None, rebuild=None):
        calls.append((name, key, rebuild))
        return SimpleNamespace(model=f"after-{name}", meta={})

    monkeypatch.setattr(combined, "cached_model", fake_cached)
    base = SimpleNamespace(model="base", path=Path("m/base-1.keras"))
    stages = [Stage("prune", sparsity=0.5), Stage("cluster", clusters=4), Stage("pcqat")]
    model, entries = combined.train_pipeline(base, stages, tiny_data, model_name="net")
    assert model == "after-net-prune>cluster>pcqat" and len(entries) == 3
    ids = identity(tiny_data)
    settings = [s.settings() for s in stages]
    assert [c[:2] for c in calls] == [
        ("net-prune", {"chain": ["base-1", settings[0]], **ids}),
        ("net-prune>cluster", {"chain": ["base-1", *settings[:2]], **ids}),
        ("net-prune>cluster>pcqat", {"chain": ["base-1", *settings], **ids}),
    ]
    assert calls[0][2] is None and calls[1][2] is None and calls[2][2] is not None
    calls.clear()
    model, entries = combined.train_pipeline(base, S("prune", "ptq"), tiny_data, model_name="n")
    assert [c[0] for c in calls] == ["n-prune"] and model == "after-n-prune"  # ptq: no training
    calls.clear()
    model, entries = combined.train_pipeline(base, S("ptq"), tiny_data, model_name="n")
    assert calls == [] and entries == [] and model == "base"
    with pytest.raises(ValueError, match="at least one stage"):
        combined.train_pipeline(base, [], tiny_data, model_name="n")


def test_convert_last_uses_int8_for_every_quantization_stage(monkeypatch, tiny_data):
    seen = []
    monkeypatch.setattr(
        combined,
        "convert",
        lambda m, kind, representative_data=None, cache=False: seen.append(
            (kind, representative_data)
        ),
    )
    for last in ("qat", "pqat", "cqat", "pcqat", "cluster"):
        combined._convert_last("m", [Stage(last)], tiny_data)
    assert seen == [("int8", None)] * 4 + [("float32", None)]


def test_run_pipeline_wires_the_measurement(monkeypatch, tiny_data):
    from types import SimpleNamespace

    entries = [SimpleNamespace(meta={"train_seconds": 1.26}), SimpleNamespace(meta={})]
    monkeypatch.setattr(combined, "train_pipeline", lambda *a, **k: ("model", entries))
    monkeypatch.setattr(combined, "_convert_last", lambda m, s, d: b"flat")
    monkeypatch.setattr(combined, "stored_weight_stats", lambda c, m: [{"zeros": 5}, {"zeros": 2}])
    monkeypatch.setattr(combined, "count_params", lambda m: 100)
    monkeypatch.setattr(combined, "deep_compression_bytes", lambda c: 7)
    seen = {}
    monkeypatch.setattr(
        combined, "measure_tflite", lambda *a, **k: seen.update(args=a, kwargs=k) or "result"
    )
    base = SimpleNamespace(model="base-model")
    stages = S("prune", "ptq")
    outcome = combined.run_pipeline(base, stages, tiny_data, model_name="net", baseline="b")
    assert (outcome.result, outcome.model, outcome.tflite_bytes) == ("result", "model", b"flat")
    assert outcome.stages == entries
    assert seen["args"] == (b"flat", "net_prune_ptq", tiny_data, "base-model")
    assert seen["kwargs"] == {
        "model_name": "net",
        "technique": "combined",
        "baseline": "b",
        "folder": "04_combined",
        "nonzero_params": 100 - 7,
        "pipeline": "prune>ptq",
        "huffman_bytes": 7,
        "stages": [s.settings() for s in stages],
        "stored_weights": [{"zeros": 5}, {"zeros": 2}],
        "fine_tune_seconds": 1.3,
    }
    combined.run_pipeline(
        base, stages, tiny_data, model_name="net", baseline="b", folder="f", variant="v"
    )
    assert seen["args"][1] == "v" and seen["kwargs"]["folder"] == "f"


def test_seed_repeats_messages_and_seeds(monkeypatch, tiny_data):
    with pytest.raises(ValueError, match="^give at least one seed$"):
        combined.seed_repeats(None, S("cluster", "cqat"), tiny_data, [], model_name="n")
    with pytest.raises(ValueError, match=r"^the last stage 'prune' has no seed to repeat$"):
        combined.seed_repeats(None, S("prune"), tiny_data, [1], model_name="n")
    runs = []
    monkeypatch.setattr(
        combined,
        "train_pipeline",
        lambda base, run, data, model_name: runs.append(run) or (run, []),
    )
    monkeypatch.setattr(combined, "_convert_last", lambda m, run, d: run[-1].seed)
    monkeypatch.setattr(combined, "tflite_correct", lambda seed, data: np.arange(10) < seed)
    accuracies = combined.seed_repeats(
        "b", S("cluster", "cqat"), tiny_data, [np.int64(3), 9], model_name="n"
    )
    assert accuracies == [0.3, 0.9]
    assert [run[-1].seed for run in runs] == [3, 9] and type(runs[0][-1].seed) is int
    correct = combined.seed_repeats_correct(
        "b", S("cluster", "cqat"), tiny_data, [4], model_name="n"
    )
    assert [c.tolist() for c in correct] == [[True] * 4 + [False] * 6]
    with pytest.raises(ValueError, match="^give at least one seed$"):
        combined.seed_repeats_correct(None, S("cluster", "cqat"), tiny_data, [], model_name="n")
    with pytest.raises(ValueError, match=r"^the last stage 'ptq' has no seed to repeat$"):
        combined.seed_repeats_correct(None, S("ptq"), tiny_data, [1], model_name="n")
    assert all(run[0] == S("cluster")[0] for run in runs)


# --- mutation-testing follow-ups: messages, stage plumbing and seed repeats, by hand -------


def test_the_quantization_stage_message_names_the_stage_after_it():
    stages = [Stage("prune", sparsity=0.5), Stage("ptq"), Stage("cluster", clusters=4)]
    with pytest.raises(
        ValueError, match=r"^quantization stage 'ptq' must come last, but 'cluster' follows it: "
    ):
        combined.validate_pipeline(stages)


def test_seed_repeats_refuses_a_last_stage_without_a_seed(tiny_data):
    for name in ("ptq", "prune"):
        stage = Stage(name, sparsity=0.5)
        with pytest.raises(ValueError, match=rf"^the last stage '{name}' has no seed to repeat$"):
            combined.seed_repeats(None, [stage], tiny_data, [1], model_name="tiny")


def test_seed_repeats_reseeds_only_the_last_stage(monkeypatch, tiny_data):
    runs, converted = [], []
    monkeypatch.setattr(
        combined,
        "train_pipeline",
        lambda base, run, data, model_name: runs.append((list(run), model_name)) or ("m", []),
    )
    monkeypatch.setattr(
        combined, "_convert_last", lambda model, run, data: converted.append(data) or b"x"
    )

    def correct(content, data):
        assert content == b"x" and data is tiny_data
        return np.array([True, False])

    monkeypatch.setattr(combined, "tflite_correct", correct)
    prune, cluster = Stage("prune", sparsity=0.5), Stage("cluster", clusters=4)
    stages = [prune, cluster, Stage("pcqat")]
    assert combined.seed_repeats(None, stages, tiny_data, [3, 4], model_name="t") == [0.5, 0.5]
    assert [run for run, _ in runs] == [
        [prune, cluster, Stage("pcqat").with_seed(3)],
        [prune, cluster, Stage("pcqat").with_seed(4)],
    ]
    assert {name for _, name in runs} == {"t"} and converted == [tiny_data, tiny_data]


def test_run_pipeline_passes_the_model_name_and_the_base_model(monkeypatch, tiny_data):
    from types import SimpleNamespace

    calls = {}
    monkeypatch.setattr(
        combined,
        "train_pipeline",
        lambda base, stages, data, model_name: calls.setdefault("name", model_name) and ("m", []),
    )
    monkeypatch.setattr(combined, "_convert_last", lambda model, stages, data: b"tfl")
    monkeypatch.setattr(
        combined,
        "stored_weight_stats",
        lambda content, model: calls.setdefault("stored", (content, model)) and [],
    )
    monkeypatch.setattr(combined, "deep_compression_bytes", lambda content: 1)
    monkeypatch.setattr(combined, "count_params", lambda model: 10)
    monkeypatch.setattr(combined, "measure_tflite", lambda *a, **k: "result")
    base = SimpleNamespace(model="base-model")
    outcome = combined.run_pipeline(
        base, [Stage("ptq")], tiny_data, model_name="tiny", baseline="b"
    )
    assert outcome.result == "result"
    assert calls == {"name": "tiny", "stored": (b"tfl", "base-model")}


def test_stages_compile_at_their_rate_and_time_the_fit(monkeypatch, tiny_model, tiny_data):
    rates = []
    real_compile = combined.compile_model

    def spy_compile(model, learning_rate=1e-3):
        rates.append(learning_rate)
        return real_compile(model, learning_rate)

    clock = iter([5.0, 9.0, 20.0, 21.5])
    monkeypatch.setattr(combined, "compile_model", spy_compile)
    monkeypatch.setattr(combined, "fit", lambda model, data, cfg, validate=True: {"loss": [0.5]})
    monkeypatch.setattr(combined.time, "perf_counter", lambda: next(clock))
    qat = Stage("qat", learning_rate=0.003)
    model, meta = combined._run_stage(tiny_model, qat, [], tiny_data)
    assert rates == [0.003] and meta == {"history": {"loss": [0.5]}, "train_seconds": 4.0}
    assert any("Quantize" in type(layer).__name__ for layer in model.layers)  # QAT wrappers
    cluster = Stage("cluster", clusters=4, learning_rate=0.002)
    stripped, meta = combined._run_stage(tiny_model, cluster, [], tiny_data)
    assert rates[1:] == [0.002, 0.002]  # the wrapped model, then the stripped one
    assert meta == {"history": {"loss": [0.5]}, "train_seconds": 1.5}
    assert float(stripped.optimizer.learning_rate.numpy()) == pytest.approx(0.002)


def test_train_pipelines_trains_each_first_stage_once_then_skips(tmp_root, tiny_data):
    base = training.train_baseline(
        "lenet_300_100", "mnist", training.TrainConfig(epochs=1, batch_size=128), data=tiny_data
    )
    prune = Stage("prune", sparsity=0.8, epochs=1, learning_rate=1e-3)
    pipelines = [
        [prune, Stage("ptq")],
        [Stage("cluster", clusters=8, epochs=1), Stage("cqat", epochs=1)],
        [prune, Stage("pqat", epochs=1)],
    ]
    bases = {"lenet_300_100": base}
    with pytest.raises(ValueError, match=r"no base model for \['seed_cnn'\]"):
        combined.train_pipelines(bases, {"seed_cnn": pipelines}, tiny_data)
    ran = combined.train_pipelines(bases, {"lenet_300_100": pipelines}, tiny_data, processes=1)
    assert ran == [0, 1]  # prune > (ptq, pqat) in one call, cluster > cqat in the other
    for stages in pipelines:
        _, entries = combined.train_pipeline(base, stages, tiny_data, model_name="lenet_300_100")
        assert entries and all(e.from_cache for e in entries)
    assert combined.train_pipelines(bases, {"lenet_300_100": pipelines}, tiny_data) == []


def test_every_qat_stage_builds_the_same_model_twice(tiny_model):
    for stage in ("qat", "pqat", "cqat", "pcqat"):
        first, second = (combined._quantize(tiny_model, stage) for _ in range(2))
        assert first.to_json() == second.to_json(), stage
