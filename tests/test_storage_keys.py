"""The registry of LevelDB key prefixes (``yilian.node.storage``) is complete and collision-free.

* Tables are distinct single bytes; within a table no sub-prefix is a prefix of another
  (a table without sub-prefixes holds one kind of key only).
* No module spells a prefix itself: a bytes literal equal to a registered prefix outside
  ``node/storage.py``, or a module-level bytes constant in a module that uses the store,
  fails here (name the new prefix in the registry and import it instead).
* The storage table in ``docs/chain-core.md`` is the registry, rendered.
"""

from __future__ import annotations

import ast
from itertools import combinations
from pathlib import Path

from yilian.node import storage
from yilian.node.storage import KEYS, KeyKind

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "node" / "storage.py"
DOC = ROOT / "docs" / "chain-core.md"
TABLES = {storage.EVM, storage.INDEX, storage.MEMPOOL, storage.WAL, storage.META,
          storage.REQUESTS}


def _sources() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py")
                  if not any(part.startswith(".") for part in p.relative_to(ROOT).parts)
                  and p != REGISTRY)


def _collides(a: KeyKind, b: KeyKind) -> bool:
    return a.table == b.table and (a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix))


def test_tables_are_distinct_single_bytes() -> None:
    assert all(len(t) == 1 for t in TABLES) and len(TABLES) == 6
    assert {k.table for k in KEYS} == TABLES


def test_no_prefix_is_a_prefix_of_another_in_its_table() -> None:
    clashes = [(a.full_prefix, b.full_prefix) for a, b in combinations(KEYS, 2) if _collides(a, b)]
    assert clashes == []


def test_collision_check_catches_a_clash() -> None:
    tx = next(k for k in KEYS if k.prefix == storage.TX_RECORD)
    assert _collides(tx, KeyKind(tx.table, tx.prefix + b"x", "", "", ""))
    assert _collides(tx, KeyKind(tx.table, b"", "", "", ""))
    assert not _collides(tx, KeyKind(storage.WAL, tx.prefix, "", "", ""))


def test_every_named_prefix_is_registered() -> None:
    named = {v for k, v in vars(storage).items() if k.isupper() and isinstance(v, bytes)}
    registered = TABLES | {k.prefix for k in KEYS if k.prefix}
    assert named == registered


def _literal_offences(tree: ast.Module, uses_store: bool) -> list[str]:
    spelled = {k.prefix for k in KEYS if k.prefix} | {k.full_prefix for k in KEYS if k.prefix}
    found = [f"line {n.lineno}: {n.value!r}" for n in ast.walk(tree)
             if isinstance(n, ast.Constant) and isinstance(n.value, bytes) and n.value in spelled]
    if uses_store:
        for stmt in tree.body:
            value = stmt.value if isinstance(stmt, ast.Assign | ast.AnnAssign) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, bytes):
                found.append(f"line {stmt.lineno}: module-level bytes constant {value.value!r}")
    return found


def _uses_store(tree: ast.Module) -> bool:
    module = "yilian.node.storage"
    return any((isinstance(n, ast.ImportFrom) and n.module == module)
               or (isinstance(n, ast.Import) and any(a.name == module for a in n.names))
               for n in ast.walk(tree))


def test_no_module_spells_a_prefix_of_its_own() -> None:
    offences = {}
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        found = _literal_offences(tree, _uses_store(tree))
        if found:
            offences[str(path.relative_to(ROOT))] = found
    assert offences == {}, ("name these prefixes in yilian.node.storage (KEYS) and import "
                            f"them: {offences}")


def test_literal_check_catches_a_prefix_of_its_own() -> None:
    tree = ast.parse('from yilian.node.storage import INDEX\n_NEW = b"zz"\n'
                     'def f() -> bytes:\n    return b"itx"\n')
    assert len(_literal_offences(tree, _uses_store(tree))) == 2
    elsewhere = ast.parse('_OTHER = b"zz"\nk = b"log/"\n')
    assert len(_literal_offences(elsewhere, _uses_store(elsewhere))) == 1


def render_table() -> list[str]:
    """The storage table of docs/chain-core.md, from the registry."""
    rows = ["| table | sub-prefix | then | value | written by |", "|---|---|---|---|---|"]
    for k in KEYS:
        sub = f"`{k.prefix.decode()}`" if k.prefix else ""
        rows.append(f"| `{k.table.decode()}` | {sub} | {k.layout} | {k.value} | "
                    f"`{k.writer}` |")
    return rows


def test_docs_storage_table_is_the_registry() -> None:
    lines = DOC.read_text().splitlines()
    start = lines.index(render_table()[0])
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    expected = "\n".join(render_table())
    assert "\n".join(lines[start:end]) == expected, (
        f"docs/chain-core.md's storage table differs from yilian.node.storage.KEYS; "
        f"replace it with:\n{expected}")
