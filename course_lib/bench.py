"""Headless benchmarks: ``python -m course_lib.bench mixed_precision``.

Introduced in 06_mixed_precision. Runs the same measurement as the notebook without
Jupyter, so it can run on a machine with a GPU. It writes
``results/bench/mixed_precision-<device>.json`` (fast mode: under ``artifacts/fast/bench``);
the notebook shows GPU results only from such files, produced on a GPU.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from course_lib import config
from course_lib.atomic import write_json_atomic
from course_lib.data import load_dataset
from course_lib.report import Result, comparison_table, environment_info

BENCHMARKS = ("mixed_precision",)


def bench_dir() -> Path:
    """``results/bench`` in full mode, ``artifacts/fast/bench`` in fast mode."""
    folder = (
        config.artifacts_dir("bench")
        if config.is_fast()
        else config.repo_root() / ("results/bench")
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def write_bench(name: str, results: list[Result], device: str, out: Path | None = None) -> Path:
    """Write a benchmark's Results with the device and environment that produced them."""
    from course_lib.system import gpu_names

    payload = {
        "benchmark": name,
        "mode": config.mode(),
        "dataset": "mnist",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device,
        "device_kind": "gpu" if gpu_names() else "cpu",
        "environment": environment_info(),
        "results": [r.to_dict() for r in results],
    }
    path = out or bench_dir() / f"{name}-{_slug(device)}.json"
    return write_json_atomic(payload, path)


def load_bench(name: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """Every stored run of benchmark ``name``: ``[{..., "results": [Result, ...]}, ...]``."""
    folder = folder or bench_dir()
    runs = []
    for path in sorted(folder.glob(f"{name}-*.json")):
        payload = json.loads(path.read_text())
        payload["results"] = [Result.from_dict(r) for r in payload["results"]]
        payload["path"] = path
        runs.append(payload)
    return runs


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see ``python -m course_lib.bench --help``."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.bench", description=__doc__)
    parser.add_argument("benchmark", choices=BENCHMARKS)
    parser.add_argument("--fast", action="store_true", help="small data subset (COURSE_FAST)")
    parser.add_argument("--models", nargs="+", default=["seed_cnn", "wide_cnn"])
    parser.add_argument("--policies", nargs="+", default=None)
    parser.add_argument("--out", type=Path, default=None, help="file to write (default: auto)")
    args = parser.parse_args(argv)
    if args.fast:
        import os

        os.environ[config.FAST_ENV] = "1"
    import course_lib
    from course_lib import mixed_precision

    course_lib.setup(verbose=False)
    data = load_dataset("mnist")
    policies = tuple(args.policies or mixed_precision.POLICIES)
    results = mixed_precision.benchmark(data, tuple(args.models), policies, folder="bench")
    device = mixed_precision.device_name()
    path = write_bench(args.benchmark, results, device, args.out)
    for model in dict.fromkeys(r.model for r in results):
        print(f"\n{model} on {device}")
        print(comparison_table([r for r in results if r.model == model]))
        for r in results:
            if r.model == model:
                print(f"  {r.extra['policy']:15s} {r.extra['train_images_per_s']:>10,.0f} images/s")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
