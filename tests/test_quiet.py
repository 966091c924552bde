"""Quiet by default: no C++ log line reaches a cell's output in a kernel started as Jupyter
starts it (issue 16, part 1)."""

from __future__ import annotations

import json
import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib import config, quiet

NOISE = (
    "oneDNN custom operations",
    "Could not find cuda drivers",
    "absl::InitializeLog",
    "XNNPACK delegate",
    "fully_quantize",
    "cudart_stub",
)


def test_install_adds_the_setting_once_and_keeps_other_settings(tmp_path):
    path = quiet.kernel_config_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("c.InteractiveShell.colors = 'nocolor'")
    assert not quiet.is_installed(tmp_path)
    quiet.install(tmp_path)
    quiet.install(tmp_path)
    text = path.read_text()
    assert text.count(quiet.SETTING) == 1 and "colors = 'nocolor'" in text
    assert quiet.is_installed(tmp_path)


def test_a_notebook_kernel_shows_no_cpp_log_lines(tmp_path):
    if not quiet.is_installed():
        pytest.fail(
            f"{quiet.kernel_config_path()} lacks the setting: run `{sys.executable} -m "
            "course_lib.quiet` (make does it when it creates .venv)"
        )
    code = (
        "import warnings\n"
        "import course_lib\n"
        "from course_lib.compat import keras\n"
        "from course_lib import tflite\n"
        "import numpy as np\n"
        "m = keras.Sequential(\n"
        "    [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]\n"
        ")\n"
        "x = np.random.default_rng(0).random((20, 28, 28, 1), dtype=np.float32)\n"
        "content = tflite.convert(m, 'int8', representative_data=x, num_calibration=20)\n"
        "lite = tflite.LiteModel(content)\n"
        "print('predicted', lite.predict(x[:2]).shape)\n"
        "warnings.warn('a real warning still shows')"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    # Started as JupyterLab starts it: no extra arguments, the environment's own config.
    client = NotebookClient(nb, timeout=600, kernel_name="python3")
    # ipykernel never captures file descriptors under pytest (PYTEST_CURRENT_TEST): hide it,
    # so the kernel behaves as in JupyterLab.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    client.execute(cwd=str(config.notebooks_dir()), env=env)
    outputs = json.dumps(nb.cells[0].outputs)
    assert "predicted" in outputs
    assert "a real warning still shows" in outputs
    leaked = [line for line in NOISE if line in outputs]
    assert not leaked, f"C++ log lines reached the cell: {leaked}"
