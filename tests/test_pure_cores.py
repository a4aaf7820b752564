"""ARCHITECTURE.md house rule 1: the pure cores import only the standard library (and other
pure cores), so they are tested with no server, no database and no Django."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

PURE = {
    "hub.socket.protocol": set(),
    "hub.policies": set(),
    "hub.socket.session": {"hub.socket", "hub.socket.protocol", "hub.policies"},
    "slurm_monitor.fields": set(),
    "slurm_monitor.snapshot": {"slurm_monitor", "slurm_monitor.snapshot", "slurm_monitor.fields"},
    "slurm_monitor.metrics": {"slurm_monitor", "slurm_monitor.snapshot"},
    "slurm_monitor.events": {"slurm_monitor", "slurm_monitor.snapshot", "slurm_monitor.metrics",
                             "slurm_monitor.reasons"},
    "slurm_monitor.reasons": set(),
    "slurm_monitor.diff": {"slurm_monitor", "slurm_monitor.snapshot", "slurm_monitor.events"},
    "slurm_monitor.alerts": {"slurm_monitor", "slurm_monitor.snapshot", "slurm_monitor.events",
                             "slurm_monitor.metrics"},
    "slurm_monitor.cache": {"slurm_monitor", "slurm_monitor.snapshot"},
    "slurm_monitor.arrays": {"slurm_monitor", "slurm_monitor.snapshot"},
}


def imported_names(module_name: str) -> set[str]:
    tree = ast.parse(Path(importlib.import_module(module_name).__file__).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return names


@pytest.mark.parametrize("module_name", sorted(PURE))
def test_pure_core_imports_only_the_standard_library(module_name):
    allowed = PURE[module_name]
    for name in imported_names(module_name):
        assert name.split(".")[0] in sys.stdlib_module_names | {"__future__"} or name in allowed, \
            f"{module_name} imports {name}"
