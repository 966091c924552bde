"""Exercises of 07_deployment: does a model fit a board, what a million images cost, and the
smallest tensor arena by bisection.

Every problem calls the learner's function on inputs made up by the checker (boards,
throughputs and hidden arena sizes that appear nowhere in the notebook), so no answer can be
read off a table above.
"""

from __future__ import annotations

import math
from typing import Any

from course_lib.exercises.core import Incorrect, Problem, as_number, call_learner, expect_number

KIB = 1024


def _fits(flash: int, arena: int, board_flash: int, board_ram: int, reserve: float) -> bool:
    """Independent reference: both must fit in what the reserve leaves free."""
    return flash <= (1 - reserve) * board_flash and arena <= (1 - reserve) * board_ram


_FIT_CASES = [
    # (model flash, arena, board flash, board RAM, reserve): each one catches a slip
    (100 * KIB, 20 * KIB, 256 * KIB, 32 * KIB, 0.25),  # fits both
    (200 * KIB, 20 * KIB, 256 * KIB, 32 * KIB, 0.25),  # fits only without the reserve
    (100 * KIB, 30 * KIB, 256 * KIB, 32 * KIB, 0.25),  # RAM too small once reserved
    (300 * KIB, 8 * KIB, 256 * KIB, 32 * KIB, 0.0),  # flash too small, RAM fine
    (192 * KIB, 24 * KIB, 256 * KIB, 32 * KIB, 0.25),  # exactly at both limits: fits
    (60 * KIB, 200 * KIB, 1024 * KIB, 256 * KIB, 0.25),  # arena just over 192 KiB
    (900 * KIB, 40 * KIB, 1024 * KIB, 256 * KIB, 0.10),  # 10 % reserve: fits
    (900 * KIB, 40 * KIB, 1024 * KIB, 256 * KIB, 0.25),  # 25 % reserve: does not
]


class FitsBoard(Problem):
    """Write ``fits_board(flash_bytes, arena_bytes, board_flash, board_ram, reserve)``."""

    variables = ("fits_board",)
    hint_text = (
        "The model's bytes go to flash and its arena to RAM. Keep `reserve` (a fraction) of "
        "each free: the model fits when flash_bytes <= (1 - reserve) * board_flash AND "
        "arena_bytes <= (1 - reserve) * board_ram. Exactly at the limit still fits."
    )
    solution_code = """
def fits_board(flash_bytes, arena_bytes, board_flash, board_ram, reserve):
    usable = 1 - reserve
    return flash_bytes <= usable * board_flash and arena_bytes <= usable * board_ram
"""

    def _check(self, fits_board: Any) -> str:
        for case in _FIT_CASES:
            got = call_learner(fits_board, *case)
            if not isinstance(got, bool) and type(got).__name__ != "bool_":
                raise Incorrect(f"return True or False, got {type(got).__name__} {got!r}")
            if bool(got) != _fits(*case):
                flash, arena, board_flash, board_ram, reserve = case
                raise Incorrect(
                    f"a {flash:,}-byte model with a {arena:,}-byte arena on a board with "
                    f"{board_flash:,} bytes of flash and {board_ram:,} of RAM, reserve "
                    f"{reserve:.0%}: expected {_fits(*case)}, got {bool(got)}"
                )
        return "right on 8 boards: flash and RAM both checked, the reserve kept on both."


_COST_CASES = [(12_400.0, 2), (75_000.0, 2), (830.5, 1), (1.0e6, 4)]


class CoreSeconds(Problem):
    """Write ``core_seconds_per_million(images_per_s, threads)``."""

    variables = ("core_seconds_per_million",)
    hint_text = (
        "A million images take 1e6 / images_per_s seconds of wall time, and during that "
        "time `threads` cores are busy. Multiply."
    )
    solution_code = """
def core_seconds_per_million(images_per_s, threads):
    return threads * 1e6 / images_per_s
"""

    def _check(self, core_seconds_per_million: Any) -> str:
        for per_s, threads in _COST_CASES:
            got = as_number(
                "core_seconds_per_million", call_learner(core_seconds_per_million, per_s, threads)
            )
            expected = threads * 1e6 / per_s
            if threads > 1 and math.isclose(got, expected / threads, rel_tol=1e-6):
                raise Incorrect(
                    f"for {per_s:,} images/s on {threads} threads you gave the wall-clock "
                    "seconds: every thread occupies a core, so multiply by the threads"
                )
            expect_number("core_seconds_per_million", got, expected, rel=1e-6)
        return "right: at 2 threads a server pays twice the wall-clock seconds in core time."


_HIDDEN_ARENAS = (16, 45_160, 3_001, 1_000_016, 262_144 + 16)
"""Where ``allocates`` turns True; not all multiples of 16, like a real model's needs."""


class SmallestArena(Problem):
    """Write ``smallest_arena(allocates, step)``: the smallest multiple of ``step`` for which
    ``allocates(n)`` is True, with few calls (``allocates`` is False below a hidden size and
    True from it on; the answer is that size rounded up to a multiple of ``step``)."""

    variables = ("smallest_arena",)
    hint_text = (
        "Double n from `step` until allocates(n) is True: now the answer lies in "
        "(n / 2, n]. Then bisect: try the middle (rounded down to a multiple of step), keep "
        "the half that still holds the first True, and stop when the two ends are one "
        "step apart."
    )
    solution_code = """
def smallest_arena(allocates, step):
    low, high = 0, step
    while not allocates(high):
        low, high = high, 2 * high
    while high - low > step:
        middle = (low + high) // 2 // step * step
        if allocates(middle):
            high = middle
        else:
            low = middle
    return high
"""

    def _check(self, smallest_arena: Any) -> str:
        step = 16
        for hidden in _HIDDEN_ARENAS:
            calls: list[int] = []
            limit = 2 * math.ceil(math.log2(hidden / step + 1)) + 4

            def allocates(
                n: Any, hidden: int = hidden, calls: list[int] = calls, limit: int = limit
            ) -> bool:
                calls.append(n)
                if len(calls) > limit:
                    raise Incorrect(
                        f"more than {limit} tries for an arena of about {hidden:,} bytes: "
                        "each try prepares the model once; double, then bisect"
                    )
                return n >= hidden

            got = as_number("smallest_arena", call_learner(smallest_arena, allocates, step))
            if got % step:
                raise Incorrect(f"{got:,.0f} is not a multiple of step = {step}")
            expected = -(-hidden // step) * step
            if got != expected:
                raise Incorrect(
                    f"the smallest multiple of {step} that allocates was {expected:,} bytes; "
                    f"you returned {got:,.0f}" + (" (one that fails)" if got < hidden else "")
                )
        return "exact on 5 hidden sizes from 16 bytes to 1 MB, in a logarithmic number of tries."


q1 = FitsBoard()
q2 = CoreSeconds()
q3 = SmallestArena()
