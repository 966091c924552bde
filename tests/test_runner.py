"""The notebook runner: code hashes, stamps, stale-output detection and execution."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

from course_lib import config, runner


def _notebook(*sources, counts=None) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 99 · Tiny\n\nA tiny notebook.")]
    for i, src in enumerate(sources):
        cell = nbformat.v4.new_code_cell(src)
        cell.execution_count = (counts or list(range(1, len(sources) + 1)))[i]
        nb.cells.append(cell)
    return nb


def test_code_hash_depends_on_code_only():
    nb = _notebook("x = 1", "print(x)")
    before = runner.code_hash(nb)
    nb.cells[0].source = "# another title"
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="1")]
    assert runner.code_hash(nb) == before
    nb.cells[2].source = "print(x + 1)"
    assert runner.code_hash(nb) != before


def test_stamp_problems():
    nb = _notebook("x = 1", "print(x)")
    assert "no run stamp" in runner.stamp_problems(nb)[0]
    runner.stamp(nb, "full", 3.0)
    assert runner.stamp_problems(nb) == []
    nb.cells[2].source = "print(2)"
    assert any("stale" in p for p in runner.stamp_problems(nb))
    runner.stamp(nb, "fast", 1.0)
    assert any("not full mode" in p for p in runner.stamp_problems(nb))

    reordered = _notebook("x = 1", "print(x)", counts=[2, 1])
    runner.stamp(reordered, "full", 1.0)
    assert any("top-to-bottom" in p for p in runner.stamp_problems(reordered))

    failed = _notebook("1/0")
    failed.cells[1].outputs = [nbformat.v4.new_output("error", ename="E", evalue="", traceback=[])]
    runner.stamp(failed, "full", 1.0)
    assert any("stored an error" in p for p in runner.stamp_problems(failed))


def test_list_notebooks(tmp_root):
    nbformat.write(_notebook("1"), tmp_root / "notebooks" / "01_a.ipynb")
    nbformat.write(_notebook("1"), tmp_root / "notebooks" / "scratch.ipynb")
    assert [p.name for p in runner.list_notebooks()] == ["01_a.ipynb"]
    assert runner.list_notebooks(["notebooks/01_a.ipynb"])[0].name == "01_a.ipynb"
    with pytest.raises(FileNotFoundError, match="02_b"):
        runner.list_notebooks(["02_b"])


def test_execute_runs_in_the_requested_mode(tmp_root):
    path = tmp_root / "notebooks" / "99_tiny.ipynb"
    nbformat.write(_notebook("import os\nprint(os.environ['COURSE_FAST'], os.getcwd())"), path)
    nb, seconds = runner.execute(path, fast=True)
    text = nb.cells[1].outputs[0]["text"]
    assert text.split()[0] == "1" and text.split()[1] == str(path.parent)
    assert seconds > 0 and nb.cells[1].execution_count == 1


def test_execute_keeps_each_code_cell_time_slowest_first(tmp_root):
    path = tmp_root / "notebooks" / "98_timed.ipynb"
    nb = _notebook("import time\ntime.sleep(0.6)", "\n# a comment first\nx = 1")
    nb.cells.append(nbformat.v4.new_markdown_cell("not a code cell"))
    nb.cells.append(nbformat.v4.new_code_cell("1/0"))
    nbformat.write(nb, path)
    with pytest.raises(runner.CellExecutionError):
        runner.execute(path, fast=True)
    kept = json.loads(runner.cell_times_path(path, fast=True).read_text())
    assert kept["notebook"] == "98_timed"
    cells = kept["cells"]
    assert [c["cell"] for c in cells][0] == 1 and sorted(c["cell"] for c in cells) == [1, 2, 3]
    assert cells[0]["first_line"] == "import time" and cells[0]["seconds"] >= 0.6
    assert next(c for c in cells if c["cell"] == 2)["first_line"] == "# a comment first"
    assert all(c["seconds"] < 0.6 for c in cells[1:])
    assert runner.cell_times_path(path, fast=True).parent.name == "cell_times"


def test_full_run_stamps_records_times_and_keeps_failures_aside(tmp_root, capsys):
    (tmp_root / "README.md").write_text(
        "<!-- course-map:start -->\n<!-- course-map:end -->\n"
        "<!-- results:start -->\n<!-- results:end -->\n"
    )
    good = tmp_root / "notebooks" / "01_good.ipynb"
    bad = tmp_root / "notebooks" / "02_bad.ipynb"
    nbformat.write(_notebook("print('hi')"), good)
    nbformat.write(_notebook("raise RuntimeError('boom')"), bad)
    status = runner.main(["--no-fast-timing"])
    assert status == 1
    assert runner.stamp_problems(nbformat.read(good, as_version=4)) == []
    assert "no run stamp" in runner.stamp_problems(nbformat.read(bad, as_version=4))[0]
    assert (tmp_root / "artifacts" / "full" / "failed" / "02_bad.ipynb").is_file()
    timings = (tmp_root / "results" / "timings.json").read_text()
    assert "01_good" in timings and "02_bad" not in timings
    out = capsys.readouterr().out
    assert "02_bad" in out and "FAILED" in out and "RuntimeError: boom" in out
    assert "01_good" in (tmp_root / "README.md").read_text()
    assert "[full 1/2] 01_good" in out  # one progress line per notebook
    assert "course_first_run_s" not in timings  # a failed run is not a course time


def test_first_run_and_cached_times_are_recorded_separately(tmp_root):
    (tmp_root / "README.md").write_text(
        "<!-- course-map:start -->\n<!-- course-map:end -->\n"
        "<!-- results:start -->\n<!-- results:end -->\n"
    )
    path = tmp_root / "notebooks" / "01_good.ipynb"
    trains_once = (
        "import os, pathlib\n"
        "model = pathlib.Path(os.environ['COURSE_ROOT']) / 'artifacts/full/models/m.keras'\n"
        "model.parent.mkdir(parents=True, exist_ok=True)\n"
        "if not model.exists():\n"
        "    model.write_text('trained')\n"
        "print(os.environ.get('COURSE_RESULTS_DIR'))"
    )
    nbformat.write(_notebook(trains_once), path)
    assert runner.main(["--no-fast-timing"]) == 0
    timings = tmp_root / "results" / "timings.json"
    assert set(json.loads(timings.read_text())["notebooks"]["01_good"]) >= {"full_s"}
    assert "course_first_run_s" in json.loads(timings.read_text())  # the cache started empty
    stamped = nbformat.read(path, as_version=4).metadata["course"]
    assert runner.main(["--no-fast-timing", "--time-only"]) == 0  # the model is cached now
    copy = nbformat.read(tmp_root / "artifacts/full/notebooks/01_good.ipynb", as_version=4)
    assert copy.cells[1].outputs[0]["text"].strip().endswith("timing-results")
    assert config.RESULTS_ENV not in os.environ
    entry = json.loads(timings.read_text())["notebooks"]["01_good"]
    assert {"full_s", "full_cached_s"} <= set(entry)
    assert "course_cached_s" in json.loads(timings.read_text())
    assert nbformat.read(path, as_version=4).metadata["course"] == stamped  # not re-stored


def test_a_failing_notebook_with_an_unwritable_cache_is_reported_not_a_crash(tmp_root, capsys):
    (tmp_root / "README.md").write_text(
        "<!-- course-map:start -->\n<!-- course-map:end -->\n"
        "<!-- results:start -->\n<!-- results:end -->\n"
    )
    bad = tmp_root / "notebooks" / "02_bad.ipynb"
    nbformat.write(
        _notebook(
            "import os\nos.rename(os.environ['COURSE_ROOT'] + '/artifacts', "
            "os.environ['COURSE_ROOT'] + '/moved')\n"
            "open(os.environ['COURSE_ROOT'] + '/artifacts', 'w').close()\n"
            "raise RuntimeError('boom')"
        ),
        bad,
    )
    assert runner.run_course(["02_bad"], fast=False) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "RuntimeError: boom" in out


def test_kernel_log_lines_go_to_the_log_file_not_the_outputs(tmp_root):
    path = tmp_root / "notebooks" / "01_noisy.ipynb"
    noisy = "import os\nos.write(2, b'I0000 oneDNN custom operations are on\\n')\nprint('clean')"
    nbformat.write(_notebook(noisy), path)
    nb, _ = runner.execute(path, fast=False)
    outputs = json.dumps(nb.cells[1].outputs)
    assert "clean" in outputs and "oneDNN" not in outputs
    assert "oneDNN" in runner.log_path(path, fast=False).read_text()


def test_progress_estimates_time_left_from_recorded_times(tmp_root):
    report_mod = runner.report
    report_mod.record_timing("01_a", full_s=100.0, full_cached_s=10.0)
    report_mod.record_timing("02_b", full_s=50.0, full_cached_s=5.0)
    paths = [tmp_root / "notebooks" / "01_a.ipynb", tmp_root / "notebooks" / "02_b.ipynb"]
    first = runner.Progress(paths, "full", first_run=True)
    assert first._left(0, 40.0) == "~1 min 50 s left"  # 100 - 40 + 50
    cached = runner.Progress(paths, "full", first_run=False)
    assert cached._left(0, 4.0) == "~11 s left"  # 10 - 4 + 5
    assert "cell   3/9" in cached.line(0, 3, 9, cached.start)
    report_mod.record_timing("01_a", fast_s=1.0)
    unknown = runner.Progress([paths[0], tmp_root / "notebooks" / "03_c.ipynb"], "full", True)
    assert unknown._left(0, 1.0) == "time left unknown"


def test_a_run_that_fills_the_output_store_is_not_a_cached_run(tmp_root):
    path = tmp_root / "notebooks" / "01_tflm.ipynb"
    computes_once = (  # no model: only an answer remembered by course_lib.memo, as in 07
        "import os, pathlib\n"
        "root = pathlib.Path(os.environ['COURSE_ROOT'])\n"
        "entry = root / 'artifacts/full/outputs/tflm' / ('0' * 64 + '.json')\n"
        "entry.parent.mkdir(parents=True, exist_ok=True)\n"
        "if not entry.exists():\n"
        "    entry.write_text('4096')\n"
    )
    nbformat.write(_notebook(computes_once), path)
    timings = tmp_root / "results" / "timings.json"
    assert runner.main(["01_tflm"]) == 0
    assert set(json.loads(timings.read_text())["notebooks"]["01_tflm"]) >= {"full_s"}
    assert "full_cached_s" not in json.loads(timings.read_text())["notebooks"]["01_tflm"]
    assert runner.main(["01_tflm"]) == 0  # the answer is stored now: a cached run
    assert "full_cached_s" in json.loads(timings.read_text())["notebooks"]["01_tflm"]


def test_execute_kills_the_kernel_instead_of_waiting_for_its_shutdown(tmp_root):
    # Waiting for TensorFlow's own shutdown costs 1-2 s a notebook. Every output is in once
    # the last cell returns, so the kernel is killed: its exit handlers never run.
    marker = tmp_root / "exit_handler_ran"
    path = tmp_root / "notebooks" / "97_exit.ipynb"
    source = f"import atexit, pathlib\natexit.register(pathlib.Path({str(marker)!r}).touch)"
    nbformat.write(_notebook(source, "print('done')"), path)
    nb, _ = runner.execute(path, fast=True)
    assert nb.cells[2].outputs[0]["text"] == "done\n"
    assert not marker.exists()
