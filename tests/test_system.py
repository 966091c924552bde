"""CPU features, GPU detection and the environment check."""

from __future__ import annotations

from pathlib import Path

from course_lib import system


def test_cpu_facts_are_reported():
    assert system.cpu_name()
    flags = system.cpu_flags()
    features = system.cpu_features()
    assert set(features) == set(system.CPU_FEATURES)
    assert all(features[name] == (name in flags) for name in features)
    assert isinstance(system.gpu_names(), list)


def test_read_pins_normalises_names(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# comment\nTF_Keras==2.21.0  # why\nnumpy>=1\n\nfoo==1.0\n")
    assert system.read_pins(path) == {"tf-keras": "2.21.0", "foo": "1.0"}


def test_environment_check_passes_here_and_names_problems(monkeypatch):
    checks = {c.name: c for c in system.check_environment()}
    assert all(c.ok for c in checks.values()), [str(c) for c in checks.values() if not c.ok]
    assert {"tensorflow", "tf-keras", "Keras 2 for tfmot", "LiteRT", "data: mnist"} <= set(checks)
    monkeypatch.setattr(system, "read_pins", lambda: {"tensorflow": "9.9.9"})
    bad = {c.name: c for c in system.check_environment()}["tensorflow"]
    assert (
        not bad.ok
        and "pins 9.9.9" in bad.detail
        and "pip install -r requirements.txt" in (bad.detail)
    )
    assert str(bad).startswith("[PROBLEM] tensorflow")


def test_a_corrupt_dataset_is_reported_not_raised(tmp_root, monkeypatch):
    pins = system.read_pins(Path(system.__file__).parents[1] / "requirements.txt")
    monkeypatch.setattr(system, "read_pins", lambda: pins)
    (tmp_root / "data" / "mnist.npz").unlink()
    (tmp_root / "data" / "mnist.npz").write_bytes(b"broken")
    check = {c.name: c for c in system.check_environment()}["data: mnist"]
    assert not check.ok and "corrupt" in check.detail


def test_missing_requirements_file_is_reported(tmp_root):
    checks = {c.name: c for c in system.check_environment()}
    assert not checks["requirements.txt"].ok
