"""Build time: what a contract's storage looks like, taken from the compiler itself.

:mod:`yilian.contracts.build` writes three artifact fields from here, so that runtime code
(:mod:`yilian.contracts.layout`) reads contract storage without hand-copied slot numbers:

* ``storageLayout``: vyper's own ``layout`` output, verbatim (each storage variable's first
  slot and size in slots);
* ``storageTypes``: each storage variable's type as a tree (:func:`describe`): a HashMap's key
  and value, a struct's members in declaration order with their offsets in words, an
  array's element and length, a byte string's maximum length;
* ``constants``: the module's folded constants of a plain type (integers, booleans, bytes,
  strings, addresses), e.g. the bit positions a contract packs into a ``meta`` word.

Imports :mod:`vyper` lazily (callers are build-time only).

Invariants:

* The output is plain JSON data (dicts, lists, str, int, bool) and a pure function of the
  source and the compiler version, like the rest of the artifact.
* A struct member's offset is the sum of the storage sizes of the members before it (vyper
  packs nothing), and a type's ``words`` is vyper's ``storage_size_in_words`` (1 for a
  HashMap, whose entries live at hashed slots).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class LayoutExportError(RuntimeError):
    """The compiler answered with a type or constant this exporter does not know."""


def describe(typ: Any) -> dict[str, Any]:
    """A vyper storage type as a JSON tree: ``kind`` (``value``, ``bytes``, ``string``,
    ``hashmap``, ``struct``, ``dynarray``, ``array``), ``type`` (vyper's spelling),
    ``words`` and the parts of a compound type."""
    from vyper.semantics.types import (
        BytesT,
        DArrayT,
        HashMapT,
        SArrayT,
        StringT,
        StructT,
    )

    out: dict[str, Any] = {"type": str(typ)}
    if isinstance(typ, HashMapT):
        out.update(kind="hashmap", words=1, key=describe(typ.key_type),
                   value=describe(typ.value_type))
        return out
    out["words"] = int(typ.storage_size_in_words)
    if isinstance(typ, StructT):
        members = []
        offset = 0
        for name, member_type in typ.members.items():
            members.append({"name": name, "offset": offset, "type": describe(member_type)})
            offset += int(member_type.storage_size_in_words)
        out.update(kind="struct", name=typ._id, members=members)
    elif isinstance(typ, DArrayT):
        out.update(kind="dynarray", length=int(typ.length), element=describe(typ.value_type))
    elif isinstance(typ, SArrayT):
        out.update(kind="array", length=int(typ.length), element=describe(typ.value_type))
    elif isinstance(typ, StringT):
        out.update(kind="string", length=int(typ.length))
    elif isinstance(typ, BytesT):
        out.update(kind="bytes", length=int(typ.length))
    else:
        out["kind"] = "value"
    return out


def _constant_value(value: Any, name: str) -> Any:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    raise LayoutExportError(f"constant {name}: unexpected folded value {value!r}")


def export(path: Path, settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(storageTypes, constants)`` of the contract at ``path`` (semantic analysis only,
    no code generation)."""
    from vyper.compiler.input_bundle import FileInput
    from vyper.compiler.phases import CompilerData

    file_input = FileInput(contents=path.read_text(encoding="utf-8"), source_id=0,
                           path=Path(path.name), resolved_path=Path(path.name))
    data = CompilerData(file_input, settings=settings)
    module_t = data.annotated_vyper_module._metadata["type"]
    types: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    for name, var in module_t.variables.items():
        if var.is_constant:
            folded = var.decl_node.value.get_folded_value()
            if hasattr(folded, "value"):
                constants[name] = {"type": str(var.typ),
                                   "value": _constant_value(folded.value, name)}
        elif not var.is_immutable and not var.is_transient:
            types[name] = describe(var.typ)
    return types, constants
