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

from yilian.contracts.abi import panic_reason, revert_reason

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
]


class RpcError(Exception):
    """Base class of every JSON-RPC error.

    A subclass names its ``code`` (and optional ``prefix``) as class keywords:
    ``class InvalidParams(RpcError, code=-32602, prefix="invalid params")``.
    ``message`` is used verbatim unless the subclass has a ``prefix``, in which
    case the message becomes ``f"{prefix}: {message}"``.
    """

    code: ClassVar[int] = -32000
    prefix: ClassVar[str] = ""

    message: str
    data: Any

    def __init_subclass__(cls, *, code: int | None = None, prefix: str | None = None,
                          **kwargs: Any) -> None:
        """Set the subclass's JSON-RPC ``code`` and message ``prefix`` (else inherited)."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if prefix is not None:
            cls.prefix = prefix

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


class ParseError(RpcError, code=-32700, prefix="parse error"):
    """-32700: the request body is not valid JSON."""


class InvalidRequest(RpcError, code=-32600, prefix="invalid request"):
    """-32600: valid JSON but not a valid JSON-RPC 2.0 request object."""


class MethodNotFound(RpcError, code=-32601):
    """-32601: the method does not exist or is disabled on this node."""

    def __init__(self, method: str, data: Any = None) -> None:
        """Build the geth-style message naming ``method``."""
        shown = method if len(method) <= 80 else method[:77] + "..."
        super().__init__(
            f"the method {shown} does not exist/is not available; "
            "check the method name and the node's enabled RPC namespaces",
            data,
        )
        self.method = method


class InvalidParams(RpcError, code=-32602, prefix="invalid params"):
    """-32602: a parameter has the wrong type, format, or value."""


class InternalError(RpcError, code=-32603, prefix="internal error"):
    """-32603: a bug or unexpected failure inside the node."""


class ServerError(RpcError, code=-32000):
    """-32000: generic server-side failure (e.g. ``"transaction rejected: ..."``)."""


class ResourceNotFound(RpcError, code=-32001):
    """-32001: the requested block, transaction or state is not available."""


class LimitExceeded(RpcError, code=-32005):
    """-32005: the request exceeds a configured limit (block range, results...)."""


class Unauthorized(RpcError, code=-40100, prefix="unauthorized"):
    """-40100 (Besu's code): no valid bearer token, or the token does not permit this."""


class ExecutionReverted(RpcError, code=3):
    """Code 3: EVM execution reverted (``eth_call`` / ``eth_estimateGas``).

    ``message`` is ``"execution reverted"`` or ``"execution reverted: <reason>"``
    and ``data`` is the raw revert payload as 0x-hex (``"0x"`` when empty),
    exactly as geth reports it.  When ``reason`` is not given it is decoded
    from ``revert_data`` (``Error(string)`` or ``Panic(uint256)``).
    """

    def __init__(self, revert_data: bytes = b"", reason: str | None = None) -> None:
        """Build the error from the raw revert bytes and an optional reason."""
        if reason is None:
            reason = revert_reason(revert_data)
        if reason is None:
            reason = panic_reason(revert_data)
        message = f"execution reverted: {reason}" if reason else "execution reverted"
        super().__init__(message, "0x" + bytes(revert_data).hex())
        self.revert_data = bytes(revert_data)
        self.reason = reason
