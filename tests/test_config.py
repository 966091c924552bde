"""Fast/full mode and the folders each mode writes to."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_lib import config


@pytest.mark.parametrize(
    "value,fast",
    [("1", True), ("true", True), ("YES", True), ("0", False), ("", False), ("no", False)],
)
def test_is_fast_reads_the_environment(monkeypatch, value, fast):
    monkeypatch.setenv(config.FAST_ENV, value)
    assert config.is_fast() is fast
    assert config.mode() == ("fast" if fast else "full")
    assert config.pick(full=10, fast=2) == (2 if fast else 10)


def test_full_mode_writes_results_to_results(tmp_root):
    assert config.results_dir() == tmp_root / "results"
    assert config.artifacts_dir("models") == tmp_root / "artifacts" / "full" / "models"
    assert (tmp_root / "artifacts" / "full" / "models").is_dir()


def test_fast_mode_never_writes_to_results(tmp_root, monkeypatch):
    monkeypatch.setenv(config.FAST_ENV, "1")
    assert config.results_dir() == tmp_root / "artifacts" / "fast" / "results"
    assert not (tmp_root / "results").exists()


def test_artifacts_dir_for_another_mode(tmp_root):
    assert config.artifacts_dir("x", for_mode="fast") == tmp_root / "artifacts" / "fast" / "x"
    with pytest.raises(ValueError, match="for_mode"):
        config.artifacts_dir(for_mode="medium")


def test_repo_root_is_the_clone_by_default(monkeypatch):
    monkeypatch.delenv(config.ROOT_ENV, raising=False)
    root = config.repo_root()
    assert (root / "course_lib" / "config.py").is_file() and (root / "data").is_dir()


def test_repo_root_explains_when_it_cannot_find_the_course(monkeypatch, tmp_path):
    monkeypatch.delenv(config.ROOT_ENV, raising=False)
    monkeypatch.setattr(config, "_looks_like_root", lambda path: False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=config.ROOT_ENV):
        config.repo_root()


def test_results_dir_can_be_redirected(tmp_root, monkeypatch, tmp_path):
    monkeypatch.setenv(config.RESULTS_ENV, str(tmp_path / "elsewhere"))
    assert config.results_dir() == tmp_path / "elsewhere" and (tmp_path / "elsewhere").is_dir()


def test_course_artifacts_moves_the_cache(tmp_root, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv(config.ARTIFACTS_ENV, str(elsewhere))
    assert config.artifacts_dir("models") == elsewhere / "full" / "models"
    assert (elsewhere / "full" / "models").is_dir()


def test_an_unwritable_cache_names_the_folder_and_the_fix(tmp_root):
    (tmp_root / "artifacts").write_text("not a folder")  # mkdir fails, as on a read-only copy
    with pytest.raises(config.ArtifactsNotWritableError) as err:
        config.artifacts_dir("models")
    message = str(err.value)
    assert str(tmp_root / "artifacts" / "full" / "models") in message
    assert "COURSE_ARTIFACTS" in message
    assert isinstance(err.value, OSError)


def test_shown_path_is_relative_inside_the_course_and_absolute_outside(tmp_root, tmp_path_factory):
    inside = tmp_root / "results" / "01_baseline.json"
    assert config.shown_path(inside) == Path("results/01_baseline.json")
    elsewhere = tmp_path_factory.mktemp("cache") / "fast" / "results"
    assert config.shown_path(elsewhere) == elsewhere  # relative_to would raise here
    sibling = tmp_root.parent / (tmp_root.name + "-other") / "x.json"  # shares the name prefix
    assert config.shown_path(sibling) == sibling


def test_the_cache_outside_the_course_is_shown_absolute(tmp_root, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv(config.ARTIFACTS_ENV, str(elsewhere))
    monkeypatch.setenv(config.FAST_ENV, "1")
    assert config.shown_path(config.results_dir()) == elsewhere / "fast" / "results"
    monkeypatch.setenv(config.FAST_ENV, "0")
    assert config.shown_path(config.results_dir()) == Path("results")


def test_usable_cores_follows_the_affinity_then_the_cpu_count(monkeypatch):
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert config.usable_cores() == 3  # the cores this process may use, not all of them
    monkeypatch.delattr(config.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(config.os, "cpu_count", lambda: 6)
    assert config.usable_cores() == 6
    monkeypatch.setattr(config.os, "cpu_count", lambda: None)  # unknown: at least one
    assert config.usable_cores() == 1
