"""The one byte encoding of a record that is hashed, signed and stored on chain.

Invariants: ``parse_canonical(canonical_bytes(t, p)) == (RecordType(t), SCHEMA_VERSION,
validate_record(t, p))``; ``parse_canonical`` accepts *only* such byte strings and raises
:class:`CanonicalError` (not an encoding) or
:class:`~yilian.protocol.standard.enums.RecordInvalid` (bad content), nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from yilian.protocol.errors import YilianError
from yilian.protocol.standard.enums import FieldError, RecordInvalid, RecordType
from yilian.protocol.standard.fields import SCHEMA_VERSION, json_type
from yilian.protocol.standard.models import validate_record

__all__ = ["MAX_CANONICAL_BYTES", "CanonicalError", "canonical_bytes", "parse_canonical"]

MAX_CANONICAL_BYTES: Final = 1 << 20
"""``parse_canonical`` refuses larger inputs (1 MiB) before parsing them."""


class CanonicalError(YilianError, ValueError):
    """Bytes given to :func:`parse_canonical` are not a canonical record encoding."""

# ------------------------------------------------------------------------- canonical


def _encode(obj: object) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_bytes(
    rtype: RecordType | int | str,
    payload: Mapping[str, Any],
    *,
    subject: str | None = None,
) -> bytes:
    """The canonical encoding of a record: validate, then encode
    ``{"type": label, "schema": SCHEMA_VERSION, "data": normalised}`` as UTF-8 JSON with
    sorted keys, no whitespace and no ``\\u`` escapes for non-ASCII text.

    Raises :class:`RecordInvalid` exactly when :func:`validate_record` would.
    """
    rt = RecordType.parse(rtype)
    data = validate_record(rt, payload, subject=subject)
    return _encode({"type": rt.label, "schema": SCHEMA_VERSION, "data": data})


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise CanonicalError(f"duplicate JSON key {key!r}")
        obj[key] = value
    return obj


def _no_constants(name: str) -> object:
    raise CanonicalError(f"{name} is not valid JSON")


_MAX_DEPTH: Final = 16
_JSON_STRING_RE: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE: Final = re.compile(rb"[\[\]{}]")


def _check_depth(raw: bytes) -> None:
    """Refuse JSON nested deeper than any canonical record before ``json.loads`` sees it.

    The C JSON decoder recurses per nesting level, and node processes run with a raised
    recursion limit (py-evm / py_ecc set it to 100000), so deeply nested input would
    overflow the C stack and kill the process instead of raising ``RecursionError``.
    """
    depth = 0
    for m in _BRACKET_RE.finditer(_JSON_STRING_RE.sub(b"", raw)):
        depth += 1 if m.group() in (b"[", b"{") else -1
        if depth > _MAX_DEPTH:
            raise CanonicalError(f"record JSON is nested more than {_MAX_DEPTH} levels deep; "
                                 "no canonical record is")


def parse_canonical(
    data: bytes | bytearray | memoryview,
) -> tuple[RecordType, int, dict[str, Any]]:
    """Strict inverse of :func:`canonical_bytes`: ``(type, schema version, record data)``.

    Raises :class:`CanonicalError` if ``data`` is not UTF-8 JSON of the form
    ``{"type", "schema", "data"}`` or is not byte-for-byte canonical, and
    :class:`RecordInvalid` (fields ``"type"``, ``"schema"`` or the record's own fields)
    if its content does not conform to this schema version.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CanonicalError(f"expected bytes, got {type(data).__name__}")
    raw = bytes(data)
    if len(raw) > MAX_CANONICAL_BYTES:
        raise CanonicalError(f"record is {len(raw)} bytes; at most {MAX_CANONICAL_BYTES} allowed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CanonicalError(f"record is not valid UTF-8 (byte {exc.start})") from None
    _check_depth(raw)
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except CanonicalError:
        raise
    except (ValueError, RecursionError) as exc:
        raise CanonicalError(f"record is not valid JSON: {exc}") from None
    if not isinstance(obj, dict) or set(obj) != {"type", "schema", "data"}:
        raise CanonicalError('a canonical record is a JSON object with exactly the keys "data", '
                             '"schema" and "type"')
    label, schema, body = obj["type"], obj["schema"], obj["data"]
    if not isinstance(label, str) or label not in {m.label for m in RecordType}:
        names = ", ".join(m.label for m in RecordType)
        raise RecordInvalid([FieldError("type", f"unknown record type {label!r}; expected one "
                                                f"of {names}")])
    rt = RecordType.parse(label)
    if type(schema) is not int or schema != SCHEMA_VERSION:
        raise RecordInvalid([FieldError("schema", f"schema version {schema!r} is not supported "
                                                  f"(this node reads version {SCHEMA_VERSION}); "
                                                  "upgrade the node or re-encode the record")], rt)
    if not isinstance(body, dict):
        raise RecordInvalid([FieldError("", f"record data must be a JSON object, got "
                                            f"{json_type(body)}")], rt)
    normalised = validate_record(rt, body)
    if _encode({"type": rt.label, "schema": SCHEMA_VERSION, "data": normalised}) != raw:
        raise CanonicalError("record is valid but not canonically encoded (sorted keys, no "
                             "whitespace, raw UTF-8, every optional field present); re-encode "
                             "it with canonical_bytes()")
    return rt, schema, normalised
