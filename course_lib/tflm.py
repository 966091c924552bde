"""Run .tflite files on TensorFlow Lite for Microcontrollers (TFLM), on this computer.

Introduced in 07_deployment. The ``tflite-micro`` package runs the real TFLM C++
runtime, the one firmware links, behind a Python interpreter: the same memory planner and
the same refusals as on a microcontroller, with TFLM's portable reference kernels (a
Cortex-M build may swap in optimized ones, such as CMSIS-NN, for the same int8 arithmetic). A
microcontroller has no heap worth the name, so TFLM takes one fixed block of RAM, the *tensor
arena*, for every activation and its own bookkeeping, while the weights stay in flash inside
the model bytes. This module runs models on it, finds the smallest arena a model needs, and
writes a model as the C array a firmware build compiles in.

Example::

    micro = MicroModel(int8_bytes)            # allocates a generous arena
    micro.evaluate(data.x_test, data.y_test)  # accuracy, one image per invoke()
    min_arena_bytes(int8_bytes)               # the smallest arena that allocates
    print(c_array(int8_bytes, "g_model")[:200])
"""

from __future__ import annotations

import multiprocessing
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from course_lib import config, memo
from course_lib.compat import captured_fd2
from course_lib.tflite import LiteModel, integer_labels, offset_buffers, read_tflite

DEFAULT_ARENA_BYTES = 1 << 20
"""The arena :class:`MicroModel` allocates when given none: 1 MiB, room for the course's models."""

ARENA_ALIGNMENT = 16
"""TFLM aligns the arena's buffers to 16 bytes; :func:`min_arena_bytes` searches in these steps."""

MAX_ARENA_BYTES = 64 << 20
"""The largest arena :func:`min_arena_bytes` tries before deciding the model cannot run."""

RUNTIME_PACKAGE = "tflite-micro"
"""The package whose version is part of every remembered TFLM answer (see ``cache=``)."""


class MicroRuntimeError(RuntimeError):
    """TFLM refused a model or an arena; the message carries TFLM's own reason."""


_PROBE = """
import sys
from tflite_micro.python.tflite_micro import runtime
with open(sys.argv[1], "rb") as f:
    content = f.read()
try:
    runtime.Interpreter.from_bytes(content, arena_size=int(sys.argv[2]))
except RuntimeError as err:
    print(err, file=sys.stderr)
    sys.exit(3)
"""


@contextmanager
def _model_file(content: bytes) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.tflite"
        path.write_bytes(content)
        yield str(path)


def _probe(path: str, arena_bytes: int) -> tuple[bool, str]:
    """Try to prepare the model in a separate Python process; return (success, TFLM's words).

    A separate process, because a failed allocation can take the whole process down: in
    tflite-micro 0.dev20261023182759 the seed CNN's int8 file fails cleanly in arenas of
    1,536 and 3,072 bytes but crashes Python (a segmentation fault) at 2,048 bytes.
    """
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, path, str(arena_bytes)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode == 0:
        return True, ""
    told = " ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
    if done.returncode < 0:  # killed by a signal
        told = f"the interpreter crashed (signal {-done.returncode}) {told}".strip()
    return False, told


def _probe_content(content: bytes, arena_bytes: int, cache: bool) -> tuple[bool, str]:
    """:func:`_probe` for a model's bytes; with ``cache``, the outcome is remembered under
    ``artifacts/<mode>/outputs/tflm/`` by the bytes, the arena and the ``tflite-micro``
    version: TFLM plans the same buffers for the same arena every time."""
    if cache:
        version = memo.package_version(RUNTIME_PACKAGE)
        key = memo.digest("tflm-probe", content, int(arena_bytes), version)
        found = memo.remembered_json(
            "tflm", key, lambda: list(_probe_content(content, arena_bytes, cache=False))
        )
        if not isinstance(found, list) or len(found) != 2:
            raise ValueError(f"a stored TFLM probe should be [ok, words], got {found!r}")
        return bool(found[0]), str(found[1])
    with _model_file(content) as path:
        return _probe(path, arena_bytes)  # fail here, not by crashing this process


def _refuse_offset_buffers(content: bytes) -> None:
    """Refuse a model whose weights TFLM would not see (see :func:`tflite.offset_buffers`).

    The tflite-micro build pinned here reads a constant tensor's bytes only from the
    flatbuffer's ``Buffer.data``. Given a file that keeps them after the flatbuffer, it does
    not fail: it plans those tensors in the arena like activations and computes with
    whatever the arena holds, so every image gets the same wrong answer.
    """
    outside = offset_buffers(content)
    if outside:
        raise MicroRuntimeError(
            f"{len(outside)} constant tensors (e.g. {outside[0]!r}) are stored after the "
            "flatbuffer (Buffer.offset), which this TFLM build does not read: it would run "
            "the model with its weights missing. Convert without buffer offsets."
        )


def _check_arena(arena_bytes: int) -> None:
    if arena_bytes < 1:
        raise ValueError(f"arena_bytes must be >= 1, got {arena_bytes}")


class MicroModel:
    """A .tflite model on the TFLM runtime, with the same batch-1 helpers as ``LiteModel``.

    Inputs are checked and quantized, and outputs dequantized, exactly as
    :class:`course_lib.tflite.LiteModel` does (it reads the scales stored in the file), so a
    prediction of both runtimes on the same images can be compared one to one.

    Before the model is prepared here, a separate process tries it (see :func:`_probe`), so
    a crash takes down that process, not this one. With ``cache=True`` the outcome of that
    try is remembered by the model's bytes, the arena and the ``tflite-micro`` version.

    Raises:
        MicroRuntimeError: TFLM refuses the model (for example a dynamic-range or float16
            file) or the arena is too small; the message quotes TFLM's reason. Also a
            model whose weights are stored after the flatbuffer, which TFLM would run
            without error but without its weights (see :func:`_refuse_offset_buffers`).
        ValueError: ``arena_bytes`` < 1.
    """

    def __init__(
        self,
        model: bytes | str | Path,
        arena_bytes: int = DEFAULT_ARENA_BYTES,
        *,
        cache: bool = False,
    ):
        from tflite_micro.python.tflite_micro import runtime  # heavy: imported on first use

        _check_arena(arena_bytes)
        self.content = read_tflite(model)
        _refuse_offset_buffers(self.content)
        self.arena_bytes = int(arena_bytes)
        ok, told = _probe_content(self.content, self.arena_bytes, cache)
        if not ok:
            raise MicroRuntimeError(
                f"TFLM could not prepare the model with a {self.arena_bytes:,}-byte arena: {told}"
            )
        self.interpreter = runtime.Interpreter.from_bytes(self.content, arena_size=self.arena_bytes)
        self.reference = LiteModel(self.content)  # shapes, dtypes and scales of the file

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run every image through TFLM's ``invoke()`` one at a time; return float outputs."""
        q = self.reference.prepare_input(x)
        out_shape = self.interpreter.get_output_details(0)["shape"][1:]
        outputs = np.empty((len(q), *out_shape), dtype=self.reference.output_dtype)
        for i in range(len(q)):
            self.interpreter.set_input(q[i : i + 1], 0)
            self.interpreter.invoke()
            outputs[i] = self.interpreter.get_output(0)[0]
        return self.reference.output_as_float(outputs)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> float:
        """Return the top-1 accuracy on ``(x, y)``, one image per ``invoke()``.

        Raises:
            ValueError: lengths differ, one-hot labels, or input of the wrong shape or dtype.
        """
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
        return float(np.mean(self.predict(x).argmax(axis=-1) == integer_labels(y)))

    def recorded_arena_bytes(self) -> int:
        """TFLM's own count of the arena it used ("Arena allocation total" in the report).

        A good start for :func:`min_arena_bytes` (its ``guess``), not always the answer:
        the smallest arena that allocates can be a little larger.
        """
        found = re.search(r"Arena allocation total (\d+) bytes", self.allocation_report())
        if found is None:
            raise MicroRuntimeError("TFLM's allocation report has no arena total")
        return int(found.group(1))

    def allocation_report(self) -> str:
        """TFLM's own table of the arena's buffers (``print_allocations``, written to fd 2)."""
        with captured_fd2() as told:
            self.interpreter.print_allocations()
        return "".join(told)


def allocates(model: bytes | str | Path, arena_bytes: int) -> bool:
    """Whether TFLM can prepare ``model`` in an arena of ``arena_bytes`` bytes.

    Tried in a separate Python process (see :func:`_probe`): about 0.3 s a try.

    Raises:
        ValueError: ``arena_bytes`` < 1.
    """
    _check_arena(arena_bytes)
    with _model_file(read_tflite(model)) as path:
        return _probe(path, arena_bytes)[0]


def min_arena_bytes(
    model: bytes | str | Path,
    step: int = ARENA_ALIGNMENT,
    guess: int | None = None,
    *,
    cache: bool = False,
) -> int:
    """Return the smallest arena, a multiple of ``step`` bytes, in which TFLM prepares ``model``.

    Doubles the arena from ``step`` until the model allocates, then bisects between the last
    failure and the first success, each try in a separate process (see :func:`_probe`). TFLM
    plans the same buffers for the same arena every time, so the answer is exact to ``step``
    bytes: about 2 x log2(arena / step) tries, some seconds.

    With a ``guess`` (for example :meth:`MicroModel.recorded_arena_bytes`, TFLM's own count)
    the search starts there instead and gallops away from it in doubling steps until it
    brackets the answer: 2 tries when the guess is exact, and the same answer as without a
    guess in every case.

    Raises:
        MicroRuntimeError: not even :data:`MAX_ARENA_BYTES` is enough; usually TFLM does
            not support the model at all (the message quotes TFLM's reason). Also a model
            whose weights are stored after the flatbuffer: its "arena" would hold them.
        ValueError: ``step`` < 1.
    """
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    content = read_tflite(model)
    _refuse_offset_buffers(content)
    if cache:
        key = memo.digest("tflm-min-arena", content, step, memo.package_version(RUNTIME_PACKAGE))
        found = memo.remembered_json("tflm", key, lambda: min_arena_bytes(content, step, guess))
        return int(found)  # type: ignore[call-overload]
    with _model_file(content) as path:
        # invariant: ``low`` fails (0: no arena at all), ``high`` allocates
        start = step if guess is None else max(step, -(-int(guess) // step) * step)
        start = min(start, MAX_ARENA_BYTES // step * step)
        low, high = _bracket(path, start, step, down=guess is not None)
        while high - low > step:
            middle = (low + high) // 2 // step * step
            if _probe(path, middle)[0]:
                high = middle
            else:
                low = middle
    return high


def _bracket(path: str, start: int, step: int, down: bool) -> tuple[int, int]:
    """``(low, high)``: ``low`` fails (or is 0), ``high`` allocates, found from ``start`` in
    doubling steps (downwards too when ``down`` and ``start`` allocates)."""
    gap = step
    ok, told = _probe(path, start)
    if ok and down:
        high = start
        while (candidate := high - gap) > 0 and _probe(path, candidate)[0]:
            high, gap = candidate, 2 * gap
        return max(candidate, 0), high
    if ok:
        return 0, start
    low = start
    while True:
        if low >= MAX_ARENA_BYTES:
            raise MicroRuntimeError(
                f"TFLM could not prepare the model even with a {low:,}-byte arena: {told}"
            )
        candidate = min(low + gap if down else 2 * low, MAX_ARENA_BYTES)
        ok, told = _probe(path, candidate)
        if ok:
            return low, candidate
        low, gap = candidate, 2 * gap


_WORKER_IMAGES: dict[str, np.ndarray] = {}


def _hold_images(x: np.ndarray) -> None:
    """A worker's initializer: keep the images once, not once per model."""
    _WORKER_IMAGES["x"] = x


def _predict_in_worker(content: bytes, arena_bytes: int) -> np.ndarray:
    return MicroModel(content, arena_bytes).predict(_WORKER_IMAGES["x"])


def predict_many(
    models: Sequence[bytes | str | Path],
    x: np.ndarray,
    arena_bytes: int = DEFAULT_ARENA_BYTES,
    processes: int | None = None,
    *,
    cache: bool = False,
) -> list[np.ndarray]:
    """:meth:`MicroModel.predict` for several models, one model per process at a time.

    TFLM runs one image per ``invoke()`` on one core; with several models, each core takes
    one. Every output is the same as ``MicroModel(model, arena_bytes).predict(x)``. The
    workers are fresh ("spawned") Python processes, so nothing of this process is shared.

    Args:
        processes: worker processes (default: the cores this process may use, at most
            one per model).
        cache: remember each output under ``artifacts/<mode>/outputs/tflm/``, keyed by the
            model's bytes, the images, ``arena_bytes`` and the ``tflite-micro`` version
            (see :mod:`course_lib.memo`); only models with no stored output are run.

    Raises:
        MicroRuntimeError: TFLM refused one of the models (see :class:`MicroModel`).
        ValueError: ``processes`` < 1.
    """
    if processes is not None and processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    contents = [read_tflite(m) for m in models]
    for content in contents:
        _refuse_offset_buffers(content)  # here, with its message, not inside a worker
    if not contents:
        return []
    if cache:
        version = memo.package_version(RUNTIME_PACKAGE)
        x = np.asarray(x)
        keys = [memo.digest("tflm-predict", c, x, int(arena_bytes), version) for c in contents]
        todo = [i for i, k in enumerate(keys) if not memo.is_remembered("tflm", k)]
        computed = predict_many([contents[i] for i in todo], x, arena_bytes, processes)
        fresh = dict(zip(todo, computed, strict=True))
        return [
            memo.remembered_array("tflm", key, partial(fresh.__getitem__, i))
            for i, key in enumerate(keys)
        ]
    cores = config.usable_cores()
    workers = min(processes or cores, len(contents))
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_hold_images,
        initargs=(np.asarray(x),),
    ) as pool:
        return list(pool.map(_predict_in_worker, contents, [arena_bytes] * len(contents)))


def prediction_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of images whose top-1 class is the same in two runtimes' outputs.

    Raises:
        ValueError: the two outputs differ in shape, or are empty.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two outputs of the same, non-empty shape; got {a.shape}, {b.shape}")
    return float(np.mean(a.argmax(axis=-1) == b.argmax(axis=-1)))


_C_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def c_array(model: bytes | str | Path, name: str, per_line: int = 12) -> str:
    """Return C source that embeds a .tflite file, the way firmware ships its model.

    ``alignas(16)`` because TFLM reads the flatbuffer in place and its tables must be aligned;
    ``const`` so the linker keeps the bytes in flash, not in RAM. A second constant,
    ``<name>_len``, holds the length.

    Raises:
        ValueError: ``name`` is not a C identifier, or ``per_line`` < 1.
    """
    if not _C_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a C identifier (letters, digits, _; no digit first)")
    if per_line < 1:
        raise ValueError(f"per_line must be >= 1, got {per_line}")
    content = read_tflite(model)
    rows = [
        "  " + " ".join(f"0x{byte:02x}," for byte in content[i : i + per_line])
        for i in range(0, len(content), per_line)
    ]
    return "\n".join(
        [
            f"// {len(content):,} bytes of .tflite (TFLite flatbuffer), for TFLM's GetModel().",
            f"alignas(16) const unsigned char {name}[] = {{",
            *rows,
            "};",
            f"const unsigned int {name}_len = {len(content)};",
            "",
        ]
    )


@dataclass(frozen=True)
class Board:
    """A microcontroller board: its flash and RAM in bytes, and the document that says so."""

    name: str
    chip: str
    flash_bytes: int
    ram_bytes: int
    source: str


KIB = 1024

BOARDS: tuple[Board, ...] = (
    Board(
        "Arduino Nano 33 IoT",
        "Microchip SAMD21G18A (Cortex-M0+, 48 MHz)",
        256 * KIB,
        32 * KIB,
        "Microchip, SAM D21/DA1 Family Data Sheet (DS40001882): 256 KB flash, 32 KB SRAM",
    ),
    Board(
        "Arduino Nano 33 BLE Sense",
        "Nordic nRF52840 (Cortex-M4F, 64 MHz)",
        1024 * KIB,
        256 * KIB,
        "Nordic Semiconductor, nRF52840 Product Specification v1.7: 1 MB flash, 256 KB RAM",
    ),
    Board(
        "Raspberry Pi Pico",
        "Raspberry Pi RP2040 (2x Cortex-M0+, 133 MHz)",
        2048 * KIB,
        264 * KIB,
        "Raspberry Pi, Raspberry Pi Pico product brief (2021): 264KB on-chip SRAM, "
        "2MB on-board QSPI flash",
    ),
    Board(
        "STM32F746G-DISCO",
        "ST STM32F746NG (Cortex-M7, 216 MHz)",
        1024 * KIB,
        320 * KIB,
        "STMicroelectronics, STM32F745xx/STM32F746xx datasheet (DS10916): 1 Mbyte flash, "
        "320 Kbytes SRAM",
    ),
)
"""Four boards TFLM runs on, from 32 KB to 320 KB of RAM, with their documented memories."""

RESERVE = 0.25
"""Share of a board's flash and RAM left for TFLM's own code and state and the application."""


def fits(board: Board, flash_bytes: int, arena_bytes: int, reserve: float = RESERVE) -> bool:
    """Whether a model fits a board, keeping ``reserve`` of its flash and its RAM free.

    The model's bytes go to flash (see :func:`c_array`) and its tensor arena to RAM; the
    reserve stands for what else the firmware needs (TFLM's kernels and interpreter, the
    application, its stack). Both must fit: ``flash_bytes <= (1 - reserve) x flash`` and
    ``arena_bytes <= (1 - reserve) x RAM``.

    Raises:
        ValueError: ``reserve`` outside [0, 1), or a size < 1.
    """
    if not 0 <= reserve < 1:
        raise ValueError(f"reserve must be a fraction in [0, 1), got {reserve}")
    if flash_bytes < 1 or arena_bytes < 1:
        raise ValueError(f"sizes must be >= 1 byte, got {flash_bytes} and {arena_bytes}")
    usable = 1 - reserve
    return flash_bytes <= usable * board.flash_bytes and arena_bytes <= usable * board.ram_bytes
