"""Run every benchmark module (or those named on the command line) and print figures."""

from __future__ import annotations

import importlib
import os
import platform
import sys
from pathlib import Path


def _machine() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{os.cpu_count()} cores, {mem_gib:.0f} GiB, {python}"


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = argv or sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
    print(f"# machine: {_machine()}")
    for name in names:
        print(f"\n## {name}")
        module = importlib.import_module(f"benchmarks.bench_{name}")
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
