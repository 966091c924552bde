"""Keep TensorFlow's C++ log lines out of notebook cells: ``python -m course_lib.quiet``.

Introduced in 00_setup_and_tour. TensorFlow, XNNPACK and the TFLite converter write lines
such as "oneDNN custom operations are on", "Could not find cuda drivers" or "Created
TensorFlow Lite XNNPACK delegate" straight to file descriptor 2, from C++, before Python's
logging or ``TF_CPP_MIN_LOG_LEVEL`` can stop them all. A Jupyter kernel copies that file
descriptor into the cell's output (pink blocks) unless ``IPKernelApp.capture_fd_output`` is
False; then the lines go to the terminal that started Jupyter instead.

This module writes that one setting into the environment's IPython kernel configuration
(``<sys.prefix>/etc/ipython/ipython_kernel_config.py``), so every kernel started from this
environment - ``make lab``, VS Code, ``jupyter notebook`` - is quiet. Python warnings and
errors still reach the cells: they are written through ``sys.stderr``, not the C++ stream.
``make`` runs it when it creates ``.venv``; a conda environment runs it once by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

SETTING = "c.IPKernelApp.capture_fd_output = False"
MARKER = "# course_lib.quiet: keep C++ log lines (TensorFlow, LiteRT) out of notebook cells"


def kernel_config_path(prefix: str | Path | None = None) -> Path:
    """Return the environment's IPython kernel config file (``<prefix>/etc/ipython/...``)."""
    return Path(prefix or sys.prefix) / "etc" / "ipython" / "ipython_kernel_config.py"


def is_installed(prefix: str | Path | None = None) -> bool:
    """Return True when the environment's kernels already leave C++ output out of cells."""
    path = kernel_config_path(prefix)
    return path.is_file() and SETTING in path.read_text(encoding="utf-8")


def install(prefix: str | Path | None = None) -> Path:
    """Add the setting to the environment's kernel config (kept if already there).

    Other settings in the file are kept. Returns the file's path.
    """
    path = kernel_config_path(prefix)
    if is_installed(prefix):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    sep = "" if not old or old.endswith("\n") else "\n"
    path.write_text(f"{old}{sep}{MARKER}\n{SETTING}\n", encoding="utf-8")
    return path


def main() -> int:
    """Command-line entry point: install the setting and say where."""
    path = install()
    print(f"notebook kernels of {sys.prefix} keep C++ log lines out of cells ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
