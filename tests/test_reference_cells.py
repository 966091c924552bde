"""Show first, then extract: each chapter's `reference` cells do the technique in plain
TensorFlow / tf_keras / tfmot / LiteRT code, and together they run as a standalone script that
imports nothing from course_lib but course_lib.data (issue 11)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_lib import config

TAG = "reference"

REQUIRED_APIS: dict[str, list[str]] = {
    "01_baseline": [
        "TFLiteConverter.from_keras_model",
        "Interpreter(",
        "allocate_tensors",
        "set_tensor",
        "invoke",
        "get_tensor",
        "write_bytes",
    ],
    "02_pruning": [
        "prune_low_magnitude",
        "PolynomialDecay",
        "UpdatePruningStep",
        "strip_pruning",
        "clone_model",
        "clone_function",
        "sparsity_m_by_n",
        "gzip",
    ],
    "03_quantization": [
        "Optimize.DEFAULT",
        "supported_types",
        "tf.float16",
        "representative_dataset",
        "TFLITE_BUILTINS_INT8",
        "inference_input_type",
        "inference_output_type",
        "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8",
        "quantize_model",
        "quantize_annotate_layer",
        "quantize_apply",
        "quantizer.Quantizer",
        "dynamic_wi4_afp32",
        ".quantize(",
        ".validate(",
        "export_model",
    ],
    "04_combined": [
        "cluster_weights",
        "CentroidInitialization",
        "strip_clustering",
        "quantize_annotate_model",
        "quantize_apply",
        "Default8BitPrunePreserveQuantizeScheme",
        "Default8BitClusterPreserveQuantizeScheme",
        "preserve_sparsity",
    ],
    "05_structure": [
        "np.linalg.svd",
        "train_step",
        "temperature",
        "KLDivergence",
        "argsort",
        "set_weights",
    ],
    "06_mixed_precision": [
        "set_global_policy",
        "LossScaleOptimizer",
        "compute_dtype",
        "variable_dtype",
    ],
    "07_deployment": [
        "runtime.Interpreter.from_bytes",
        "arena_size",
        "set_input",
        "get_output",
        "TFLITE_BUILTINS_INT8",
        "supported_types",
        "num_threads",
        "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
        "resize_tensor_input",
        "jit_compile",
        "tf.saved_model.save",
        "tf.saved_model.load",
        "serving_default",
    ],
    "08_learned_compression": [
        "GradientTape",
        "stop_gradient",
        "tf.random.uniform",
        "CosineDecay",
        "Categorical",
        "AnsCoder",
        "encode_reverse",
        "get_compressed",
        ".decode(",
    ],
}
"""The API each chapter must show in its reference cells, as named in issue 11."""

ALLOWED_COURSE_IMPORTS = {"course_lib.data"}


def reference_source(stem: str) -> str:
    """Concatenate a notebook's `reference` cells, in order, into one script."""
    nb = nbformat.read(config.notebooks_dir() / f"{stem}.ipynb", as_version=4)
    cells = [
        c.source
        for c in nb.cells
        if c.cell_type == "code" and TAG in c.get("metadata", {}).get("tags", [])
    ]
    return "\n\n".join(cells)


def course_imports(source: str) -> set[str]:
    """Return every course_lib module the script imports (``from course_lib import data``
    counts as ``course_lib.data``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "course_lib"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "course_lib":
            if node.module == "course_lib":
                found |= {f"course_lib.{a.name}" for a in node.names}
            else:
                found.add(node.module)
    return found


def test_course_imports_finds_every_form():
    src = (
        "import course_lib.training\n"
        "from course_lib import data, plots\n"
        "from course_lib.data import x"
    )
    assert course_imports(src) == {"course_lib.training", "course_lib.data", "course_lib.plots"}


@pytest.mark.parametrize("stem", sorted(REQUIRED_APIS))
def test_reference_cells_show_the_chapters_api(stem):
    source = reference_source(stem)
    assert source, f"{stem} has no code cell tagged {TAG!r}"
    missing = [name for name in REQUIRED_APIS[stem] if name not in source]
    assert not missing, f"{stem}'s reference cells never show {missing}"
    forbidden = course_imports(source) - ALLOWED_COURSE_IMPORTS
    assert not forbidden, (
        f"{stem}'s reference cells import {sorted(forbidden)}: only course_lib.data"
    )
    assert "get_ipython" not in source and not any(
        line.lstrip().startswith(("%", "!")) for line in source.splitlines()
    ), f"{stem}'s reference cells use IPython magics: they must run as a plain script"


def run_reference_script(stem: str, tmp_path: Path) -> Path:
    """Run a notebook's reference cells as a script in fast mode; return the output folder."""
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    script = workdir / f"{stem}_reference.py"
    script.write_text(reference_source(stem))
    env = {
        **os.environ,
        config.FAST_ENV: "1",
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(config.repo_root()),
    }
    env.pop("TF_USE_LEGACY_KERAS", None)  # the script must choose Keras 2 itself
    proc = subprocess.run(
        [sys.executable, script.name],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"{stem}'s reference cells failed as a script:\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return tmp_path / "artifacts" / "reference"


@pytest.mark.parametrize("stem", sorted(REQUIRED_APIS))
def test_reference_cells_run_as_a_standalone_script(stem, tmp_path):
    if stem == "07_deployment":
        pytest.importorskip("tflite_micro", reason="tflite-micro has wheels for Linux x86-64 only")
    out = run_reference_script(stem, tmp_path)
    if stem == "04_combined":
        check_pcqat_file(out / "pcqat_seed_cnn_int8.tflite")


def check_pcqat_file(path: Path) -> None:
    """The copyable 04 pipeline's file: full int8, a sparse and clustered dense kernel."""
    from ai_edge_litert.interpreter import Interpreter

    assert path.is_file(), f"the 04 reference pipeline did not write {path}"
    interp = Interpreter(model_path=str(path))
    details = interp.get_tensor_details()
    assert interp.get_input_details()[0]["dtype"] == np.int8, "input is not int8"
    kernels = []
    for d in details:
        if len(d["shape"]) != 2 or d["dtype"] != np.int8:
            continue
        try:
            kernels.append(np.array(interp.get_tensor(d["index"])))
        except ValueError:  # an activation tensor has no data before invoke
            continue
    dense = max(kernels, key=lambda k: k.size)  # the dense kernel, (10, 21632) in TFLite
    assert np.mean(dense == 0) >= 0.5, f"dense kernel keeps only {np.mean(dense == 0):.1%} zeros"
    per_channel = [len(np.unique(row)) for row in dense]
    assert max(per_channel) <= 16, f"up to {max(per_channel)} distinct values per output channel"
