"""The environment files agree, pins are exact, and CI runs the README's test command."""

from __future__ import annotations

import re

from course_lib import config
from course_lib.system import read_pins

ROOT = config.repo_root()
REQUIRED = {
    "tensorflow": "2.21.0",
    "tf-keras": "2.21.0",
    "tensorflow-model-optimization": "0.8.1",
    "ai-edge-litert": "2.3.0",
}


def _requirement_lines() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def _environment_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        match = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_every_requirement_is_an_exact_pin():
    for line in _requirement_lines():
        pin = r"[A-Za-z0-9_.\-]+==[0-9][A-Za-z0-9.]*"
        marker = r' ; sys_platform == "linux" and platform_machine == "x86_64"'
        assert re.fullmatch(rf"{pin}({marker})?", line), line


def test_read_pins_leaves_the_environment_marker_out(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text('A_b==1.0 ; sys_platform == "linux"  # why\nc==2.dev3\n')
    assert read_pins(path) == {"a-b": "1.0", "c": "2.dev3"}


def test_key_packages_are_pinned_as_the_course_requires():
    pins = read_pins()
    for name, version in REQUIRED.items():
        assert pins.get(name) == version, f"{name} must be pinned to {version}"
    assert pins["tensorflow"] == pins["tf-keras"], "tensorflow and tf-keras must match"


def test_environment_yml_has_exactly_the_same_pins():
    assert _environment_pins() == read_pins()


def test_environment_yml_uses_conda_forge_python_311_and_comments_every_line():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s+conda-forge\b", text, re.MULTILINE)
    assert re.search(r"^\s*-\s+python=3\.11\b", text, re.MULTILINE)
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            is_header = line.strip() in ("channels:", "dependencies:", "- pip:")
            assert is_header or " # " in line, f"environment.yml line without a reason: {line!r}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make course" in readme
    assert re.search(r"^make test$", ci, re.MULTILINE), ".ci/run must call `make test`"


def test_make_test_runs_unit_tests_and_notebooks_in_fast_mode():
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "COURSE_FAST=1" in test_recipe
    assert "--nbval-lax" in test_recipe
    assert "tests" in test_recipe and "notebooks" in test_recipe


def test_generated_and_cached_files_are_git_ignored():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in (".venv/", "artifacts/", "__pycache__/", "*.egg-info/"):
        assert entry in ignored


def test_make_test_keeps_the_notebooks_on_one_worker_in_course_order():
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "-n 2" in test_recipe
    from tests import conftest

    scope = conftest.notebook_or_file
    assert scope("notebooks/07_deployment.ipynb::Cell 3") == "notebooks"
    assert scope("notebooks/00_setup_and_tour.ipynb::Cell 0") == "notebooks"
    assert scope("tests/test_memo.py::test_x[a::b]") == "tests/test_memo.py"
    assert scope("tests/test_tflm.py::test_y") == "tests/test_tflm.py"
