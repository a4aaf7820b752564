"""No import cycles in the hub, and no function-local import hiding one.

The graph: every hub module's imports of other hub modules, module-level ones and the ones
inside functions alike (a function-local import that closes a cycle is a cycle postponed,
not removed). Then every hub module is imported in a fresh interpreter (after Django's
set-up, as the server does), so an import that only works in one order fails here too.
Function-local imports in the engine (and the modules split from it) must say why: only
Django's app loading justifies them, stated in a comment on the line or the one above.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "hub"
# Modules whose function-local imports must carry the app-loading reason.
STRICT = ("hub/engine/", "hub/socket/consumers.py", "hub/rest/selectors.py", "hub/ops/stats_recorder.py",
          "hub/models.py")
REASON = "app-loading"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def hub_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(HUB.rglob("*.py"))
            if "migrations" not in path.parts}


def imported(node: ast.AST, known: set[str]) -> list[str]:
    """The hub modules an import statement loads (``from hub import x`` counts as hub.x)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    else:
        return []
    return [name for name in names if name in known]


def function_local(tree: ast.Module) -> set[ast.AST]:
    inner: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner.update(sub for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom)))
    return inner


def type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """Imports under ``if TYPE_CHECKING:`` never run."""
    found: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            found.update(sub for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom)))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = hub_modules()
    known = set(modules)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skipped = type_checking_only(tree)
        for node in ast.walk(tree):
            if node not in skipped:
                graph[name].update(m for m in imported(node, known) if m != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return None


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_hub_modules_even_through_function_local_imports():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_function_local_imports_in_the_engine_are_there_for_django_app_loading():
    unexplained = []
    for path in hub_modules().values():
        relative = path.relative_to(ROOT).as_posix()
        if not relative.startswith(STRICT):
            continue
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        for node in function_local(tree) - type_checking_only(tree):
            around = " ".join(lines[max(0, node.lineno - 3):node.lineno])
            if REASON not in around:
                unexplained.append(f"{relative}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert unexplained == []


def test_every_hub_module_imports_in_a_fresh_interpreter():
    names = sorted(hub_modules())
    script = (
        "import importlib, os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'realtime_project.test_settings')\n"
        "import django\n"
        "django.setup()\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
