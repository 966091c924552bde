"""The mutation-testing tool (`make mutation`): its bookkeeping, and that its known bugs still
apply to today's code (the bugs themselves are run by `make mutation`, not here)."""

from __future__ import annotations

import pytest

from course_lib import config, mutation


def test_every_known_bug_still_applies_once():
    root = config.repo_root()
    for bug in mutation.KNOWN_BUGS:
        source = (root / bug.path).read_text()
        assert source.count(bug.old) == 1, f"{bug.name}: the code moved; update KNOWN_BUGS"
        assert bug.old != bug.new
        assert all((root / t).is_file() for t in bug.tests), bug.tests


def test_a_bug_whose_code_moved_is_named(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\n")
    bug = mutation.KnownBug("gone", "m.py", "x = 2", "x = 3", ("tests/t.py",))
    with pytest.raises(ValueError, match="'gone'.*found it 0 times"):
        mutation.check_known_bug(bug, tmp_path)


def test_statuses_and_scores_by_hand():
    assert [mutation.status(c) for c in (1, 3, 36, -9, 0, 33, 5, None)] == [
        "killed",
        "killed",
        "killed",
        "killed",
        "survived",
        "no tests",
        "no tests",
        "not checked",
    ]
    results = {
        "a.py": {"a.f__mutmut_1": 1, "a.f__mutmut_2": 0, "a.f__mutmut_3": 1, "a.f__mutmut_4": 33},
        "b.py": {"b.g__mutmut_1": 36},
    }
    scores = {row["module"]: row for row in mutation.module_scores(results)}
    assert scores["a.py"]["total"] == 4 and scores["a.py"]["score"] == 0.5
    assert scores["b.py"]["score"] == 1.0
    assert scores["all"]["total"] == 5 and scores["all"]["score"] == pytest.approx(3 / 5)
    assert scores["all"]["survived"] == 1 and scores["all"]["no tests"] == 1


def test_equivalents_file_skips_comments(tmp_path):
    path = tmp_path / "eq.txt"
    path.write_text("# why these survive\n\nm.f__mutmut_1: the value is never read\n")
    assert mutation.read_equivalents(path) == {"m.f__mutmut_1": "the value is never read"}
    assert mutation.read_equivalents(tmp_path / "missing.txt") == {}


def test_every_module_in_scope_exists_with_its_tests():
    root = config.repo_root()
    assert len(mutation.MODULES) == 10  # the scope issue 13 names
    for module, tests in mutation.MODULES.items():
        assert (root / module).is_file(), module
        assert tests and all((root / t).is_file() for t in tests), tests


def test_work_folder_links_the_repository_and_configures_one_module(tmp_path):
    import tomllib

    for name in ("course_lib", "tests", *mutation.ALSO_COPY):
        (tmp_path / name).mkdir()
    work = mutation.prepare_work_dir("course_lib/exercises/core.py", tmp_path)
    assert work == tmp_path / "mutants" / "exercises.core"
    assert (work / "course_lib").resolve() == (tmp_path / "course_lib").resolve()
    settings = tomllib.loads((work / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert settings["only_mutate"] == ["course_lib/exercises/core.py"]
    assert settings["pytest_add_cli_args_test_selection"] == ["tests/test_exercise_core.py"]
    assert settings["also_copy"] == list(mutation.ALSO_COPY)
    assert mutation.prepare_work_dir("course_lib/exercises/core.py", tmp_path) == work


def test_results_are_read_per_module(tmp_path):
    import json

    with pytest.raises(FileNotFoundError, match="make mutation"):
        mutation.read_mutmut_results(tmp_path)
    meta = mutation.work_dir("course_lib/stats.py", tmp_path) / "mutants" / "course_lib"
    meta.mkdir(parents=True)
    codes = {"course_lib.stats.x_f__mutmut_1": 1, "course_lib.stats.x_f__mutmut_2": 0}
    (meta / "stats.py.meta").write_text(json.dumps({"exit_code_by_key": codes}))
    assert mutation.read_mutmut_results(tmp_path) == {"course_lib/stats.py": codes}


def test_report_table_counts_by_hand_and_names_modules_not_run(tmp_path):
    results = {"course_lib/stats.py": {"course_lib.stats.x_f__mutmut_1": 1}}
    bugs = [
        {"name": "bug a", "killed": True, "equivalent": "", "failed_tests": ["t::x"]},
        {"name": "bug b", "killed": False, "equivalent": "no size changes", "failed_tests": []},
    ]
    out = tmp_path / "report.md"
    mutation.write_report(results, bugs, out, {"course_lib/stats.py": 90.0})
    text = out.read_text()
    assert "| course_lib/stats.py | 1 | 1 | 0 | 0 | 100.0% | 1.5 min |" in text
    assert "| all 1 modules run | 1 | 1 | 0 | 0 | 100.0% | 1.5 min |" in text
    assert "**Not run yet (9 of 10 modules):** `course_lib/exercises/core.py`" in text
    assert "| bug a | killed | `t::x` |" in text
    assert "| bug b | equivalent: no size changes |  |" in text


def test_unkilled_lists_survivors_and_unchecked_mutants(tmp_path):
    import json

    meta = mutation.work_dir("course_lib/stats.py", tmp_path) / "mutants" / "course_lib"
    meta.mkdir(parents=True)
    codes = {"m_1": 1, "m_2": 0, "m_3": None, "m_4": 33, "m_5": 3}  # 33: no tests
    (meta / "stats.py.meta").write_text(json.dumps({"exit_code_by_key": codes}))
    assert mutation.unkilled("course_lib/stats.py", tmp_path) == ["m_2", "m_3", "m_4"]
    assert mutation.unkilled("course_lib/data.py", tmp_path) == []


def test_report_names_the_rechecked_modules(tmp_path):
    results = {"course_lib/stats.py": {"course_lib.stats.x_f__mutmut_1": 1}}
    path = tmp_path / "report.md"
    mutation.write_report(results, None, path, {"course_lib/stats.py": 60.0}, {})
    assert "--recheck" not in path.read_text()
    mutation.write_report(
        results, None, path, {"course_lib/stats.py": 60.0}, {"course_lib/stats.py": 90.0}
    )
    assert "`course_lib/stats.py` (1.5 min)" in path.read_text()


def test_recheck_runs_only_the_unkilled_mutants_and_stops_when_none_are_left(monkeypatch, tmp_path):
    import json

    monkeypatch.setattr(mutation.config, "repo_root", lambda: tmp_path)
    meta = mutation.work_dir("course_lib/stats.py", tmp_path) / "mutants" / "course_lib"
    meta.mkdir(parents=True)
    meta_file = meta / "stats.py.meta"
    meta_file.write_text(json.dumps({"exit_code_by_key": {"a": 1, "b": 0, "c": None}}))
    monkeypatch.setattr(mutation, "prepare_work_dir", lambda module: tmp_path)
    runs = []

    def fake_run(cmd, **kwargs):  # the first pass kills every mutant it is given
        runs.append(cmd[4:])
        codes = {"a": 1, "b": 1, "c": 1}
        meta_file.write_text(json.dumps({"exit_code_by_key": codes}))

    monkeypatch.setattr(mutation.subprocess, "run", fake_run)
    seconds = mutation.recheck_mutmut(["course_lib/stats.py"], max_children=None)
    assert runs == [["b", "c"]]  # one pass: nothing left for a second
    assert set(seconds) == {"course_lib/stats.py"}
    assert (tmp_path / "mutants" / "recheck_seconds.json").exists()
