"""The complete example of docs/testing.md runs: its conftest.py and test module pass as a host's would.

docs/examples/testing/ is copied into an empty directory (a host project: its app, its conftest, its
tests, nothing of ours but the installed package) and run by pytest in a process of its own, so our
plugin is loaded the way a host gets it, from the package's entry point.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "docs" / "examples" / "testing"


def test_the_testing_pages_example_project_passes(tmp_path: Path) -> None:
    project = tmp_path / "shop_project"
    shutil.copytree(EXAMPLES, project, ignore=shutil.ignore_patterns("__pycache__"))
    expected = sum(
        len(re.findall(r"^def test_", module.read_text(encoding="utf-8"), re.MULTILINE))
        for module in EXAMPLES.glob("test_*.py")
    )
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DISCORD_ROLES_", "PYTEST_"))  # the example sets what it needs itself
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env={**environment, "PYTHONPATH": str(ROOT)},  # this checkout's package, as if installed
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"docs/examples/testing failed as a host project:\n{report}"
    assert f"{expected} passed" in report, f"expected all {expected} example tests to run:\n{report}"
    assert "I/O operation on closed file" not in report, "the example's app left a delivery thread running"
