"""Every notebook's exercises, with the solutions filled in, pass their checks.

For each notebook this runs, in one namespace, the notebook's Setup cell, then each exercise
cell as the learner sees it (its checks answer "not attempted"), then that problem's
``solution_code``, and asserts that ``check()`` now answers "correct". The long middle of the
notebooks is not needed: the exercises only use names defined in the Setup cell.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from course_lib import config

NOTEBOOKS = sorted(config.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
CHECK = re.compile(r"^(q\d+)\.check\(\)\s*$", re.MULTILINE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_pass_every_check(path, monkeypatch):
    monkeypatch.chdir(path.parent)
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    namespace: dict = {"__name__": "__main__"}
    exec(compile(cells[0], f"{path.name}:setup", "exec"), namespace)
    exercise_cells = [c for c in cells if CHECK.search(c)]
    assert exercise_cells, f"{path.name} has no exercise cells"
    for source in exercise_cells:
        problem_name = CHECK.search(source).group(1)
        exec(compile(source, f"{path.name}:{problem_name}", "exec"), namespace)
        problem = namespace[problem_name]
        assert problem.check(namespace=namespace).status == "not_attempted", problem_name
        exec(compile(problem.solution_code, f"{problem_name}.solution", "exec"), namespace)
        result = problem.check(namespace=namespace)
        assert result.status == "correct", f"{path.name} {problem_name}: {result}"
