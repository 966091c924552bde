"""Write files atomically: to a temporary file in the same folder, then rename into place.

Introduced in 01_baseline. A reader either sees the old file or the complete new one, never
half a file, even when the writer is interrupted (Ctrl-C, a killed kernel, a full disk).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary name keeps the suffix (``.keras`` savers check it). On an exception the
    temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_TEMP_RE = re.compile(r"^\..+\.tmp-(\d+)(\.[^.]*)?$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temporary files that a killed writer left in ``folder``; return them.

    A process killed between writing its temporary file and the rename (``kill -9``, a
    crashed kernel) cannot clean up after itself. The next run calls this first: files named
    like :func:`atomic_path`'s temporaries whose writing process no longer exists are
    removed; those of a live process (another run in progress) are kept.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        match = _TEMP_RE.match(path.name)
        if match and not _alive(int(match.group(1))):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_bytes_atomic(content: bytes, path: str | Path) -> Path:
    """Write ``content`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)
    return Path(path)


def write_json_atomic(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON (UTF-8, trailing newline) atomically; return the path."""
    text = json.dumps(obj, indent=1, ensure_ascii=False) + "\n"
    return write_bytes_atomic(text.encode("utf-8"), path)
