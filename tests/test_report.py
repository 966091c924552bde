"""The Result record, results files, tables, Pareto fronts and timings."""

from __future__ import annotations

import json
import locale
import os
import platform
import re
import sys
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from course_lib import report


def make_result(variant="baseline_float32", **overrides) -> report.Result:
    fields = dict(
        variant=variant,
        model="seed_cnn",
        technique="none",
        accuracy=0.98,
        params=1000,
        nonzero_params=1000,
        macs=5000,
        tflite_bytes=4000,
        tflite_gzip_bytes=3600,
        latency_us=20.0,
        latency_iqr_us=[19.5, 20.6],
    )
    fields.update(overrides)
    if "accuracy_ci95" not in fields:  # a plausible interval around the accuracy
        fields["accuracy_ci95"] = [
            max(0.0, fields["accuracy"] - 0.003),
            min(1.0, fields["accuracy"] + 0.003),
        ]
    return report.Result(**fields)


def test_to_dict_is_flat_and_round_trips():
    result = make_result(
        "pruned_90",
        technique="pruning",
        baseline="baseline_float32",
        nonzero_params=100,
        tflite_gzip_bytes=600,
        extra={"sparsity": 0.9},
    )
    record = result.to_dict()
    assert record["sparsity"] == 0.9 and "extra" not in record
    assert list(record)[:10] == [
        "variant",
        "model",
        "technique",
        "accuracy",
        "params",
        "nonzero_params",
        "macs",
        "tflite_bytes",
        "tflite_gzip_bytes",
        "latency_us",
    ]
    assert report.Result.from_dict(record) == result
    assert "baseline" not in make_result().to_dict()


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"technique": "magic"}, "technique 'magic'"),
        ({"accuracy": 98.0}, "fraction"),
        ({"params": -1}, "params must be >= 0"),
        ({"nonzero_params": 2000}, "exceeds params"),
        ({"extra": {"accuracy": 1}}, "clash"),
    ],
)
def test_invalid_results_are_rejected(overrides, match):
    with pytest.raises(ValueError, match=match):
        make_result(**overrides)


def test_from_dict_names_missing_fields():
    with pytest.raises(ValueError, match="latency_us"):
        report.Result.from_dict(
            {k: v for k, v in make_result().to_dict().items() if k != "latency_us"}
        )


def test_ratio_and_speedup():
    base = make_result()
    small = make_result("small", tflite_gzip_bytes=360, latency_us=10.0)
    assert small.ratio_to(base) == pytest.approx(10.0)
    assert small.speedup_to(base) == pytest.approx(2.0)


def test_write_results_follows_the_course_design(tmp_root):
    base = make_result()
    variant = make_result("pruned", technique="pruning", baseline="baseline_float32")
    path = report.write_results("02_pruning", [base, variant], dataset="mnist", extra={"note": "x"})
    assert path == tmp_root / "results" / "02_pruning.json"
    payload = json.loads(path.read_text())
    assert payload["notebook"] == "02_pruning" and payload["mode"] == "full"
    assert payload["dataset"] == "mnist" and payload["note"] == "x"
    assert {"tensorflow", "tf_keras", "tfmot", "litert", "cpu"} <= set(payload["environment"])
    assert payload["results"][1]["baseline"] == "baseline_float32"
    loaded = report.load_results("02_pruning")
    assert loaded.get("pruned") == variant and loaded.extra == {"note": "x"}
    assert list(report.load_all_results()) == ["02_pruning"]
    with pytest.raises(KeyError, match="has: baseline_float32, pruned"):
        loaded.get("missing")


def test_fast_mode_results_stay_out_of_results(tmp_root, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    path = report.write_results("01_baseline", [make_result()], dataset="mnist")
    assert path == tmp_root / "artifacts" / "fast" / "results" / "01_baseline.json"
    assert json.loads(path.read_text())["mode"] == "fast"
    assert not (tmp_root / "results").exists()


@pytest.mark.parametrize(
    "notebook,results,match",
    [
        ("pruning", [make_result()], "notebook stem"),
        ("02_pruning", [], "no results"),
        ("02_pruning", [make_result(), make_result()], "duplicate"),
        ("02_pruning", [make_result("a", baseline="ghost")], "not in this file"),
    ],
)
def test_write_results_rejects_bad_input(tmp_root, notebook, results, match):
    with pytest.raises(ValueError, match=match):
        report.write_results(notebook, results, dataset="mnist")


def test_load_results_errors(tmp_root):
    with pytest.raises(FileNotFoundError, match="run notebooks/03_quantization.ipynb"):
        report.load_results("03_quantization")
    (tmp_root / "results").mkdir(exist_ok=True)
    (tmp_root / "results" / "03_quantization.json").write_text('{"notebook": "x"}')
    with pytest.raises(ValueError, match="not a results file"):
        report.load_results("03_quantization")


def test_comparison_table_uses_each_variants_baseline():
    base = make_result()
    half = make_result(
        "half", baseline="baseline_float32", accuracy=0.97, tflite_gzip_bytes=1800, latency_us=40.0
    )
    table = report.comparison_table([base, half])
    row = dict(zip(table.headers, table.rows[1], strict=True))
    assert row["gzip ratio"] == "2.00x" and row["speed-up"] == "0.50x"
    assert row["Δ points"] == "-1.00" and row["accuracy %"] == "97.00"
    with pytest.raises(ValueError, match="not among the results"):
        report.comparison_table([half])
    with pytest.raises(ValueError, match="no results"):
        report.comparison_table([])


def test_table_renders_three_ways():
    table = report.Table(["a", "b"], [[1, "<x>"]])
    assert table.to_markdown().splitlines() == ["| a | b |", "|---|---|", "| 1 | <x> |"]
    assert "&lt;x&gt;" in table._repr_html_()
    assert str(table).splitlines()[0].startswith("a")
    with pytest.raises(ValueError, match="2 cells"):
        report.Table(["a"], [[1, 2]])


def test_pareto_front():
    sizes = [100, 50, 50, 200, 10]
    accuracies = [0.99, 0.98, 0.97, 0.99, 0.90]
    assert report.pareto_front(sizes, accuracies) == [4, 1, 0]
    with pytest.raises(ValueError, match="differ in length"):
        report.pareto_front([1], [])


@pytest.mark.parametrize(
    "seconds,text",
    [(None, "not measured"), (42.4, "42 s"), (95, "1 min 35 s"), (600, "10 min 00 s")],
)
def test_format_seconds(seconds, text):
    assert report.format_seconds(seconds) == text


def test_timings_are_recorded(tmp_root):
    assert report.load_timings()["notebooks"] == {}
    report.record_timing("01_baseline", full_s=95.0)
    report.record_timing("01_baseline", fast_s=20.0)
    entry = report.load_timings()["notebooks"]["01_baseline"]
    assert entry["full_s"] == 95.0 and entry["fast_s"] == 20.0 and entry["cpu"]
    assert report.load_timings()["mode"] == "full"
    report.record_timing("01_baseline", full_cached_s=12.0)
    assert report.load_timings()["notebooks"]["01_baseline"]["full_s"] == 95.0  # merged, kept


def test_times_from_another_cpu_are_dropped_not_relabelled(tmp_root, monkeypatch):
    monkeypatch.setattr(report.system, "cpu_name", lambda: "CPU A")
    report.record_timing("01_baseline", full_s=95.0, fast_s=20.0)
    report.record_timing("02_pruning", full_s=50.0)
    report.record_course_time("course_first_run_s", 600.0, ["01_baseline"])
    report.record_course_time("course_fast_cached_s", 60.0)
    monkeypatch.setattr(report.system, "cpu_name", lambda: "CPU B")
    report.record_timing("01_baseline", full_cached_s=12.0)
    report.record_course_time("course_cached_s", 100.0)
    timings = report.load_timings()
    entry = timings["notebooks"]["01_baseline"]
    assert {k: v for k, v in entry.items() if k != "measured"} == {
        "full_cached_s": 12.0,
        "cpu": "CPU B",
    }
    assert timings["notebooks"]["02_pruning"]["cpu"] == "CPU A"  # not re-measured: keeps its CPU
    assert {k: v for k, v in timings.items() if k.startswith("course_")} == {
        "course_cached_s": 100.0,
        "course_cpu": "CPU B",
        "course_measured": timings["course_measured"],
    }


def _write_payload(folder, text):
    path = folder / "02_pruning.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"notebook": "02_pruning", "mode": "fu', r"not valid JSON.*cut short"),
        ("[]", r"holds a JSON list, not a results record"),
        ('{"notebook": "02_pruning"}', r"lacks \['mode', 'dataset', 'environment', 'results'\]"),
    ],
)
def test_corrupt_results_files_name_the_file_and_the_fix(tmp_path, text, match):
    path = _write_payload(tmp_path, text)
    with pytest.raises(report.ResultsFileError, match=match) as err:
        report.load_results("02_pruning", tmp_path)
    assert str(path) in str(err.value) and "checkout -- results/02_pruning.json" in str(err.value)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("accuracy", "0.98", r"accuracy must be a number, got str"),
        ("accuracy", 98.01, r"looks like a percentage"),
        ("tflite_gzip_bytes", 0, r"tflite_gzip_bytes must be > 0"),
        ("latency_us", 0.0, r"latency_us must be > 0"),
        ("params", 1.5, r"params must be a whole number"),
        ("accuracy", True, r"accuracy must be a number, got bool"),
    ],
)
def test_bad_values_in_a_results_row_are_named(tmp_path, field, value, match):
    row = make_result().to_dict()
    row[field] = value
    payload = {
        "notebook": "02_pruning",
        "mode": "full",
        "dataset": "mnist",
        "environment": {},
        "results": [row],
    }
    _write_payload(tmp_path, json.dumps(payload))
    with pytest.raises(report.ResultsFileError, match=match) as err:
        report.load_results("02_pruning", tmp_path)
    assert "02_pruning.json, row 'baseline_float32'" in str(err.value)
    assert isinstance(err.value, ValueError)  # callers catching ValueError still work


def test_numpy_numbers_are_accepted_in_results():
    result = make_result(accuracy=np.float32(0.98), params=np.int64(1000), nonzero_params=1000)
    assert type(result.params) is int and type(result.accuracy) is float
    json.dumps(result.to_dict())  # serialisable


def test_variants_table_columns_and_leading_column():
    base = make_result()
    half = make_result("half", tflite_gzip_bytes=1800, latency_us=10.0, accuracy=0.97)
    table = report.variants_table(
        [(base, base), (half, base)], ("variant", "delta", "ratio", "speedup"), first=("nb", "xy")
    )
    assert table.headers == ["nb", "variant", "Δ points", "gzip ratio", "speed-up"]
    assert table.rows[1] == ["y", "half", "-1.00", "2.00x", "2.00x"]  # 3600/1800, 20/10
    own = ("latency ms", lambda r, b: f"{r.latency_us / 1000:.3f}")  # a caller's own column
    table = report.variants_table([(half, base)], ("variant", own))
    assert table.headers == ["variant", "latency ms"] and table.rows == [["half", "0.010"]]
    with pytest.raises(ValueError, match="unknown columns"):
        report.variants_table([(base, base)], ("variant", "colour"))
    with pytest.raises(ValueError, match="2 rows"):
        report.variants_table([(base, base), (half, base)], ("variant",), first=("nb", "x"))


# --- Exact behaviour a learner relies on (issue 13: mutation testing) ----------------------


def _hand_result(**overrides) -> report.Result:
    """A Result written out by hand, no computed defaults (unlike ``make_result``)."""
    fields = dict(
        variant="base",
        model="seed_cnn",
        technique="none",
        accuracy=0.5,
        params=10,
        nonzero_params=10,
        macs=100,
        tflite_bytes=400,
        tflite_gzip_bytes=300,
        latency_us=20.0,
    )
    fields.update(overrides)
    return report.Result(**fields)


@pytest.fixture
def local_zone():
    """Set this process's local time zone (a POSIX TZ string) for one test, then restore it."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX-only")
    old = os.environ.get("TZ")

    def set_zone(zone: str) -> None:
        os.environ["TZ"] = zone
        time.tzset()

    yield set_zone
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"technique": "magic"},
            "technique 'magic' is not one of: none, pruning, quantization, combined, "
            "filter_pruning, architecture, low_rank, distillation, mixed_precision, "
            "learned_compression",
        ),
        ({"accuracy": "0.5"}, "accuracy must be a number, got str '0.5'"),
        ({"accuracy": None}, "accuracy must be a number, got NoneType None"),
        ({"accuracy": float("nan")}, "accuracy must be finite, got nan"),
        ({"latency_us": float("inf")}, "latency_us must be finite, got inf"),
        ({"latency_us": "20"}, "latency_us must be a number, got str '20'"),
        ({"accuracy": -0.01}, "accuracy must be a fraction in [0, 1], got -0.01"),
        (
            {"accuracy": 1.5},
            "accuracy must be a fraction in [0, 1], got 1.5"
            " (it looks like a percentage: store 0.9801, not 98.01)",
        ),
        (
            {"accuracy": 100},
            "accuracy must be a fraction in [0, 1], got 100.0"
            " (it looks like a percentage: store 0.9801, not 98.01)",
        ),
        ({"accuracy": 100.5}, "accuracy must be a fraction in [0, 1], got 100.5"),
        ({"params": 1.5}, "params must be a whole number, got float 1.5"),
        ({"macs": True}, "macs must be a whole number, got bool True"),
        ({"tflite_bytes": "400"}, "tflite_bytes must be a whole number, got str '400'"),
        ({"params": -1}, "params must be >= 0, got -1"),
        ({"nonzero_params": -1}, "nonzero_params must be >= 0, got -1"),
        ({"macs": -1}, "macs must be >= 0, got -1"),
        ({"tflite_bytes": -1}, "tflite_bytes must be >= 0, got -1"),
        ({"tflite_gzip_bytes": -1}, "tflite_gzip_bytes must be >= 0, got -1"),
        ({"tflite_bytes": 0}, "tflite_bytes must be > 0, got 0"),
        ({"tflite_gzip_bytes": 0}, "tflite_gzip_bytes must be > 0, got 0"),
        ({"latency_us": 0}, "latency_us must be > 0, got 0.0"),
        ({"latency_us": -1.0}, "latency_us must be > 0, got -1.0"),
        ({"nonzero_params": 11}, "nonzero_params (11) exceeds params (10)"),
        (
            {"accuracy_ci95": [0.6, 0.4]},
            "accuracy_ci95 must be [low, high] with 0.0 <= low <= high, got [0.6, 0.4]",
        ),
        (
            {"accuracy_ci95": [0.5]},
            "accuracy_ci95 must be [low, high] with 0.0 <= low <= high, got [0.5]",
        ),
        (
            {"accuracy_ci95": [0.4, 0.5, 0.6]},
            "accuracy_ci95 must be [low, high] with 0.0 <= low <= high, got [0.4, 0.5, 0.6]",
        ),
        (  # checked even when the accuracy has no interval
            {"latency_iqr_us": [-1.0, 20.0]},
            "latency_iqr_us must be [low, high] with 0.0 <= low <= high, got [-1.0, 20.0]",
        ),
        (
            {"accuracy_ci95": [0.5002, 0.6]},
            "accuracy 0.5 lies outside its interval [0.5002, 0.6]",
        ),
        (
            {"accuracy_ci95": [0.4, 0.4998]},
            "accuracy 0.5 lies outside its interval [0.4, 0.4998]",
        ),
        (
            {"extra": {"model": "x", "accuracy": 1, "sparsity": 0.5}},
            "extra fields ['accuracy', 'model'] clash with Result's own fields",
        ),
    ],
)
def test_result_refuses_impossible_values_with_the_exact_message(overrides, message):
    with pytest.raises(ValueError) as err:
        _hand_result(**overrides)
    assert str(err.value) == message


def test_numpy_bools_are_not_numbers():
    with pytest.raises(ValueError, match=r"^accuracy must be a number, got bool "):
        _hand_result(accuracy=np.bool_(True))
    with pytest.raises(ValueError, match=r"^params must be a whole number, got bool "):
        _hand_result(params=np.bool_(True))


def test_result_accepts_the_boundaries_of_every_range():
    edge = _hand_result(
        accuracy=0.0,
        accuracy_ci95=[0.0, 0.0],  # a zero-width interval at 0
        params=0,
        nonzero_params=0,
        macs=0,
        tflite_bytes=1,
        tflite_gzip_bytes=1,
        latency_us=0.5,
        latency_iqr_us=[0.5, 0.5],
    )
    assert (edge.params, edge.nonzero_params, edge.macs) == (0, 0, 0)
    assert (edge.tflite_bytes, edge.tflite_gzip_bytes, edge.latency_us) == (1, 1, 0.5)
    assert _hand_result(accuracy=1, accuracy_ci95=[0.99, 1.0]).accuracy == 1.0
    assert _hand_result(nonzero_params=10).nonzero_params == 10  # all parameters nonzero
    # the accuracy may lie up to 1e-4 outside its interval (rounding), boundaries included
    assert _hand_result(accuracy_ci95=[0.50005, 0.6]).accuracy == 0.5
    assert _hand_result(accuracy_ci95=[0.4, 0.49995]).accuracy == 0.5
    assert _hand_result(accuracy=0.25 - 1e-4, accuracy_ci95=[0.25, 0.3]).accuracy_ci95 == [
        0.25,
        0.3,
    ]
    assert _hand_result(accuracy=0.5 + 1e-4, accuracy_ci95=[0.4, 0.5]).accuracy_ci95 == [0.4, 0.5]


def test_result_stores_plain_python_numbers():
    result = _hand_result(
        accuracy=np.float32(0.5),
        latency_us=np.float64(20.0),
        params=np.int64(10),
        nonzero_params=np.int32(9),
        macs=np.int64(100),
        tflite_bytes=np.int64(400),
        tflite_gzip_bytes=np.uint16(300),
        accuracy_ci95=(np.float32(0.25), np.float32(0.75)),
        latency_iqr_us=np.array([19, 21]),
    )
    assert [type(getattr(result, f)) for f in ("accuracy", "latency_us")] == [float, float]
    counts = ("params", "nonzero_params", "macs", "tflite_bytes", "tflite_gzip_bytes")
    assert [getattr(result, f) for f in counts] == [10, 9, 100, 400, 300]
    assert all(type(getattr(result, f)) is int for f in counts)
    assert result.accuracy_ci95 == [0.25, 0.75] and result.latency_iqr_us == [19.0, 21.0]
    assert all(type(v) is float for v in result.accuracy_ci95 + result.latency_iqr_us)
    assert json.loads(json.dumps(result.to_dict()))["accuracy_ci95"] == [0.25, 0.75]


def test_to_dict_writes_exactly_the_fields_that_are_set():
    result = _hand_result(latency_iqr_us=[19.0, 21.0], extra={"sparsity": 0.9})
    assert result.to_dict() == {  # no accuracy_ci95, no baseline: they are None
        "variant": "base",
        "model": "seed_cnn",
        "technique": "none",
        "accuracy": 0.5,
        "params": 10,
        "nonzero_params": 10,
        "macs": 100,
        "tflite_bytes": 400,
        "tflite_gzip_bytes": 300,
        "latency_us": 20.0,
        "latency_iqr_us": [19.0, 21.0],
        "sparsity": 0.9,
    }
    by_hand = _hand_result().to_dict()  # no spread either: a record built by hand
    assert sorted(by_hand) == sorted(
        ["variant", "model", "technique", "accuracy", "params", "nonzero_params", "macs"]
        + ["tflite_bytes", "tflite_gzip_bytes", "latency_us"]
    )
    assert report.Result.from_dict(by_hand) == _hand_result()
    full = _hand_result(accuracy_ci95=[0.4, 0.6], latency_iqr_us=[19.0, 21.0], baseline="ref")
    assert list(full.to_dict())[-3:] == ["accuracy_ci95", "latency_iqr_us", "baseline"]
    assert full.to_dict()["baseline"] == "ref"


def test_from_dict_needs_only_the_measured_fields():
    record = {
        "variant": "v",
        "model": "seed_cnn",
        "technique": "pruning",
        "accuracy": 0.5,
        "params": 10,
        "nonzero_params": 5,
        "macs": 100,
        "tflite_bytes": 400,
        "tflite_gzip_bytes": 200,
        "latency_us": 20.0,
        "sparsity": 0.5,
        "pipeline": "prune",
    }
    result = report.Result.from_dict(record)
    assert result.extra == {"sparsity": 0.5, "pipeline": "prune"}
    assert (result.baseline, result.accuracy_ci95, result.latency_iqr_us) == (None, None, None)
    assert (result.technique, result.nonzero_params) == ("pruning", 5)
    with pytest.raises(ValueError) as err:
        report.Result.from_dict({k: v for k, v in record.items() if k not in ("model", "macs")})
    assert str(err.value) == "result record lacks the fields ['macs', 'model']"


def test_ratio_and_speedup_by_hand():
    base = _hand_result(tflite_gzip_bytes=300, latency_us=20.0)
    small = _hand_result(tflite_gzip_bytes=120, latency_us=25.0)
    assert small.ratio_to(base) == 2.5  # 300 / 120
    assert small.speedup_to(base) == 0.8  # 20 / 25: slower
    assert base.ratio_to(small) == 0.4 and base.speedup_to(small) == 1.25


def test_environment_info_names_versions_cpu_and_machine():
    from course_lib import system
    from course_lib.compat import versions

    info = report.environment_info()
    assert list(info) == [
        "tensorflow",
        "tf_keras",
        "tfmot",
        "litert",
        "numpy",
        "python",
        "cpu",
        "machine",
    ]
    expected = versions()
    assert all(info[k] == expected[k] for k in expected)
    assert info["numpy"] == np.__version__ and info["python"] == platform.python_version()
    assert info["cpu"] == system.cpu_name() and info["machine"] == platform.machine()


@pytest.mark.parametrize(
    "notebook", ["baseline", "1_baseline", "01_Baseline", "01_baseline-v2", "01_", "01_x.json"]
)
def test_notebook_names_must_be_stems(tmp_root, notebook):
    message = f"notebook must be a notebook stem like '01_baseline', got {notebook!r}"
    for call in (
        lambda: report.results_path(notebook),
        lambda: report.write_results(notebook, [make_result()], dataset="mnist"),
        lambda: report.load_results(notebook),
        lambda: report.record_timing(notebook, full_s=1.0),
    ):
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == message


def test_results_path_puts_other_datasets_in_their_own_folder(tmp_root):
    assert report.results_path("02_pruning") == tmp_root / "results" / "02_pruning.json"
    assert report.results_path("02_pruning_v2") == tmp_root / "results" / "02_pruning_v2.json"
    folder = tmp_root / "results" / "fashion_mnist"
    assert report.results_path("02_pruning", "fashion_mnist") == folder / "02_pruning.json"
    assert folder.is_dir()
    # a second chapter (or a re-run) finds the folder already there
    assert (
        report.results_path("03_quantization", "fashion_mnist") == folder / "03_quantization.json"
    )


def test_write_results_takes_the_dataset_the_rows_recorded(tmp_root):
    rows = [make_result(extra={"dataset": "fashion_mnist"})]
    path = report.write_results("02_pruning", rows)
    assert path == tmp_root / "results" / "fashion_mnist" / "02_pruning.json"
    assert json.loads(path.read_text())["dataset"] == "fashion_mnist"
    assert report.write_results("02_pruning", rows, dataset="fashion_mnist") == path  # again
    assert not (tmp_root / "results" / "02_pruning.json").exists()  # MNIST's file untouched


@pytest.mark.parametrize(
    "results, dataset, message",
    [
        ([], "mnist", "no results to write"),
        ([make_result("a"), make_result("a")], "mnist", "duplicate variant names: ['a']"),
        (
            [make_result("a", baseline="ghost")],
            "mnist",
            "variant 'a' names baseline 'ghost', which is not in this file",
        ),
        (
            [make_result("a"), make_result("b", accuracy_ci95=None)],
            "mnist",
            "rows ['b'] lack accuracy_ci95 / latency_iqr_us: no number without its spread "
            "(measure variants with course_lib.variants.measure_tflite, which fills both)",
        ),
        (
            [make_result("a", latency_iqr_us=None), make_result("b")],
            "mnist",
            "rows ['a'] lack accuracy_ci95 / latency_iqr_us: no number without its spread "
            "(measure variants with course_lib.variants.measure_tflite, which fills both)",
        ),
        (
            [
                make_result("a", extra={"dataset": "mnist"}),
                make_result("b", extra={"dataset": "fashion_mnist"}),
            ],
            None,
            "results mix datasets ['fashion_mnist', 'mnist']: write one file per dataset",
        ),
        (
            [make_result("a", extra={"dataset": "fashion_mnist"})],
            "mnist",
            "dataset='mnist' was passed but the results were measured on 'fashion_mnist'",
        ),
        (
            [make_result("a")],
            None,
            "the results do not record the dataset they were measured on: pass it, "
            "e.g. write_results(notebook, results, dataset='mnist')",
        ),
    ],
)
def test_write_results_refuses_with_the_exact_message(tmp_root, results, dataset, message):
    with pytest.raises(ValueError) as err:
        report.write_results("02_pruning", results, dataset=dataset)
    assert str(err.value) == message
    assert not (tmp_root / "results" / "02_pruning.json").exists()


def test_written_results_read_back_field_by_field(tmp_root, local_zone):
    local_zone("EAST-14")  # a local clock 14 h ahead of UTC: `created` must still be UTC
    before = datetime.now(UTC).replace(microsecond=0)
    base = make_result()
    path = report.write_results("02_pruning", [base], dataset="mnist", extra={"seconds": 3})
    after = datetime.now(UTC)
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", payload["created"])
    created = datetime.strptime(payload["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= created <= after
    loaded = report.load_results("02_pruning")
    assert (loaded.notebook, loaded.mode, loaded.dataset) == ("02_pruning", "full", "mnist")
    assert loaded.environment == payload["environment"] == report.environment_info()
    assert loaded.created == payload["created"]
    assert loaded.results == [base] and loaded.extra == {"seconds": 3}
    with pytest.raises(KeyError) as err:
        loaded.get("pruned")
    assert err.value.args[0] == "02_pruning has no variant 'pruned'; it has: baseline_float32"


def _restore(root, notebook="02_pruning"):
    return (
        f'Restore the committed file with `git -C "{root}" checkout -- results/{notebook}.json`, '
        f"or re-run notebooks/{notebook}.ipynb to measure it again."
    )


def _payload(results, **fields):
    payload = {"notebook": "02_pruning", "mode": "full", "dataset": "mnist", "environment": {}}
    payload.update(fields)
    payload["results"] = results
    return json.dumps(payload)


def test_a_results_file_without_created_reads_as_empty_created(tmp_path):
    _write_payload(tmp_path, _payload([make_result().to_dict()], environment={"cpu": "x"}))
    loaded = report.load_results("02_pruning", tmp_path)
    assert loaded.created == "" and loaded.environment == {"cpu": "x"}
    assert (loaded.notebook, loaded.mode, loaded.dataset) == ("02_pruning", "full", "mnist")


@pytest.mark.parametrize(
    "text, problem",
    [
        (_payload([]), "{path}: 'results' must be a non-empty list of rows."),
        (_payload({}), "{path}: 'results' must be a non-empty list of rows."),
        (_payload("rows"), "{path}: 'results' must be a non-empty list of rows."),
        (_payload([[1, 2]]), "{path}, row '#0': a row must be an object, got list."),
        (
            _payload([make_result().to_dict(), {"model": "seed_cnn"}]),
            "{path}, row '#1': result record lacks the fields ['accuracy', 'latency_us', "
            "'macs', 'nonzero_params', 'params', 'technique', 'tflite_bytes', "
            "'tflite_gzip_bytes', 'variant'].",
        ),
        (
            "[]",
            "{path} holds a JSON list, not a results record "
            "(an object with notebook, mode, dataset, environment, results).",
        ),
        (
            '{"notebook": "02_pruning"}',
            "{path} is not a results file: it lacks ['mode', 'dataset', 'environment', 'results'].",
        ),
    ],
)
def test_a_broken_results_file_names_the_row_and_the_restore_command(tmp_root, text, problem):
    folder = tmp_root / "results"
    folder.mkdir()
    path = _write_payload(folder, text)
    with pytest.raises(report.ResultsFileError) as err:
        report.load_results("02_pruning")
    assert str(err.value) == problem.format(path=path) + " " + _restore(tmp_root)


def test_a_cut_results_file_and_a_missing_one(tmp_root):
    folder = tmp_root / "results"
    folder.mkdir()
    path = folder / "04_combined.json"
    with pytest.raises(FileNotFoundError) as missing:
        report.load_results("04_combined")
    assert str(missing.value) == (
        f"{path} does not exist; run notebooks/04_combined.ipynb (or `make course`) first"
    )
    path.write_text('{"notebook": "04_comb')
    with pytest.raises(report.ResultsFileError) as err:
        report.load_results("04_combined")
    assert str(err.value).startswith(f"{path} is not valid JSON (")
    assert str(err.value).endswith("): is it cut short? " + _restore(tmp_root, "04_combined"))


def test_results_files_are_read_as_utf8_whatever_the_locale(tmp_root):
    rows = [make_result(extra={"note": "latency in µs, Δ points"})]
    report.write_results("02_pruning", rows, dataset="mnist")
    old = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale, as on some servers
        if sys.flags.utf8_mode or locale.getencoding().lower().replace("-", "") == "utf8":
            pytest.skip("this platform reads files as UTF-8 in every locale")
        loaded = report.load_results("02_pruning")
    finally:
        locale.setlocale(locale.LC_CTYPE, old)
    assert loaded.results[0].extra["note"] == "latency in µs, Δ points"


def test_load_all_results_reads_the_folder_it_is_given(tmp_root):
    folder = tmp_root / "elsewhere"  # not this mode's results folder
    folder.mkdir()
    for notebook in ("02_pruning", "01_baseline"):
        text = _payload([make_result().to_dict()], notebook=notebook)
        (folder / f"{notebook}.json").write_text(text)
    (folder / "timings.json").write_text("{}")  # not a notebook: skipped
    (folder / "notes.json").write_text("[]")
    loaded = report.load_all_results(folder)
    assert list(loaded) == ["01_baseline", "02_pruning"]
    assert loaded["01_baseline"].notebook == "01_baseline"
    assert report.load_all_results() == {}  # the default folder holds nothing


@pytest.mark.parametrize(
    "xs, ys, front",
    [
        ([], [], []),
        ([5], [0.5], [0]),
        ([10, 10, 20], [0.9, 0.9, 0.8], [0, 1]),  # identical points: neither dominates
        ([10, 10], [0.8, 0.9], [1]),  # same size, more accurate wins
        ([10, 20], [0.9, 0.9], [0]),  # same accuracy, smaller wins
        ([30, 10, 20], [0.99, 0.90, 0.95], [1, 2, 0]),  # all on the front, by size
    ],
)
def test_pareto_front_by_hand(xs, ys, front):
    assert report.pareto_front(xs, ys) == front


def test_table_text_html_and_markdown_by_hand():
    table = report.Table(["a", "R&D"], [[1, "<x>"], ["long", 2.5]])
    text = "a     R&D\n----  ---\n1     <x>\nlong  2.5"
    assert str(table) == text and repr(table) == text
    assert table._repr_html_() == (
        "<table><thead><tr><th>a</th><th>R&amp;D</th></tr></thead><tbody>"
        "<tr><td>1</td><td>&lt;x&gt;</td></tr><tr><td>long</td><td>2.5</td></tr>"
        "</tbody></table>"
    )
    assert table.to_markdown() == "| a | R&D |\n|---|---|\n| 1 | <x> |\n| long | 2.5 |"
    narrow = report.Table(["name", "n"], [["x", 12345]])  # columns as wide as their widest cell
    assert str(narrow) == "name  n    \n----  -----\nx     12345"


def test_an_empty_table_still_has_its_header():
    table = report.Table(["a", "bb"], [])
    assert str(table) == "a  bb\n-  --"
    assert table._repr_html_() == (
        "<table><thead><tr><th>a</th><th>bb</th></tr></thead><tbody></tbody></table>"
    )
    with pytest.raises(ValueError) as err:
        report.Table(["a"], [[1, 2]])
    assert str(err.value) == "row ['1', '2'] has 2 cells, expected 1"


@pytest.mark.parametrize(
    "n, text",
    [(0, "0"), (999, "999"), (216650, "216,650"), (1234567, "1,234,567"), (999.6, "1,000")],
)
def test_fmt_int(n, text):
    assert report.fmt_int(n) == text


COMPARISON_HEADERS = [
    "variant",
    "accuracy %",
    "Δ points",
    "nonzero params",
    "MACs",
    ".tflite bytes",
    "gzip bytes",
    "gzip ratio",
    "latency µs",
    "speed-up",
]


def test_comparison_table_every_cell_by_hand():
    base = _hand_result(
        variant="float",
        accuracy=0.98,
        params=12000,
        nonzero_params=12000,
        macs=50000,
        tflite_bytes=48000,
        tflite_gzip_bytes=36000,
        latency_us=20.0,
    )
    pruned = _hand_result(
        variant="pruned",
        baseline="float",
        accuracy=0.97,
        params=12000,
        nonzero_params=1200,
        macs=50000,
        tflite_bytes=48000,
        tflite_gzip_bytes=9000,
        latency_us=8.0,
    )
    table = report.comparison_table([base, pruned])
    assert table.headers == COMPARISON_HEADERS
    assert table.rows == [
        [
            "float",
            "98.00",
            "+0.00",
            "12,000",
            "50,000",
            "48,000",
            "36,000",
            "1.00x",
            "20.0",
            "1.00x",
        ],
        ["pruned", "97.00", "-1.00", "1,200", "50,000", "48,000", "9,000", "4.00x", "8.0", "2.50x"],
    ]
    # an explicit baseline wins over the one each row names, even one not in the list
    other = _hand_result(variant="ref", accuracy=0.99, tflite_gzip_bytes=18000, latency_us=16.0)
    table = report.comparison_table([pruned], baseline=other)
    assert table.rows == [
        ["pruned", "97.00", "-2.00", "1,200", "50,000", "48,000", "9,000", "2.00x", "8.0", "2.00x"]
    ]
    with pytest.raises(ValueError) as err:
        report.comparison_table([pruned])
    assert str(err.value) == "baseline 'float' of 'pruned' is not among the results"
    with pytest.raises(ValueError) as err:
        report.comparison_table([])
    assert str(err.value) == "no results to tabulate"


def test_variants_table_model_technique_and_leading_column_by_hand():
    base = _hand_result()
    pruned = _hand_result(variant="p", technique="pruning", model="lenet5")
    table = report.variants_table(
        [(base, base), (pruned, base)], ("model", "technique"), first=("seed", [0, 1])
    )
    assert table.headers == ["seed", "model", "technique"]
    assert table.rows == [["0", "seed_cnn", "none"], ["1", "lenet5", "pruning"]]
    table = report.variants_table([(pruned, base)], ("variant", "accuracy"))
    assert (table.headers, table.rows) == (["variant", "accuracy %"], [["p", "50.00"]])
    with pytest.raises(ValueError) as err:
        report.variants_table([(base, base)], ("variant", "colour", "size"))
    assert str(err.value) == (
        "unknown columns ['colour', 'size']; known: variant, model, technique, accuracy, "
        "delta, nonzero, macs, bytes, gzip, ratio, download, download_ratio, latency, speedup"
    )
    with pytest.raises(ValueError) as err:
        report.variants_table([(base, base), (pruned, base)], ("variant",), first=("nb", ["x"]))
    assert str(err.value) == "1 values for column 'nb', 2 rows"


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0 s"),
        (59.4, "59 s"),
        (59.6, "1 min 00 s"),
        (60, "1 min 00 s"),
        (61, "1 min 01 s"),
        (3599.7, "60 min 00 s"),
    ],
)
def test_format_seconds_boundaries(seconds, text):
    assert report.format_seconds(seconds) == text


def test_timings_live_in_the_committed_results_folder(tmp_root, monkeypatch):
    assert report.timings_path() == tmp_root / "results" / "timings.json"
    monkeypatch.setenv("COURSE_FAST", "1")  # times are full-run facts, even from fast mode
    assert report.timings_path() == tmp_root / "results" / "timings.json"
    assert report.load_timings() == {"mode": "full", "notebooks": {}}


def _utc_dates(call):
    """Run ``call`` and return its result with the UTC dates just before and after it."""
    before = datetime.now(UTC).strftime("%Y-%m-%d")
    result = call()
    return result, {before, datetime.now(UTC).strftime("%Y-%m-%d")}


@pytest.mark.parametrize("zone", ["EAST-14", "WEST+12"])  # together: a local date != UTC's
def test_record_timing_and_course_time_write_exactly_this(tmp_root, local_zone, zone):
    from course_lib import system

    local_zone(zone)
    path, dates = _utc_dates(lambda: report.record_timing("01_baseline", full_s=95.0))
    assert path == tmp_root / "results" / "timings.json"
    timings = json.loads(path.read_text())
    measured = timings["notebooks"]["01_baseline"]["measured"]
    assert measured in dates
    assert timings == {
        "mode": "full",
        "notebooks": {
            "01_baseline": {"full_s": 95.0, "cpu": system.cpu_name(), "measured": measured}
        },
    }
    path, dates = _utc_dates(lambda: report.record_course_time("course_first_run_s", 1234.56))
    assert path == tmp_root / "results" / "timings.json"
    timings = json.loads(path.read_text())
    assert timings["course_measured"] in dates
    assert timings == {
        "mode": "full",
        "notebooks": {
            "01_baseline": {"full_s": 95.0, "cpu": system.cpu_name(), "measured": measured}
        },
        "course_first_run_s": 1234.6,  # rounded to 0.1 s
        "course_cpu": system.cpu_name(),
        "course_measured": timings["course_measured"],
    }


def test_record_timing_on_a_file_with_only_course_times(tmp_root):
    path = tmp_root / "results" / "timings.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"mode": "fast", "course_first_run_s": 3000.0}))
    report.record_timing("02_pruning", full_s=1.0)
    report.record_timing("01_baseline", full_s=2.0)
    timings = json.loads(path.read_text())
    assert sorted(timings) == ["course_first_run_s", "mode", "notebooks"]
    assert timings["mode"] == "full" and timings["course_first_run_s"] == 3000.0
    assert list(timings["notebooks"]) == ["01_baseline", "02_pruning"]  # sorted by notebook
    report.record_course_time("course_cached_run_s", 59.94)
    timings = json.loads(path.read_text())
    assert timings["course_cached_run_s"] == 59.9 and timings["course_first_run_s"] == 3000.0
    assert list(timings["notebooks"]) == ["01_baseline", "02_pruning"]


GOOD_DEPLOYMENT = {
    "target": "iot",
    "runtime": "tflm",
    "threads": 1,
    "batch": 1,
    "throughput_ips": 1234.5,
    "load_ms": 0.0,
    "peak_rss_bytes": np.int64(300_000_000),
    "tflm_arena_bytes": 45_168,
    "tflm_accuracy": 0.9755,
    "tflm_agreement": 1.0,
    "flash_bytes": 220_144,
}


def test_deployment_fields_are_kept_and_round_trip():
    r = make_result("seed_cnn_int8_tflm", technique="quantization", extra=dict(GOOD_DEPLOYMENT))
    again = report.Result.from_dict(r.to_dict())
    assert again.extra == GOOD_DEPLOYMENT and again.to_dict()["tflm_arena_bytes"] == 45_168
    assert set(report.DEPLOYMENT_FIELDS) == set(GOOD_DEPLOYMENT)
    assert report.TARGETS == ("mobile", "cloud", "iot")
    for target in ("mobile", "cloud"):
        make_result(extra={"target": target})


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("target", "phone", "target must be one of TARGETS"),
        ("target", None, "target must be one of TARGETS"),
        ("runtime", "", "runtime must be the runtime"),
        ("runtime", 3, "runtime must be the runtime"),
        ("threads", 0, "threads must be whole number >= 1"),
        ("threads", 1.5, "threads must be a whole number"),
        ("batch", 0, "batch must be whole number >= 1"),
        ("batch", True, "batch must be a whole number"),
        ("throughput_ips", 0.0, "throughput_ips must be images per second, > 0"),
        ("throughput_ips", float("nan"), "throughput_ips must be finite"),
        ("load_ms", -0.1, "load_ms must be interpreter creation"),
        ("load_ms", "1", "load_ms must be a number"),
        ("peak_rss_bytes", 0, "peak_rss_bytes must be peak resident"),
        ("tflm_arena_bytes", 0, "tflm_arena_bytes must be smallest TFLM"),
        ("tflm_arena_bytes", 4.0, "tflm_arena_bytes must be a whole number"),
        ("flash_bytes", -1, "flash_bytes must be bytes"),
        (
            "tflm_accuracy",
            97.5,
            r"tflm_accuracy must be accuracy through TFLM, fraction in \[0, 1\]",
        ),
        ("tflm_accuracy", -0.01, "tflm_accuracy must be accuracy through TFLM"),
        ("tflm_agreement", 1.01, "tflm_agreement must be share of top-1"),
    ],
)
def test_deployment_fields_refuse_bad_values_by_name(name, bad, message):
    with pytest.raises(ValueError, match=message):
        make_result(extra={**GOOD_DEPLOYMENT, name: bad})


def test_a_learned_row_is_compared_on_its_shipped_bytes():
    base = make_result()  # 3,600 gzip bytes
    learned = make_result(
        "learned",
        technique="learned_compression",
        tflite_gzip_bytes=1200,
        baseline="baseline_float32",
        extra={"shipped_bytes": 90},
    )
    assert learned.download_bytes == 90 and base.download_bytes == 3600
    assert learned.ratio_to(base) == pytest.approx(40.0)  # 3,600 / 90, not 3,600 / 1,200
    row = report.variants_table([(learned, base)], ("download", "download_ratio")).rows[0]
    assert row == ["90", "40.00x"]
    back = report.Result.from_dict(learned.to_dict())
    assert back.extra["shipped_bytes"] == 90 and back.ratio_to(base) == pytest.approx(40.0)


@pytest.mark.parametrize("bad", [0, -5, 1.5, "90", True])
def test_shipped_bytes_must_be_a_positive_whole_number(bad):
    with pytest.raises(ValueError, match="shipped_bytes"):
        make_result(technique="learned_compression", extra={"shipped_bytes": bad})


def test_a_wide_tables_repr_is_one_short_line_and_print_keeps_the_text():
    narrow = report.Table(["a", "b"], [["1", "2"]])
    assert repr(narrow) == str(narrow)
    wide = report.Table(["name", "note"], [["x" * 60, "y" * 60], ["z", "w"]])
    assert max(len(line) for line in str(wide).splitlines()) > report.MAX_LINE
    assert repr(wide) == "<table: 2 rows x 2 columns, shown as HTML; print() it for text>"
    assert "x" * 60 in str(wide) and "<td>" + "x" * 60 in wide._repr_html_()


def test_wrap_markdown_reflows_prose_and_lists_only():
    long_item = "- " + " ".join(["word"] * 40)
    text = "\n".join(["# " + "h" * 120, long_item, "| " + "c" * 150 + " |", "short"])
    lines = report.wrap_markdown(text).splitlines()
    assert lines[0] == "# " + "h" * 120  # headings stay whole
    body = [ln for ln in lines if "word" in ln]
    assert len(body) > 1 and body[0].startswith("- word") and body[1].startswith("  word")
    assert all(len(ln) <= 100 for ln in body)
    assert " ".join(ln.strip("- ").strip() for ln in body) == " ".join(["word"] * 40)
    assert "| " + "c" * 150 + " |" in lines and lines[-1] == "short"
    fenced = "```\n" + "q" * 130 + "\n```"
    assert report.wrap_markdown(fenced) == fenced


def _cells(widths: list[int]) -> list[str]:
    """One row whose cells are as wide as ``widths`` (headers are one letter each)."""
    return ["x" * w for w in widths]


def test_a_wide_table_splits_into_tables_of_at_most_100_characters_by_hand():
    # widths 10, 40, 40, 40: 10+2+40+2+40 = 94 fits, a third 40 makes 136.
    table = report.Table(["k", "a", "b", "c"], [_cells([10, 40, 40, 40])])
    assert table.column_groups() == ([[0, 1, 2], [0, 3]], [])
    chosen = report.Table(["k", "a", "b", "c"], [_cells([10, 40, 40, 40])], summary=["c"])
    assert chosen.column_groups() == ([[0, 1, 3], [0, 2]], [])  # c first, then a still fits
    assert table.column_groups(width=200) == ([[0, 1, 2, 3]], [])
    # 10 + 2 + 88 = 100 fits exactly; 89 does not and becomes a note.
    edge = report.Table(["k", "a", "b"], [_cells([10, 88, 89])])
    assert edge.column_groups() == ([[0, 1]], [2])


def test_a_wide_tables_html_is_a_summary_plus_collapsed_details_by_hand():
    row = ["k1", "a" * 50, "b" * 50, "n" * 99]
    html_text = report.Table(["key", "A", "B", "note"], [row])._repr_html_()
    assert html_text == (
        "<table><thead><tr><th>key</th><th>A</th></tr></thead><tbody>"
        f"<tr><td>k1</td><td>{'a' * 50}</td></tr></tbody></table>"
        "<details><summary>more columns: B, note</summary>"
        "<table><thead><tr><th>key</th><th>B</th></tr></thead><tbody>"
        f"<tr><td>k1</td><td>{'b' * 50}</td></tr></tbody></table>"
        f"<p><b>note</b></p><ul><li><b>k1</b>: {'n' * 99}</li></ul></details>"
    )


def test_two_key_columns_start_every_detail_table():
    table = report.Table(["nb", "v", "a", "b"], [_cells([5, 5, 50, 50])], keys=2)
    assert table.column_groups() == ([[0, 1, 2], [0, 1, 3]], [])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"summary": ["zz"]}, "summary columns ['zz'] are not among ['a', 'b']"),
        ({"keys": 0}, "keys=0: need 1 to 2 leading key columns"),
        ({"keys": 3}, "keys=3: need 1 to 2 leading key columns"),
    ],
)
def test_table_refuses_unknown_summary_columns_and_bad_keys(kwargs, message):
    with pytest.raises(ValueError) as err:
        report.Table(["a", "b"], [["1", "2"]], **kwargs)
    assert str(err.value) == message


def test_variants_table_keeps_the_variant_beside_a_leading_column():
    base = make_result("base")
    table = report.variants_table([(base, base)], first=("notebook", ["02_pruning"]))
    assert table.keys == 2 and table.headers[:2] == ["notebook", "variant"]
    assert table.summary == ["variant", "accuracy %", "Δ points", "gzip ratio", "speed-up"]
    assert report.variants_table([(base, base)]).keys == 1
