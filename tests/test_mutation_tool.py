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
