"""JSON-RPC error hierarchy used by the yilian RPC server.

Every error the server returns to a client is an :class:`RpcError`.  Each
subclass fixes the JSON-RPC ``code`` (the numbers geth uses) and, where it
helps, a message prefix, so handlers only describe *what* went wrong and *what
the caller should do about it*::

    raise InvalidParams("params[0] must be a 0x-prefixed hex quantity ...")
    # -> {"code": -32602, "message": "invalid params: params[0] must be ..."}

Invariants:

* ``code`` is an ``int`` and ``message`` a non-empty ``str`` on every instance.
* ``data`` is ``None`` or a JSON-serialisable value; :meth:`RpcError.to_json`
  omits the ``data`` key when it is ``None`` (as geth does).
* ``str(err) == err.message``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ExecutionReverted",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "LimitExceeded",
    "MethodNotFound",
    "ParseError",
    "ResourceNotFound",
    "RpcError",
    "ServerError",
    "Unauthorized",
    "decode_revert_reason",
]


class RpcError(Exception):
    """Base class of every JSON-RPC error.

    ``message`` is used verbatim unless the subclass defines ``prefix``, in
    which case the message becomes ``f"{prefix}: {message}"``.
    """

    code: ClassVar[int] = -32000
    prefix: ClassVar[str] = ""

    message: str
    data: Any

    def __init__(self, message: str, data: Any = None) -> None:
        """Build the error; ``data`` must be JSON-serialisable or ``None``."""
        text = message.strip() or "unknown error"
        if self.prefix and not text.startswith(self.prefix + ":"):
            text = f"{self.prefix}: {text}"
        super().__init__(text)
        self.message = text
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-RPC ``error`` object: ``{code, message[, data]}``."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out

    def __str__(self) -> str:
        """Return the full message (prefix included)."""
        return self.message

    def __repr__(self) -> str:
        """Debug representation including code and message."""
        return f"{type(self).__name__}(code={self.code}, message={self.message!r})"


class ParseError(RpcError):
    """-32700: the request body is not valid JSON."""

    code = -32700
    prefix = "parse error"


class InvalidRequest(RpcError):
    """-32600: valid JSON but not a valid JSON-RPC 2.0 request object."""

    code = -32600
    prefix = "invalid request"


class MethodNotFound(RpcError):
    """-32601: the method does not exist or is disabled on this node."""

    code = -32601

    def __init__(self, method: str, data: Any = None) -> None:
        """Build the geth-style message naming ``method``."""
        shown = method if len(method) <= 80 else method[:77] + "..."
        super().__init__(
            f"the method {shown} does not exist/is not available; "
            "check the method name and the node's enabled RPC namespaces",
            data,
        )
        self.method = method


class InvalidParams(RpcError):
    """-32602: a parameter has the wrong type, format, or value."""

    code = -32602
    prefix = "invalid params"


class InternalError(RpcError):
    """-32603: a bug or unexpected failure inside the node."""

    code = -32603
    prefix = "internal error"


class ServerError(RpcError):
    """-32000: generic server-side failure (e.g. ``"transaction rejected: ..."``)."""

    code = -32000


class ResourceNotFound(RpcError):
    """-32001: the requested block, transaction or state is not available."""

    code = -32001


class LimitExceeded(RpcError):
    """-32005: the request exceeds a configured limit (block range, results...)."""

    code = -32005


class Unauthorized(RpcError):
    """-40100 (Besu's code): no valid bearer token, or the token does not permit this."""

    code = -40100
    prefix = "unauthorized"


# Solidity/Vyper ABI-encoded revert payloads.
_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
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


def decode_revert_reason(revert_data: bytes) -> str | None:
    """Decode ``Error(string)`` / ``Panic(uint256)`` revert data like geth.

    Returns ``None`` when the payload is not one of those two ABI shapes
    (custom errors, empty data, malformed encodings).  Never raises.
    """
    if revert_data[:4] == _ERROR_SELECTOR:
        body = revert_data[4:]
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
    if revert_data[:4] == _PANIC_SELECTOR and len(revert_data) == 36:
        code = int.from_bytes(revert_data[4:36], "big")
        return _PANIC_REASONS.get(code, f"unknown panic code: {code:#x}")
    return None


class ExecutionReverted(RpcError):
    """Code 3: EVM execution reverted (``eth_call`` / ``eth_estimateGas``).

    ``message`` is ``"execution reverted"`` or ``"execution reverted: <reason>"``
    and ``data`` is the raw revert payload as 0x-hex (``"0x"`` when empty),
    exactly as geth reports it.  When ``reason`` is not given it is decoded
    from ``revert_data`` (``Error(string)`` or ``Panic(uint256)``).
    """

    code = 3

    def __init__(self, revert_data: bytes = b"", reason: str | None = None) -> None:
        """Build the error from the raw revert bytes and an optional reason."""
        if reason is None:
            reason = decode_revert_reason(revert_data)
        message = f"execution reverted: {reason}" if reason else "execution reverted"
        super().__init__(message, "0x" + bytes(revert_data).hex())
        self.revert_data = bytes(revert_data)
        self.reason = reason
