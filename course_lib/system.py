"""What machine is this? CPU features, GPUs, and an environment check in plain words.

Introduced in 00_setup_and_tour; chapter 06 uses the hardware facts to explain its speeds.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from pathlib import Path

from course_lib import config
from course_lib.compat import legacy_keras_active, tf, versions

# CPU flags (as Linux names them in /proc/cpuinfo) that change how fast the course's kernels run.
CPU_FEATURES = {
    "avx2": "AVX2 (256-bit SIMD; XNNPACK's float and int8 kernels use it)",
    "fma": "FMA (fused multiply-add)",
    "avx512f": "AVX-512 (512-bit SIMD)",
    "avx512_vnni": "AVX-512 VNNI (int8 dot products)",
    "avx_vnni": "AVX-VNNI (int8 dot products, 256-bit)",
    "avx512_bf16": "AVX-512 BF16 (bfloat16 dot products)",
    "avx512_fp16": "AVX-512 FP16 (float16 arithmetic)",
    "amx_tile": "AMX tiles (matrix units)",
    "amx_bf16": "AMX BF16 (bfloat16 matrix multiply)",
    "amx_int8": "AMX INT8 (int8 matrix multiply)",
    "asimddp": "ARM dot-product (int8, NEON)",
    "bf16": "ARM BF16",
}


def cpu_name() -> str:
    """Return the CPU model name (from /proc/cpuinfo on Linux, else ``platform``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> set[str]:
    """Return the CPU's feature flags (Linux ``/proc/cpuinfo``; empty set elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    match = re.search(r"^(flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    return set(match.group(2).split()) if match else set()


def cpu_features() -> dict[str, bool]:
    """Return, for each flag in ``CPU_FEATURES``, whether this CPU has it."""
    flags = cpu_flags()
    return {name: name in flags for name in CPU_FEATURES}


def gpu_names() -> list[str]:
    """Return the names of the GPUs TensorFlow can use (empty on a CPU-only machine)."""
    names = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        names.append(details.get("device_name", device.name))
    return names


@dataclass(frozen=True)
class Check:
    """One line of the environment report."""

    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"[{'ok' if self.ok else 'PROBLEM'}] {self.name}: {self.detail}"


def read_pins(path: str | Path | None = None) -> dict[str, str]:
    """Return ``{package: version}`` for every ``name==version`` line of requirements.txt.

    Names are normalised as pip does (lower case, ``_`` -> ``-``). An environment marker
    (``name==version ; sys_platform == "linux"``) is not part of the version.

    Raises:
        FileNotFoundError: the file does not exist.
    """
    path = Path(path) if path else config.repo_root() / "requirements.txt"
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line:
            name, version = (part.strip() for part in line.split("==", 1))
            pins[name.lower().replace("_", "-")] = version
    return pins


def check_environment() -> list[Check]:
    """Check everything the course needs and say, in plain words, what to fix.

    Covers: Python version, pinned TensorFlow / tf_keras / tfmot / LiteRT versions, Keras 2
    active, LiteRT running a model, both datasets present and intact, and the mode.
    """
    from course_lib.data import DATASETS, dataset_path

    checks = []
    found = versions()
    py_ok = (3, 10) <= tuple(map(int, found["python"].split(".")[:2])) <= (3, 12)
    checks.append(Check("Python", py_ok, f"{found['python']} (the course is tested on 3.11)"))
    try:
        pins = read_pins()
    except FileNotFoundError:
        pins = {}
        checks.append(Check("requirements.txt", False, "not found: run from the course folder"))
    for key, dist in (
        ("tensorflow", "tensorflow"),
        ("tf_keras", "tf-keras"),
        ("tfmot", "tensorflow-model-optimization"),
        ("litert", "ai-edge-litert"),
    ):
        want, have = pins.get(dist, "?"), found[key]
        detail = (
            f"{have}"
            if have == want
            else (
                f"{have} is installed but requirements.txt pins {want}; "
                "run `make test` or `pip install -r requirements.txt` to fix"
            )
        )
        checks.append(Check(dist, have == want, detail))
    legacy = legacy_keras_active()
    checks.append(
        Check(
            "Keras 2 for tfmot",
            legacy,
            "tf.keras is tf_keras (Keras 2)"
            if legacy
            else "tf.keras is Keras 3: restart the kernel and import course_lib first",
        )
    )
    checks.append(_check_litert())
    for name in DATASETS:
        try:
            path = dataset_path(name)
            checks.append(Check(f"data: {name}", True, f"{path.name}, sha256 verified"))
        except (OSError, ValueError) as err:
            checks.append(Check(f"data: {name}", False, str(err)))
    checks.append(Check("mode", True, f"{config.mode()} (set COURSE_FAST=1 for the quick version)"))
    return checks


def _check_litert() -> Check:
    try:
        from course_lib.compat import keras
        from course_lib.tflite import LiteModel, convert

        tiny = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        LiteModel(convert(tiny)).predict(tf.zeros((1, 2)).numpy())
        return Check("LiteRT", True, "converted and ran a tiny model")
    except Exception as err:  # report, do not crash the check
        return Check("LiteRT", False, f"{type(err).__name__}: {err}")
