"""Strict, bounded JSON parsing for every request body and WebSocket frame.

Invariants (every entry point, ``/rpc``, ``/ws`` frames and ``/v1`` bodies, parses
through :func:`loads_strict`):

* Work is linear in the input. The nesting depth is checked before ``json.loads`` runs
  (py-evm raises the interpreter's recursion limit to 100000, so ``json.loads`` of a few
  hundred KB of ``[`` overflows the C stack and kills the process). The check removes
  strings with a regex whose every attempt succeeds where it starts: a string runs to its
  closing quote or to the end of the input (an unterminated string is still one token),
  quantifiers are possessive, so the engine never backtracks and never retries a later
  start inside a string it already read. (The earlier pattern
  ``"(?:[^"\\]|\\.)*"`` failed on an unterminated string and was retried from each
  escaped quote inside it: quadratic time, 12 s of held GIL for 64 KB.)
* Only RFC 8259 JSON is accepted: ``NaN``, ``Infinity``, ``-Infinity`` and numbers that
  overflow a float (``1e400``) are refused, as is text that is not UTF-8.
* Every refusal is a :class:`JsonRejected` whose message says what to fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 64

# A string: to its closing quote, or to the end of an unterminated input (a lone trailing
# backslash included), possessive everywhere, so an attempt at a quote always succeeds.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))
_QUOTE = 0x22
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonRejected(ValueError):
    """The input is not acceptable JSON; ``reason`` is a stable tag, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def strings(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each string token the scan removes, left to right.

    Exposed for the property test that bounds the scan's work per byte."""
    for m in _STRING.finditer(data):
        yield m.start(), m.end()


def bracket_stream(data: bytes) -> bytes:
    """The brackets outside strings, in order: two C-speed passes over ``data``."""
    return _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)


def json_too_deep(body: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays/objects nest deeper than ``limit`` (brackets in strings don't count).

    Unclosed brackets count as open: ``json.loads`` recurses into them before it fails.
    Three linear passes, all at C speed (no Python step per byte): strings out, brackets
    kept, then the running depth, stopping at the first level over ``limit``.
    """
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depths = accumulate(map(_DELTA.__getitem__, bracket_stream(data)))
    return any(map(limit.__lt__, depths))


def _refuse_constant(name: str) -> Any:
    raise JsonRejected("bad_json", f"{name} is not JSON (RFC 8259 has no NaN or Infinity); "
                       "send finite numbers")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonRejected("bad_json", f"the number {text[:40]} is too large for a float")
    return value


def _lone_surrogate(value: Any) -> bool:
    """True when a string (key or value) in ``value`` holds an unpaired surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads_strict(body: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse RFC 8259 JSON after the linear depth check; JsonRejected otherwise.

    Strings must be Unicode text (I-JSON, RFC 7493): an escaped lone surrogate
    (``"\\ud800"``) is refused, so no handler ever meets a str it cannot encode."""
    if json_too_deep(body, max_depth):
        raise JsonRejected("too_deep", f"JSON nested deeper than {max_depth} levels")
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        if _SURROGATE_ESCAPE.search(text) and _lone_surrogate(value):
            raise JsonRejected("bad_json", "a string holds an unpaired UTF-16 surrogate "
                               "escape (\\ud800-\\udfff); send Unicode text")
        return value
    except JsonRejected:
        raise
    except UnicodeDecodeError as exc:
        raise JsonRejected("bad_json", f"the body is not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start})") from None
    except ValueError as exc:  # JSONDecodeError, or an integer over 4300 digits
        raise JsonRejected("bad_json", f"the body is not valid JSON ({exc})") from None
