"""Runtime access to the committed contract artifacts.

Used by the node, sdk and bench.  This module only reads the JSON files shipped
as package data (``yilian/contracts/compiled/*.json``) through
:mod:`importlib.resources`; it never imports the vyper compiler, so runtime
installs do not need the ``dev`` extra.  Regenerate the JSON with
``python -m yilian.contracts.build``.

Invariants
----------
* ``load(name)`` returns a fresh :class:`Artifact` on every call (no shared mutable
  ABI between callers).
* ``Artifact.bytecode`` (init code) and ``Artifact.deployed_bytecode`` (runtime
  code) are non-empty raw ``bytes``, decoded from the ``0x`` hex in the JSON.
* ``available()`` lists exactly the names ``load`` accepts, sorted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from yilian.contracts.layout import LayoutError, StorageLayout, parse

__all__ = [
    "Artifact",
    "ArtifactError",
    "ArtifactNotFound",
    "available",
    "load",
]

_PACKAGE = "yilian.contracts"
_DIRNAME = "compiled"
_SUFFIX = ".json"


class ArtifactError(ValueError):
    """An artifact file exists but is malformed."""


class ArtifactNotFound(KeyError):
    """No artifact with the requested name; the message lists the available ones."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.available = available

    def __str__(self) -> str:  # KeyError.__str__ would repr() the message
        listed = ", ".join(self.available) if self.available else "none"
        return (
            f"no contract artifact named {self.name!r} (available: {listed}); "
            "run `python -m yilian.contracts.build` after adding contracts/src/<Name>.vy"
        )


@dataclass(frozen=True)
class Artifact:
    """A compiled contract.

    ``abi`` is the JSON ABI (list of entries); ``bytecode`` is the deployment
    (init) code to send in a contract-creation transaction; ``deployed_bytecode``
    is the runtime code the chain stores at the contract address afterwards;
    ``storage`` says where each storage variable lives (:mod:`yilian.contracts.layout`).
    """

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes
    storage: StorageLayout


def _artifacts_dir() -> Traversable:
    """The package-data directory holding ``<Name>.json`` files."""
    return resources.files(_PACKAGE).joinpath(_DIRNAME)


def available() -> list[str]:
    """Return the sorted names of all shipped artifacts (e.g. ``["RecordStore"]``)."""
    directory = _artifacts_dir()
    if not directory.is_dir():
        return []
    return sorted(
        entry.name[: -len(_SUFFIX)]
        for entry in directory.iterdir()
        if entry.name.endswith(_SUFFIX) and not entry.name.startswith(".") and entry.is_file()
    )


def _decode_hex(value: Any, field: str, name: str) -> bytes:
    """Decode a ``0x``-prefixed, non-empty hex string from artifact *name*."""
    if not isinstance(value, str) or not value.startswith("0x") or len(value) <= 2:
        raise ArtifactError(f"artifact {name!r}: {field} must be a non-empty 0x-hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise ArtifactError(f"artifact {name!r}: {field} is not valid hex") from exc


def load(name: str) -> Artifact:
    """Load the artifact for contract *name* (the source file stem, e.g. ``"RecordStore"``).

    Raises :class:`ArtifactNotFound` (a :class:`KeyError`) if there is no such
    artifact, and :class:`ArtifactError` (a :class:`ValueError`) if the file is
    malformed.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ArtifactNotFound(name, available())
    entry = _artifacts_dir().joinpath(name + _SUFFIX)
    if not entry.is_file():
        raise ArtifactNotFound(name, available())
    try:
        data = json.loads(entry.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"artifact {name!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"artifact {name!r}: top level must be a JSON object")
    if data.get("contractName") != name:
        raise ArtifactError(
            f"artifact {name!r}: contractName is {data.get('contractName')!r}, expected {name!r}"
        )
    abi = data.get("abi")
    if not isinstance(abi, list) or not all(isinstance(item, dict) for item in abi):
        raise ArtifactError(f"artifact {name!r}: abi must be a list of objects")
    try:
        storage = parse(name, data)
    except LayoutError as exc:
        raise ArtifactError(str(exc)) from exc
    return Artifact(
        name=name,
        abi=abi,
        bytecode=_decode_hex(data.get("bytecode"), "bytecode", name),
        deployed_bytecode=_decode_hex(data.get("deployedBytecode"), "deployedBytecode", name),
        storage=storage,
    )
