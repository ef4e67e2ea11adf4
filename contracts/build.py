"""Compile ``contracts/src/*.vy`` into committed JSON artifacts.

Usage::

    python -m yilian.contracts.build           # (re)write contracts/compiled/*.json
    python -m yilian.contracts.build --check   # verify only; exit 1 if anything is stale

This module is a *build-time* tool and imports :mod:`vyper` lazily; runtime code
(node, sdk, bench) must use :mod:`yilian.contracts.artifacts` instead, which only
reads the committed JSON and never needs the compiler.

Invariants
----------
* Every ``src/<Name>.vy`` maps to exactly one ``compiled/<Name>.json`` and vice
  versa; artifacts without a source are "orphaned" and are removed by a build and
  reported by ``--check``.
* An artifact is a pure function of (source bytes, compiler version, pinned
  settings): compiling the same source with the same vyper release yields a
  byte-identical file.  The compile path handed to vyper is the bare file name,
  never an absolute path, so the output does not depend on the checkout location.
* Files are rendered deterministically: UTF-8, ``\\n`` line endings, keys sorted,
  2-space indent, trailing newline.
* ``--check`` never writes to disk.
* Besides the ABI and bytecode, an artifact carries the compiler's storage layout, the
  storage types and the folded constants (:mod:`yilian.contracts.layout_export`), so
  runtime code reads contract storage with no slot number copied by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yilian.contracts.layout_export import export

PACKAGE_DIR: Path = Path(__file__).resolve().parent
"""Directory of the ``yilian.contracts`` package."""

SRC_DIR: Path = PACKAGE_DIR / "src"
"""Vyper sources: one contract per ``<Name>.vy`` file."""

ARTIFACTS_DIR: Path = PACKAGE_DIR / "compiled"
"""Generated, committed artifacts: one ``<Name>.json`` per source."""

REQUIRED_VYPER_VERSION: str = "0.4.3"
"""Exact vyper release the committed artifacts are built with (see pyproject dev extra)."""

EVM_VERSION: str = "prague"
"""Pinned target fork. vyper 0.4.3 supports "prague"; the node runs py-evm's PragueVM."""

OPTIMIZE: str = "gas"
"""Pinned optimisation mode (vyper ``OptimizationLevel.GAS``)."""

ARTIFACT_KEYS: frozenset[str] = frozenset(
    {
        "abi",
        "bytecode",
        "compiler",
        "constants",
        "contractName",
        "deployedBytecode",
        "evmVersion",
        "optimize",
        "sourceSha256",
        "storageLayout",
        "storageTypes",
    }
)
"""Exact key set of every artifact JSON object."""


class BuildError(RuntimeError):
    """Raised when a source cannot be compiled or the compiler is unsuitable."""


def source_paths(src_dir: Path = SRC_DIR) -> list[Path]:
    """Return the ``*.vy`` files in *src_dir*, sorted by name (stable build order)."""
    return sorted(p for p in src_dir.glob("*.vy") if p.is_file())


def artifact_path(name: str, out_dir: Path = ARTIFACTS_DIR) -> Path:
    """Return the artifact file for contract *name* (``<out_dir>/<name>.json``)."""
    return out_dir / f"{name}.json"


def _vyper_version() -> str:
    """Return the installed vyper version, or raise :class:`BuildError` if missing."""
    try:
        import vyper
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BuildError(
            "vyper is not installed; install the dev extra (pip install -e '.[dev]')"
        ) from exc
    return str(vyper.__version__)


def _hex(code: Any, what: str, name: str) -> str:
    """Normalise compiler bytecode output to lower-case ``0x``-prefixed hex.

    Invariant: the result is non-empty, even-length hex after the prefix.
    """
    if isinstance(code, bytes | bytearray):
        text = bytes(code).hex()
    elif isinstance(code, str):
        text = code[2:] if code.startswith(("0x", "0X")) else code
    else:
        raise BuildError(f"{name}: unexpected {what} type {type(code).__name__}")
    text = text.lower()
    if not text or len(text) % 2:
        raise BuildError(f"{name}: compiler returned malformed {what}")
    bytes.fromhex(text)  # validates the alphabet
    return "0x" + text


def compile_source(path: Path) -> dict[str, Any]:
    """Compile one Vyper source file into an artifact dict (not yet rendered).

    The contract name is the file stem.  Settings are pinned explicitly
    (:data:`EVM_VERSION`, :data:`OPTIMIZE`) rather than taken from defaults, and
    the installed vyper must be exactly :data:`REQUIRED_VYPER_VERSION`.

    Invariant: the returned dict has exactly the keys in :data:`ARTIFACT_KEYS`.
    """
    version = _vyper_version()
    if version != REQUIRED_VYPER_VERSION:
        raise BuildError(
            f"vyper {REQUIRED_VYPER_VERSION} is required to build artifacts, found vyper {version}"
        )

    import vyper
    from vyper.compiler.settings import OptimizationLevel, Settings

    name = path.stem
    raw = path.read_bytes()
    source = raw.decode("utf-8")
    settings = Settings(evm_version=EVM_VERSION, optimize=OptimizationLevel.from_string(OPTIMIZE))
    try:
        out = vyper.compile_code(
            source,
            # Bare file name: keeps the output independent of the checkout path.
            contract_path=path.name,
            output_formats=["abi", "bytecode", "bytecode_runtime", "layout"],
            settings=settings,
        )
        storage_types, constants = export(path, settings)
    except Exception as exc:  # vyper raises many unrelated exception types
        raise BuildError(f"{path.name}: compilation failed:\n{exc}") from exc

    artifact: dict[str, Any] = {
        "contractName": name,
        "abi": out["abi"],
        "bytecode": _hex(out["bytecode"], "bytecode", name),
        "deployedBytecode": _hex(out["bytecode_runtime"], "runtime bytecode", name),
        "compiler": f"vyper {version}",
        "evmVersion": EVM_VERSION,
        "optimize": OPTIMIZE,
        "sourceSha256": hashlib.sha256(raw).hexdigest(),
        "storageLayout": out["layout"],
        "storageTypes": storage_types,
        "constants": constants,
    }
    assert set(artifact) == ARTIFACT_KEYS
    return artifact


def render(artifact: dict[str, Any]) -> str:
    """Serialise an artifact deterministically (sorted keys, indent 2, trailing newline)."""
    return json.dumps(artifact, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def compile_all(src_dir: Path = SRC_DIR) -> dict[str, str]:
    """Compile every source in *src_dir* in memory.

    Returns ``{contract name: rendered JSON text}``, ordered by name.
    Raises :class:`BuildError` if there are no sources or any fails to compile.
    """
    paths = source_paths(src_dir)
    if not paths:
        raise BuildError(f"no *.vy sources found in {src_dir}")
    return {p.stem: render(compile_source(p)) for p in paths}


def _read_text(path: Path) -> str | None:
    """Return the exact file contents (no newline translation), or None if absent."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None


def _orphans(expected: dict[str, str], out_dir: Path) -> list[Path]:
    """Artifact files in *out_dir* that have no corresponding source."""
    if not out_dir.is_dir():
        return []
    return sorted(p for p in out_dir.glob("*.json") if p.stem not in expected)


def check(src_dir: Path = SRC_DIR, out_dir: Path = ARTIFACTS_DIR) -> list[str]:
    """Compare committed artifacts with a fresh in-memory compile; write nothing.

    Returns a list of human-readable problems, empty iff every artifact is
    byte-identical to what the current sources compile to and there are no
    orphaned artifacts.
    """
    expected = compile_all(src_dir)
    problems: list[str] = []
    for name, text in expected.items():
        path = artifact_path(name, out_dir)
        current = _read_text(path)
        if current is None:
            problems.append(f"missing: {path.name} (source {name}.vy has no artifact)")
        elif current != text:
            problems.append(f"stale:   {path.name} {_describe_diff(current, text)}")
    for orphan in _orphans(expected, out_dir):
        problems.append(f"orphan:  {orphan.name} (no source {orphan.stem}.vy)")
    return problems


def _describe_diff(current: str, expected: str) -> str:
    """Name the top-level artifact fields that differ, for a useful --check message."""
    try:
        old = json.loads(current)
    except json.JSONDecodeError:
        return "(not valid JSON)"
    new = json.loads(expected)
    if not isinstance(old, dict):
        return "(not a JSON object)"
    fields = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not fields:
        return "(formatting differs)"
    return "(differs in: " + ", ".join(fields) + ")"


def _write_atomic(path: Path, text: str) -> None:
    """Write *text* to *path* via a temp file + rename, with ``\\n`` line endings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build(src_dir: Path = SRC_DIR, out_dir: Path = ARTIFACTS_DIR) -> list[str]:
    """Compile all sources and bring *out_dir* in sync with them.

    Everything is compiled before anything is written, so a compile error leaves
    the artifacts untouched.  Unchanged files are not rewritten (mtimes are
    preserved) and orphaned ``*.json`` artifacts are deleted.  Returns a list of
    the changes made (empty if already up to date).
    """
    expected = compile_all(src_dir)
    changes: list[str] = []
    for name, text in expected.items():
        path = artifact_path(name, out_dir)
        current = _read_text(path)
        if current != text:
            _write_atomic(path, text)
            changes.append(f"{'wrote' if current is None else 'updated'}: {path.name}")
    for orphan in _orphans(expected, out_dir):
        orphan.unlink()
        changes.append(f"removed orphan: {orphan.name}")
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit status (0 ok, 1 stale, 2 error)."""
    parser = argparse.ArgumentParser(
        prog="python -m yilian.contracts.build",
        description="Compile contracts/src/*.vy into contracts/compiled/*.json.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compile in memory and fail if committed artifacts are stale or missing",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check()
            if problems:
                print(
                    "contract artifacts are out of date with contracts/src:",
                    *(f"  {p}" for p in problems),
                    "run: python -m yilian.contracts.build",
                    sep="\n",
                    file=sys.stderr,
                )
                return 1
            print(f"contract artifacts up to date ({len(source_paths())} checked)")
            return 0
        changes = build()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for change in changes:
        print(change)
    if not changes:
        print("contract artifacts already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
