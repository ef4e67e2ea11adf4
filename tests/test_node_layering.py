"""No import circles inside ``yilian.node``.

Every import of every module under node/ counts: module level, function level and
``TYPE_CHECKING`` blocks alike (a circle that only type checking sees is still a circle in
the design). The parts of a node meet in :mod:`yilian.node.interfaces` and are wired in
:mod:`yilian.node.service`, so the graph of node/ modules must be acyclic.
"""

from __future__ import annotations

import ast
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
PACKAGE = "yilian.node"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(NODE_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def node_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(NODE_DIR.rglob("*.py"))}


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The node/ modules that ``path`` (module ``name``) imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]  # a name inside a module: the module
            if target and target != name and target != PACKAGE:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = node_modules()
    known = set(modules)
    return {name: imported(path, name, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)) is not None:
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)) is not None:
            return cycle
    return None


def test_the_walk_sees_module_and_function_level_imports(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text("from typing import TYPE_CHECKING\n"
                      "from yilian.node import wire\n"
                      "if TYPE_CHECKING:\n    from yilian.node.chain import ChainCore\n"
                      "def f():\n    from yilian.node.service import Node\n")
    known = set(node_modules())
    assert imported(module, "yilian.node.probe", known) == {
        "yilian.node.wire", "yilian.node.chain", "yilian.node.service"}
    graph = import_graph()
    assert "yilian.node.ledger" in graph["yilian.node.service"]
    assert "yilian.node.interfaces" in graph["yilian.node.ledger"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_inside_node() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, (
        "import circle in node/: " + " -> ".join(cycle or []) + "; make the lower module "
        "depend on a Protocol in yilian.node.interfaces and wire the parts in "
        "yilian.node.service")


def test_the_parts_do_not_import_the_composition_root() -> None:
    graph = import_graph()
    users = sorted(m for m, deps in graph.items() if "yilian.node.service" in deps)
    assert users == [m for m in users if m in {"yilian.node.runner", "yilian.node.cli",
                                               "yilian.node.launcher"}], users
