"""Runs the JavaScript unit tests (tests/js/*.test.mjs: the hub client, the dashboard's model)
under Node's own test runner.

Node >= 18 is required (scripts/setup-chromium installs Debian's nodejs when it is missing);
no npm packages are used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_js_unit_tests():
    node = shutil.which("node")
    assert node, "node is not installed: run scripts/setup-chromium (installs nodejs)"
    result = subprocess.run(
        [node, "--test", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    counts = {key: int(value) for key, value in re.findall(r"^# (\w+) (\d+)$", output, re.M)}
    assert counts.get("pass", 0) >= 30, output
    assert counts.get("fail") == 0 and counts.get("skipped") == 0 and counts.get("todo") == 0, output
