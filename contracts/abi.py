"""Encode calls and decode outputs, calldata and logs of the committed contracts.

Node and SDK share this module so that both read the domain contracts the same way. It
works from the JSON ABI of an artifact (:mod:`yilian.contracts.artifacts`) with
``eth_abi``; it never needs the compiler, a chain or web3.

Invariants:

* ``decode_input(encode_call(name, args))`` gives back ``(name, args)`` for every function;
* ``decode_log`` accepts exactly the logs whose first topic is one of the contract's event
  signatures and whose indexed/non-indexed parts decode; anything else raises
  :class:`AbiError` (never returns a partial result);
* tuples returned by a function are decoded as dicts keyed by component name, so callers
  never depend on field order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError, EncodingError
from eth_hash.auto import keccak

from yilian.contracts.artifacts import load

__all__ = ["AbiError", "ContractAbi", "DecodedLog", "contract_abi", "revert_reason"]


class AbiError(ValueError):
    """Input or output does not match the contract's ABI; the message says which part."""


def _type_of(param: dict[str, Any]) -> str:
    """The canonical ABI type string, expanding tuples ``(t1,t2)``."""
    typ: str = param["type"]
    if typ.startswith("tuple"):
        inner = ",".join(_type_of(c) for c in param["components"])
        return f"({inner}){typ[len('tuple'):]}"
    return typ


def _named(param: dict[str, Any], value: Any) -> Any:
    """Turn decoded tuples into dicts keyed by component name (recursively)."""
    typ: str = param["type"]
    if typ == "tuple":
        return {c["name"]: _named(c, v) for c, v in zip(param["components"], value, strict=True)}
    if typ.startswith("tuple["):
        elem = {**param, "type": "tuple"}
        return [_named(elem, v) for v in value]
    return value


@dataclass(frozen=True)
class DecodedLog:
    event: str
    args: dict[str, Any]


@dataclass(frozen=True)
class _Function:
    name: str
    inputs: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]
    selector: bytes


@dataclass(frozen=True)
class _Event:
    name: str
    inputs: tuple[dict[str, Any], ...]
    topic: bytes


class ContractAbi:
    """The functions and events of one compiled contract."""

    def __init__(self, name: str, abi: Sequence[dict[str, Any]]) -> None:
        self.name = name
        self.functions: dict[str, _Function] = {}
        self.events: dict[str, _Event] = {}
        self._by_selector: dict[bytes, _Function] = {}
        self._by_topic: dict[bytes, _Event] = {}
        for entry in abi:
            kind = entry.get("type")
            inputs = tuple(entry.get("inputs", ()))
            signature = f"{entry.get('name')}({','.join(_type_of(p) for p in inputs)})"
            if kind == "function":
                fn = _Function(entry["name"], inputs, tuple(entry.get("outputs", ())),
                               keccak(signature.encode())[:4])
                self.functions[fn.name] = fn
                self._by_selector[fn.selector] = fn
            elif kind == "event":
                ev = _Event(entry["name"], inputs, keccak(signature.encode()))
                self.events[ev.name] = ev
                self._by_topic[ev.topic] = ev

    def _fn(self, name: str) -> _Function:
        try:
            return self.functions[name]
        except KeyError:
            raise AbiError(f"{self.name} has no function {name!r}") from None

    def selector(self, name: str) -> bytes:
        return self._fn(name).selector

    def function_at(self, selector: bytes) -> str | None:
        fn = self._by_selector.get(bytes(selector[:4]))
        return None if fn is None else fn.name

    def topic(self, event: str) -> bytes:
        try:
            return self.events[event].topic
        except KeyError:
            raise AbiError(f"{self.name} has no event {event!r}") from None

    def encode_call(self, name: str, *args: Any) -> bytes:
        fn = self._fn(name)
        if len(args) != len(fn.inputs):
            raise AbiError(f"{self.name}.{name} takes {len(fn.inputs)} arguments, "
                           f"got {len(args)}")
        try:
            return fn.selector + encode([_type_of(p) for p in fn.inputs], list(args))
        except (EncodingError, TypeError, ValueError, OverflowError) as exc:
            raise AbiError(f"cannot encode arguments of {self.name}.{name}: {exc}") from exc

    def decode_input(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """(function name, {arg name: value}) of calldata; AbiError if it matches nothing."""
        fn = self._by_selector.get(bytes(data[:4]))
        if fn is None:
            raise AbiError(f"calldata does not call a function of {self.name}")
        try:
            values = decode([_type_of(p) for p in fn.inputs], bytes(data[4:]), strict=True)
        except (DecodingError, ValueError, OverflowError) as exc:
            raise AbiError(f"malformed arguments for {self.name}.{fn.name}: {exc}") from exc
        return fn.name, {p["name"]: _named(p, v) for p, v in zip(fn.inputs, values, strict=True)}

    def decode_output(self, name: str, data: bytes) -> Any:
        """The return value: one value, or a tuple for several outputs."""
        fn = self._fn(name)
        try:
            values = decode([_type_of(p) for p in fn.outputs], bytes(data))
        except (DecodingError, ValueError, OverflowError) as exc:
            raise AbiError(f"cannot decode the output of {self.name}.{name}: {exc}") from exc
        named = [_named(p, v) for p, v in zip(fn.outputs, values, strict=True)]
        return named[0] if len(named) == 1 else tuple(named)

    def decode_log(self, topics: Sequence[bytes], data: bytes) -> DecodedLog:
        if not topics:
            raise AbiError("anonymous logs are not events of the domain contracts")
        ev = self._by_topic.get(bytes(topics[0]))
        if ev is None:
            raise AbiError(f"log is not an event of {self.name}")
        indexed = [p for p in ev.inputs if p.get("indexed")]
        plain = [p for p in ev.inputs if not p.get("indexed")]
        if len(topics) != 1 + len(indexed):
            raise AbiError(f"{self.name}.{ev.name}: expected {len(indexed)} indexed topics")
        try:
            values = decode([_type_of(p) for p in plain], bytes(data))
            idx_values = [decode([_type_of(p)], bytes(t))[0]
                          for p, t in zip(indexed, topics[1:], strict=True)]
        except (DecodingError, ValueError, OverflowError) as exc:
            raise AbiError(f"malformed {self.name}.{ev.name} log: {exc}") from exc
        args: dict[str, Any] = {}
        for p, v in zip(indexed, idx_values, strict=True):
            args[p["name"]] = v
        for p, v in zip(plain, values, strict=True):
            args[p["name"]] = _named(p, v)
        return DecodedLog(ev.name, {p["name"]: args[p["name"]] for p in ev.inputs})


@functools.cache
def contract_abi(name: str) -> ContractAbi:
    """The (cached) ABI helper of the committed artifact ``name``."""
    return ContractAbi(name, load(name).abi)


_ERROR_SELECTOR = keccak(b"Error(string)")[:4]
_PANIC_SELECTOR = keccak(b"Panic(uint256)")[:4]
_PANIC_REASONS: dict[int, str] = {
    0x00: "generic panic",
    0x01: "assert(false)",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "enum overflow",
    0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds array access; popping on an empty array",
    0x32: "out-of-bounds access of an array or bytesN",
    0x41: "out of memory",
    0x51: "uninitialized function",
}


def revert_reason(output: bytes) -> str | None:
    """The message of a ``revert("...")`` (``Error(string)`` data, read as geth reads it).

    None when the data is not that ABI shape (empty, a custom error, a panic, a malformed
    encoding or a message that is not UTF-8). Never raises.
    """
    if bytes(output[:4]) != _ERROR_SELECTOR:
        return None
    body = bytes(output[4:])
    if len(body) < 64:
        return None
    offset = int.from_bytes(body[0:32], "big")
    if offset + 32 > len(body):
        return None
    length = int.from_bytes(body[offset : offset + 32], "big")
    start = offset + 32
    if start + length > len(body):
        return None
    try:
        return body[start : start + length].decode("utf-8")
    except UnicodeDecodeError:
        return None


def panic_reason(output: bytes) -> str | None:
    """What a Solidity ``Panic(uint256)`` means, in geth's words; None for other data."""
    if bytes(output[:4]) != _PANIC_SELECTOR or len(output) != 36:
        return None
    code = int.from_bytes(output[4:36], "big")
    return _PANIC_REASONS.get(code, f"unknown panic code: {code:#x}")
