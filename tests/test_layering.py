"""No import circles and no upward imports, in the whole of yilian.

The layer table is written once, in docs/architecture.md ("Layers"): each package and the
packages it may import. This test reads that table, walks the imports of every module of
every package (module level, function level and ``TYPE_CHECKING`` blocks alike: a circle
only type checking sees is still a circle in the design), and fails on

* an import of a package the table does not allow (an upward or sideways import), and
* any import circle between modules, inside a package or across packages.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def package_dirs() -> dict[str, Path]:
    """``yilian.<package>`` -> its folder, from pyproject's package-dir mapping."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in mapping.items()}


def layer_table() -> dict[str, set[str]]:
    """``yilian.<package>`` -> the packages it may import, from docs/architecture.md."""
    text = ARCHITECTURE.read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`yilian."):
            continue
        allowed = set(re.findall(r"`(yilian\.[a-z_]+)`", cells[2]))
        table[cells[0].strip("`")] = allowed
    return table


def modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package, folder in package_dirs().items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The yilian modules that ``path`` (module ``name``) imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
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
            if target and target != name:
                found.add(target)
    return found


def package_of(module: str, packages: list[str]) -> str:
    return next(p for p in packages if module == p or module.startswith(p + "."))


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    graph = {name: imported(path, name, known) for name, path in mods.items()}
    for name, deps in graph.items():
        # A submodule's import of its own package's __init__ is how Python loads it, not
        # a dependency of the design (``from yilian.node import wire`` names the module).
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    return graph


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


# -- the checks -------------------------------------------------------------------------------


def test_the_layer_table_names_every_package_once() -> None:
    table = layer_table()
    assert set(table) == set(package_dirs()), (
        "docs/architecture.md's layer table and pyproject's packages differ: "
        f"only in the table {sorted(set(table) - set(package_dirs()))}, only in pyproject "
        f"{sorted(set(package_dirs()) - set(table))}")
    for package, allowed in table.items():
        assert package not in allowed and allowed <= set(table), (package, allowed)


def test_the_layer_table_itself_has_no_circle() -> None:
    assert find_cycle(layer_table()) is None


def test_no_upward_or_sideways_imports() -> None:
    table = layer_table()
    packages = sorted(table, key=len, reverse=True)
    wrong = sorted(
        f"{module} imports {dep}"
        for module, deps in import_graph().items() for dep in deps
        if (a := package_of(module, packages)) != (b := package_of(dep, packages))
        and b not in table[a])
    assert not wrong, ("imports the layer table in docs/architecture.md does not allow "
                       "(move the code down a layer, or pass it in through an interface):\n"
                       + "\n".join(wrong))


def test_no_import_circle_anywhere() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, (
        "import circle: " + " -> ".join(cycle or []) + "; make the lower module depend on a "
        "Protocol (yilian.node.interfaces in node/) and wire the parts where they are built "
        "(yilian.node.service)")


def test_the_node_parts_do_not_import_the_composition_root() -> None:
    users = sorted(m for m, deps in import_graph().items() if "yilian.node.service" in deps
                   and m.startswith("yilian.node."))
    assert users == [], users


# The node's parts behind the API's seam (yilian.node.node_api.NodeAPI): the API reaches them
# only through the protocol, never by importing them.
BEHIND_THE_SEAM = ("yilian.node.service", "yilian.node.ledger", "yilian.node.consensus_driver",
                   "yilian.node.producer", "yilian.node.storage", "yilian.node.liveness",
                   "yilian.node.mempool", "yilian.node.p2p_bridge")


def test_the_api_knows_the_node_only_through_its_seam() -> None:
    users = sorted(f"{m} imports {d}" for m, deps in import_graph().items()
                   if m.startswith("yilian.api") for d in deps if d in BEHIND_THE_SEAM)
    assert users == [], ("use yilian.node.node_api.NodeAPI (and its read protocols) "
                         f"instead: {users}")


def test_the_walk_sees_every_kind_of_import(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text("from typing import TYPE_CHECKING\n"
                      "from yilian.node import wire\n"
                      "import yilian.protocol.envelope\n"
                      "if TYPE_CHECKING:\n    from yilian.node.chain import ChainCore\n"
                      "def f():\n    from yilian.node.service import Node\n"
                      "    from . import ledger\n")
    known = set(modules())
    assert imported(module, "yilian.node.probe", known) == {
        "yilian.node.wire", "yilian.protocol.envelope", "yilian.node.chain",
        "yilian.node.service", "yilian.node.ledger"}
    graph = import_graph()
    assert "yilian.node.ledger" in graph["yilian.node.service"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_an_upward_import_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check fails on a planted node -> api import (so it is not vacuous)."""
    graph = import_graph()
    graph["yilian.node.ledger"] = graph["yilian.node.ledger"] | {"yilian.api.app"}
    monkeypatch.setattr(sys.modules[__name__], "import_graph", lambda: graph)
    planted = re.escape("yilian.node.ledger imports yilian.api.app")
    with pytest.raises(AssertionError, match=planted):
        test_no_upward_or_sideways_imports()
