"""The Result record, results files, tables, Pareto fronts and timings."""

from __future__ import annotations

import json

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
