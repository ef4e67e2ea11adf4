"""Bytes in JSON answers, REST and JSON-RPC alike: ``"0x"`` followed by lowercase hex.

The one helper both surfaces use for hashes, addresses, keys and call data (JSON-RPC calls
this form DATA; numbers, its QUANTITY, are ``rpc_format.hexq``). ``b""`` is ``"0x"``.
"""

from __future__ import annotations


def hex0x(value: bytes) -> str:
    """``"0x"`` + the lowercase hex of ``value`` (``b"\\xab"`` -> ``"0xab"``)."""
    return "0x" + bytes(value).hex()
