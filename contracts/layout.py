"""Runtime: where a contract keeps each storage variable, from its artifact.

:mod:`yilian.contracts.layout_export` writes the compiler's storage layout, the storage
types and the folded constants into every artifact at build time; :func:`parse` turns them
into a :class:`StorageLayout` so code can read a contract's storage words directly (see
:mod:`yilian.node.domain_readers`) with no slot number copied by hand.

Vyper's rules, which these helpers follow (vyper 0.4.3, checked against real state in
``tests/test_layout.py``):

* a variable of ``n`` words occupies slots ``slot .. slot + n - 1``;
* a HashMap entry lives at ``keccak256(slot ‖ key)`` (the slot first, the reverse of
  Solidity), its key a 32-byte word (:func:`key_word`); a nested map hashes again;
* a struct's members follow each other with no packing (``StructMember.offset``);
* a byte string is a length word followed by its data words, left-aligned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak

__all__ = [
    "LayoutError",
    "StorageLayout",
    "StorageType",
    "StorageVar",
    "StructMember",
    "key_word",
    "map_slot",
    "parse",
]

WORD = 32
_KINDS = frozenset({"value", "bytes", "string", "hashmap", "struct", "dynarray", "array"})


class LayoutError(ValueError):
    """An artifact's layout is missing or malformed, or names no such variable."""


@dataclass(frozen=True)
class StructMember:
    name: str
    offset: int  # words after the struct's first slot
    type: StorageType


@dataclass(frozen=True)
class StorageType:
    kind: str  # one of _KINDS
    type: str  # vyper's spelling, e.g. "HashMap[bytes32, Member]", "uint8", "String[64]"
    words: int
    length: int = 0  # max bytes of a byte string, max/fixed items of an array
    key: StorageType | None = None  # hashmap
    value: StorageType | None = None  # hashmap value, array element
    members: tuple[StructMember, ...] = ()  # struct

    def member(self, name: str) -> StructMember:
        """The struct member ``name`` (LayoutError naming the members when absent)."""
        for m in self.members:
            if m.name == name:
                return m
        raise LayoutError(f"{self.type} has no member {name!r} "
                          f"(members: {', '.join(m.name for m in self.members) or 'none'})")


@dataclass(frozen=True)
class StorageVar:
    name: str
    slot: int
    type: StorageType


@dataclass(frozen=True)
class StorageLayout:
    contract: str
    variables: Mapping[str, StorageVar]
    constants: Mapping[str, bool | int | str]

    def var(self, name: str) -> StorageVar:
        try:
            return self.variables[name]
        except KeyError:
            raise LayoutError(f"{self.contract} has no storage variable {name!r} "
                              f"(has: {', '.join(sorted(self.variables))})") from None

    def constant(self, name: str) -> Any:
        try:
            return self.constants[name]
        except KeyError:
            raise LayoutError(f"{self.contract} has no constant {name!r}") from None


def key_word(key_type: StorageType, value: Any) -> bytes:
    """A HashMap key as the 32-byte word vyper hashes: integers big-endian, an address
    left-padded, ``bytes32`` as is, a bool as 0/1."""
    t = key_type.type
    if t == "address":
        raw = bytes(value)
        if len(raw) != 20:
            raise LayoutError(f"an address key is 20 bytes, got {len(raw)}")
        return raw.rjust(WORD, b"\x00")
    if t == "bytes32":
        raw = bytes(value)
        if len(raw) != WORD:
            raise LayoutError(f"a bytes32 key is 32 bytes, got {len(raw)}")
        return raw
    if t == "bool":
        return int(bool(value)).to_bytes(WORD, "big")
    if t.startswith("uint"):
        return int(value).to_bytes(WORD, "big")
    raise LayoutError(f"keys of type {t} are not supported")


def map_slot(base: int, key: bytes) -> int:
    """The slot of a HashMap entry: ``keccak256(base ‖ key)``."""
    if len(key) != WORD:
        raise LayoutError(f"a map key word is 32 bytes, got {len(key)}")
    return int.from_bytes(keccak(base.to_bytes(WORD, "big") + key), "big")


def _int(value: Any, where: str, least: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise LayoutError(f"{where}: expected an integer >= {least}, got {value!r}")
    return value


def _type(tree: Any, where: str) -> StorageType:
    if not isinstance(tree, dict) or tree.get("kind") not in _KINDS:
        raise LayoutError(f"{where}: not a storage type: {tree!r}")
    kind, name = tree["kind"], tree.get("type")
    words = _int(tree.get("words"), f"{where}.words", 1)
    if not isinstance(name, str):
        raise LayoutError(f"{where}: a storage type needs its 'type' name")
    if kind == "hashmap":
        return StorageType(kind, name, words, key=_type(tree.get("key"), f"{where}.key"),
                           value=_type(tree.get("value"), f"{where}.value"))
    if kind == "struct":
        raw = tree.get("members")
        if not isinstance(raw, list):
            raise LayoutError(f"{where}: a struct needs 'members'")
        members = []
        for m in raw:
            if not isinstance(m, dict) or not isinstance(m.get("name"), str):
                raise LayoutError(f"{where}: a struct member needs a name: {m!r}")
            at = f"{where}.{m['name']}"
            members.append(StructMember(m["name"], _int(m.get("offset"), f"{at}.offset"),
                                        _type(m.get("type"), at)))
        return StorageType(kind, name, words, members=tuple(members))
    length = _int(tree.get("length", 0), f"{where}.length")
    if kind in ("dynarray", "array"):
        return StorageType(kind, name, words, length=length,
                           value=_type(tree.get("element"), f"{where}[]"))
    return StorageType(kind, name, words, length=length)


def parse(contract: str, data: Mapping[str, Any]) -> StorageLayout:
    """The :class:`StorageLayout` of an artifact's JSON object (LayoutError, naming what is
    wrong, for anything else)."""
    layout = data.get("storageLayout")
    types = data.get("storageTypes")
    constants = data.get("constants")
    slots = layout.get("storage_layout", {}) if isinstance(layout, dict) else None
    if not isinstance(slots, dict) or not isinstance(types, dict) \
            or not isinstance(constants, dict):
        raise LayoutError(f"artifact {contract!r} has no storage layout; rebuild it with "
                          "`python -m yilian.contracts.build`")
    variables: dict[str, StorageVar] = {}
    for name, tree in types.items():
        entry = slots.get(name)
        if not isinstance(entry, dict):
            raise LayoutError(f"artifact {contract!r}: no slot for storage variable {name!r}")
        slot = _int(entry.get("slot"), f"{contract}.{name}.slot")
        typ = _type(tree, f"{contract}.{name}")
        if entry.get("n_slots") != typ.words:
            raise LayoutError(f"artifact {contract!r}: {name} takes {entry.get('n_slots')} "
                              f"slots in the layout but {typ.words} words by its type")
        variables[name] = StorageVar(name, slot, typ)
    values: dict[str, bool | int | str] = {}
    for name, c in constants.items():
        if isinstance(c, dict) and isinstance(c.get("value"), bool | int | str):
            values[name] = c["value"]
    return StorageLayout(contract, variables, values)
