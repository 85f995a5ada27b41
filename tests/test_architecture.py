"""The project's shape: layers point one way, packages are this repository's."""

from __future__ import annotations

import importlib
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_layers_point_one_way():
    """features <- models <- serving <- sunflower, serving's rooms, no training code in
    serving (import-linter, .importlinter)."""
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run(
        [str(lint), "--config", str(ROOT / ".importlinter")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize("package", ["features", "models", "serving", "sunflower", "simulator"])
def test_generic_package_names_resolve_to_this_repository(package):
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().is_relative_to(ROOT)


def test_tests_are_never_installed():
    assert not (Path(sysconfig.get_paths()["purelib"]) / "tests").exists()
