"""Mutation testing of course_lib: do the tests catch wrong code? (the course's own tooling)

`make mutation` runs this module. Three steps:

1. ``mutmut run`` (configured in pyproject.toml's ``[tool.mutmut]``) makes thousands of small
   changes ("mutants") to the helpers learners rely on - ``<`` for ``<=``, ``+ 1`` for ``- 1``,
   a string emptied, an argument dropped - and runs the unit tests that cover each changed
   function. A mutant the tests notice is *killed*; one they miss *survived*.
2. :data:`KNOWN_BUGS`, eight realistic bugs that once passed the whole suite, are applied one
   at a time to a copy of the repository; each must make its tests fail.
3. :func:`write_report` writes ``docs/mutation.md``: the score per module, every surviving
   mutant with its diff (and a reason when it is equivalent, from
   ``docs/mutation_equivalents.txt``), and the known bugs' verdicts.

Run ``python -m course_lib.mutation --help`` for the steps one by one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_lib import config

TARGET = 0.80
"""The share of mutants the tests must kill (issue 13)."""

MODULES: dict[str, tuple[str, ...]] = {
    "course_lib/stats.py": ("tests/test_stats.py",),
    "course_lib/exercises/core.py": ("tests/test_exercise_core.py",),
    "course_lib/report.py": ("tests/test_report.py",),
    "course_lib/measure.py": ("tests/test_measure.py",),
    "course_lib/data.py": ("tests/test_data.py", "tests/test_cache_identity.py"),
    "course_lib/tflite.py": ("tests/test_tflite.py",),
    "course_lib/quantization.py": ("tests/test_quantization.py",),
    "course_lib/structure.py": ("tests/test_structure.py",),
    "course_lib/pruning.py": ("tests/test_pruning.py",),
    "course_lib/combined.py": ("tests/test_combined.py",),
}
"""The modules mutated, each with its own unit tests: a module's tests must catch its bugs.

(Running every test that happens to call a function - mutmut's default - would take hours
on 2 cores, because low-level helpers are called by the training tests of every chapter.)"""

ALSO_COPY = (
    "data",
    "notebooks",
    "results",
    "docs",
    "README.md",
    "requirements.txt",
    "environment.yml",
)
"""What the tests read besides course_lib and tests (linked into each module's work folder)."""

PYTEST_ARGS = ("-p", "no:cacheprovider", "-q", "-x")

KILLED = {1, 3, 36, 37, -24, 24, 152, 255, -11, -9}
"""mutmut exit codes counted as killed: test failure, pytest error, timeout, crash."""

SURVIVED = {0}
NO_TESTS = {5, 33}


@dataclass(frozen=True)
class KnownBug:
    """A realistic bug, as a text replacement in one file, and the tests that must catch it."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    equivalent: str = ""
    """Why no test can catch it, when the bug cannot change any result."""


KNOWN_BUGS: tuple[KnownBug, ...] = (
    KnownBug(
        "count_nonzero ignores zero biases",
        "course_lib/measure.py",
        "return sum(row.size - row.zeros for row in sparsity_report(model))",
        'return sum(row.size - row.zeros * ("kernel" in row.weight) '
        "for row in sparsity_report(model))",
        ("tests/test_measure.py",),
    ),
    KnownBug(
        "Distiller drops T^2",
        "course_lib/distillation.py",
        "return t * t * kl(",
        "return kl(",
        ("tests/test_distillation.py",),
    ),
    KnownBug(
        "Distiller swaps the KL arguments",
        "course_lib/distillation.py",
        "kl(tf.nn.softmax(teacher_logits / t), tf.nn.softmax(student_logits / t))",
        "kl(tf.nn.softmax(student_logits / t), tf.nn.softmax(teacher_logits / t))",
        ("tests/test_distillation.py",),
    ),
    KnownBug(
        "int8 calibration on x_test (chapters 02, 03, 05)",
        "course_lib/variants.py",
        "representative_data = data.x_train",
        "representative_data = data.x_test",
        ("tests/test_variants.py",),
    ),
    KnownBug(
        "int8 calibration on x_test (chapter 04's pipelines)",
        "course_lib/combined.py",
        'calibration = data.x_train if last == "ptq"',
        'calibration = data.x_test if last == "ptq"',
        ("tests/test_combined.py",),
    ),
    KnownBug(
        "gzip without a fixed mtime",
        "course_lib/measure.py",
        "compresslevel=level, mtime=0)",
        "compresslevel=level)",
        ("tests/test_measure.py",),
        equivalent=(
            "gzip_size returns only a length, and the gzip header stores the time in a fixed "
            "4-byte field (RFC 1952, MTIME), so no size can change"
        ),
    ),
    KnownBug(
        "Entry.int8 loses its pipeline branch",
        "course_lib/summary.py",
        'return extra.get("conversion") == "int8" or (',
        'return extra.get("conversion") == "int8" and (',
        ("tests/test_summary.py",),
    ),
    KnownBug(
        "stored_weight_stats loses the layer names",
        "course_lib/deep_compression.py",
        '"layer": "/".join(shapes.get(tuple(values.shape), ["?"])),',
        '"layer": "?",',
        ("tests/test_combined.py",),
    ),
    KnownBug(
        'sparse_weights always reports "single values"',
        "course_lib/tflite.py",
        '"block": f"1x{block}" if block else "single values",',
        '"block": "single values",',
        ("tests/test_tflite.py",),
    ),
    KnownBug(
        "remove_filters does not slice a depthwise kernel",
        "course_lib/structure.py",
        "w = [w[0][:, :, kept_in, :], *([w[1][kept_in]] if len(w) > 1 else [])]",
        "w = w",
        ("tests/test_structure.py",),
    ),
)
"""The eight bugs of issue 13 (the Distiller's two faults and the two calibration sites
counted apart), each of which once passed the whole suite."""


def _test_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(root),
        COURSE_ROOT=str(root),
        COURSE_FAST="1",
        TF_CPP_MIN_LOG_LEVEL="3",
        MPLBACKEND="Agg",
    )
    env.pop("COURSE_ARTIFACTS", None)
    return env


def check_known_bug(bug: KnownBug, root: Path | None = None) -> dict:
    """Apply ``bug`` to a copy of the repository and run its tests there.

    Returns:
        ``{"name", "killed", "failed_tests", "seconds"}``; killed means the tests failed.

    Raises:
        ValueError: the bug's text is not found exactly once (the code moved: update it).
    """
    root = root or config.repo_root()
    source = (root / bug.path).read_text()
    if source.count(bug.old) != 1:
        raise ValueError(
            f"{bug.name!r}: expected the text once in {bug.path}, found it "
            f"{source.count(bug.old)} times; update KNOWN_BUGS in course_lib/mutation.py"
        )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="known-bug-") as tmp:
        copy = Path(tmp)
        for name in ("course_lib", "tests"):
            shutil.copytree(root / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, copy / name)
        (copy / "data").symlink_to(root / "data")
        (copy / "notebooks").mkdir()
        (copy / bug.path).write_text(source.replace(bug.old, bug.new))
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *bug.tests],
            cwd=copy,
            env=_test_env(copy),
            capture_output=True,
            text=True,
        )
    failed = re.findall(r"^FAILED (\S+)", proc.stdout, flags=re.M)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{bug.name!r}: pytest exited with {proc.returncode}\n{proc.stdout}")
    return {
        "name": bug.name,
        "equivalent": bug.equivalent,
        "killed": proc.returncode == 1,
        "failed_tests": failed,
        "seconds": round(time.perf_counter() - start, 1),
    }


def check_known_bugs(root: Path | None = None) -> list[dict]:
    """Run :func:`check_known_bug` for every bug, printing one line each."""
    rows = []
    for bug in KNOWN_BUGS:
        row = check_known_bug(bug, root)
        verdict = "killed" if row["killed"] else "equivalent" if bug.equivalent else "SURVIVED"
        print(f"{verdict:8}  {bug.name}  ({row['seconds']} s) {', '.join(row['failed_tests'])}")
        rows.append(row)
    return rows


def work_dir(module: str, root: Path | None = None) -> Path:
    """The folder where mutmut runs for one module: ``mutants/<module name>/``."""
    root = root or config.repo_root()
    return (
        root / "mutants" / module.removeprefix("course_lib/").removesuffix(".py").replace("/", ".")
    )


def _toml_list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def prepare_work_dir(module: str, root: Path | None = None) -> Path:
    """Link the repository into ``work_dir(module)`` and write its mutmut settings there."""
    root = root or config.repo_root()
    work = work_dir(module, root)
    work.mkdir(parents=True, exist_ok=True)
    for name in ("course_lib", "tests", *ALSO_COPY):
        link = work / name
        if not link.is_symlink():
            link.symlink_to(root / name)
    (work / "pyproject.toml").write_text(
        "\n".join(
            [
                "# Written by course_lib.mutation for one module; edit MODULES there.",
                "[tool.pytest.ini_options]",
                'filterwarnings = ["ignore::DeprecationWarning"]',
                "",
                "[tool.mutmut]",
                'source_paths = ["course_lib"]',
                f"only_mutate = {_toml_list([module])}",
                f"also_copy = {_toml_list(list(ALSO_COPY))}",
                f"pytest_add_cli_args = {_toml_list(PYTEST_ARGS)}",
                f"pytest_add_cli_args_test_selection = {_toml_list(MODULES[module])}",
                "# TensorFlow is not fork-safe once its thread pools exist.",
                'process_isolation = "forkserver"',
                "use_git_change_detection = false",
                "",
            ]
        )
    )
    return work


def read_mutmut_results(root: Path | None = None) -> dict[str, dict[str, int | None]]:
    """Return ``{module path: {mutant name: exit code}}`` from each module's work folder."""
    found = {}
    for module in MODULES:
        meta = work_dir(module, root) / "mutants" / f"{module}.meta"
        if meta.exists():
            found[module] = json.loads(meta.read_text())["exit_code_by_key"]
    if not found:
        raise FileNotFoundError("no mutmut results under mutants/: run `make mutation`")
    return found


def status(code: int | None) -> str:
    """``killed``, ``survived``, ``no tests`` or ``not checked`` for a mutmut exit code."""
    if code is None:
        return "not checked"
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    return f"other ({code})"


def module_scores(results: dict[str, dict[str, int | None]]) -> list[dict]:
    """Killed / total per module (``no tests`` counts as not killed), and the overall row."""
    rows: list[dict[str, Any]] = []
    overall: Counter[str] = Counter()
    groups = [*results.items(), ("all", None)]
    for module, codes in groups:
        counts = overall if codes is None else Counter(status(c) for c in codes.values())
        total = sum(counts.values())
        score = counts["killed"] / total if total else 0.0
        rows.append({"module": module, "total": total, **counts, "score": score})
        if codes is not None:
            overall.update(counts)
    return rows


def read_equivalents(path: Path) -> dict[str, str]:
    """``{mutant name: reason}`` from lines ``name: reason`` (``#`` starts a comment)."""
    if not path.exists():
        return {}
    reasons = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(": ")
            reasons[name.strip()] = reason.strip()
    return reasons


def _diff_lines(name: str, module: str) -> list[str]:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=module)
    return [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def write_report(
    results: dict[str, dict[str, int | None]],
    bugs: list[dict] | None,
    path: Path,
    seconds: dict[str, float] | None = None,
    rechecked: dict[str, float] | None = None,
) -> list[dict]:
    """Write the Markdown report; return the module scores.

    ``seconds`` are the whole runs' times; ``rechecked`` the times of ``--recheck`` runs
    (the survivors of a run checked again after tests were added), named below the table.
    """
    root = config.repo_root()
    equivalents = read_equivalents(root / "docs" / "mutation_equivalents.txt")
    scores = module_scores(results)
    lines = [
        "# Mutation testing report",
        "",
        "Written by `make mutation` (`python -m course_lib.mutation`); do not edit by hand.",
        "mutmut changes the helpers learners rely on in small ways and runs the module's own",
        "unit tests (`MODULES` in course_lib/mutation.py) on each change; a *killed* mutant",
        f"made a test fail. The target is {TARGET:.0%} killed; `no tests` (no test of the",
        "module calls the function) counts as not killed. Survivors with a reason after them",
        "are explained in docs/mutation_equivalents.txt (most are equivalent: no test can tell",
        "them from the real code); they still count as survivors in the score.",
        "",
        "| module | mutants | killed | survived | no tests | score | run time |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    seconds = seconds or {}
    done = [m for m in results if m in seconds]
    for row in scores:
        module = row["module"]
        took = sum(seconds[m] for m in done) if module == "all" else seconds.get(module, 0)
        name = f"all {len(results)} modules run" if module == "all" else module
        lines.append(
            f"| {name} | {row['total']} | {row.get('killed', 0)} | "
            f"{row.get('survived', 0)} | {row.get('no tests', 0)} | {row['score']:.1%} | "
            f"{took / 60:.1f} min |"
        )
    not_run = [m for m in MODULES if m not in results]
    lines += ["", f"Run on {os.cpu_count()} cores with `mutmut --max-children 2`."]
    again = {m: t for m, t in (rechecked or {}).items() if m in results}
    if again:
        lines += [
            "",
            "After tests were added, the survivors of these modules were checked again with "
            "`--recheck` (the run time above is the whole run's): "
            + ", ".join(f"`{m}` ({t / 60:.1f} min)" for m, t in again.items())
            + ".",
        ]
    if not_run:
        lines += [
            "",
            f"**Not run yet ({len(not_run)} of {len(MODULES)} modules):** "
            + ", ".join(f"`{m}`" for m in not_run)
            + ". The score above covers only the modules run.",
        ]
    if bugs is not None:
        lines += ["", "## The known bugs", "", "| bug | verdict | failing tests |", "|---|---|---|"]
        for row in bugs:
            verdict = (
                "killed"
                if row["killed"]
                else f"equivalent: {row['equivalent']}"
                if row["equivalent"]
                else "**survived**"
            )
            tests = ", ".join(f"`{t}`" for t in row["failed_tests"][:3])
            lines.append(f"| {row['name']} | {verdict} | {tests} |")
    lines += ["", "## Surviving mutants", ""]
    cwd = Path.cwd()
    try:
        for module, codes in results.items():
            alive = [n for n, c in codes.items() if status(c) in ("survived", "no tests")]
            if not alive:
                continue
            os.chdir(work_dir(module, root))
            lines += [f"### {module} ({len(alive)})", ""]
            for name in alive:
                short = name.split(".", 2)[-1] if name.count(".") >= 2 else name
                reason = equivalents.get(name)
                note = f": {reason}" if reason else ""
                lines.append(f"- `{short}` [{status(codes[name])}]{note}")
                for diff in _diff_lines(name, module)[:4]:
                    lines.append(f"  `{diff.strip()[:140]}`")
            lines.append("")
    finally:
        os.chdir(cwd)
    path.write_text("\n".join(lines).rstrip() + "\n")
    return scores


def _mutmut_run(max_children: int | None) -> tuple[list[str], dict[str, str]]:
    """The ``mutmut run`` command and its environment: fast mode, quiet TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COURSE_ROOT")}
    env.update(COURSE_FAST="1", TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg")
    env.pop("COURSE_ARTIFACTS", None)  # the tests make their own throwaway caches
    cmd = [sys.executable, "-m", "mutmut", "run"]
    if max_children:
        cmd += ["--max-children", str(max_children)]
    return cmd, env


def run_mutmut(
    modules: list[str] | None = None, max_children: int | None = None
) -> dict[str, float]:
    """Run ``mutmut run`` for each module in its work folder; return the seconds each took."""
    cmd, env = _mutmut_run(max_children)
    times = config.repo_root() / "mutants" / "seconds.json"
    seconds = json.loads(times.read_text()) if times.exists() else {}
    for module in modules or list(MODULES):
        work = prepare_work_dir(module)
        shutil.rmtree(work / "mutants", ignore_errors=True)  # fresh: the tests may have changed
        print(f"mutmut: {module} with {', '.join(MODULES[module])}", flush=True)
        start = time.perf_counter()
        subprocess.run(cmd, cwd=work, env=env, check=False, stdout=subprocess.DEVNULL)
        seconds[module] = round(time.perf_counter() - start, 1)
        times.write_text(json.dumps(seconds, indent=1))
        print(f"mutmut: {module} took {seconds[module]:.0f} s", flush=True)
    return seconds


def unkilled(module: str, root: Path | None = None) -> list[str]:
    """The mutants of ``module`` that its last run left alive: survived, no tests, or not
    checked (e.g. new mutants of a function that changed since)."""
    results = read_mutmut_results(root).get(module, {})
    return sorted(name for name, code in results.items() if status(code) != "killed")


def recheck_mutmut(
    modules: list[str] | None = None, max_children: int | None = None
) -> dict[str, float]:
    """Run ``mutmut run <names>`` on the mutants each module's last run left alive.

    mutmut copies the current tests and source, regenerates the mutants of functions that
    changed (their results are dropped), and keeps every other result, so tests added
    after a run are held against the same survivors without a whole new run. A second
    pass checks the mutants that the first one regenerated. Returns the seconds each
    module took, also written to ``mutants/recheck_seconds.json``.
    """
    cmd, env = _mutmut_run(max_children)
    times = config.repo_root() / "mutants" / "recheck_seconds.json"
    seconds = json.loads(times.read_text()) if times.exists() else {}
    for module in modules or list(MODULES):
        work = prepare_work_dir(module)
        start = time.perf_counter()
        for _ in range(2):
            names = unkilled(module)
            if not names:
                break
            print(f"mutmut: rechecking {len(names)} mutants of {module}", flush=True)
            subprocess.run(cmd + names, cwd=work, env=env, check=False, stdout=subprocess.DEVNULL)
        seconds[module] = round(time.perf_counter() - start, 1)
        times.write_text(json.dumps(seconds, indent=1))
    return seconds


def recorded_seconds(root: Path | None = None, name: str = "seconds.json") -> dict[str, float]:
    """The run time of each module's last mutmut run (``mutants/seconds.json``), or of its
    last ``--recheck`` (``name="recheck_seconds.json"``)."""
    times = (root or config.repo_root()) / "mutants" / name
    return json.loads(times.read_text()) if times.exists() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-run", action="store_true", help="report on the existing mutants/ results"
    )
    parser.add_argument("--skip-bugs", action="store_true", help="do not check KNOWN_BUGS")
    parser.add_argument(
        "--recheck",
        action="store_true",
        help="rerun only the mutants the last run left alive, with the current tests",
    )
    parser.add_argument("--max-children", type=int, default=os.cpu_count())
    parser.add_argument("modules", nargs="*", help=f"some of {', '.join(MODULES)} (default all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown modules {unknown}; choose from {list(MODULES)}")
    if args.recheck:
        recheck_mutmut(args.modules or None, args.max_children)
    elif not args.skip_run:
        run_mutmut(args.modules or None, args.max_children)
    bugs = None if args.skip_bugs else check_known_bugs()
    report = config.repo_root() / "docs" / "mutation.md"
    scores = write_report(
        read_mutmut_results(),
        bugs,
        report,
        recorded_seconds(),
        recorded_seconds(name="recheck_seconds.json"),
    )
    overall = scores[-1]["score"]
    print(f"{overall:.1%} of mutants killed (target {TARGET:.0%}); report: {report}")
    missed = [b["name"] for b in bugs or [] if not b["killed"] and not b["equivalent"]]
    if missed:
        print("known bugs that survived: " + "; ".join(missed))
    return 0 if overall >= TARGET and not missed else 1


if __name__ == "__main__":
    sys.exit(main())
