"""What an enterprise (or any record owner) calls: grant and revoke access to its records."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from yilian.contracts.addresses import GRANTS_ADDRESS
from yilian.protocol.credit_code import to_bytes32
from yilian.protocol.standard import RecordType
from yilian.sdk.client import Client
from yilian.sdk.errors import InvalidArgument


def types_mask(types: Iterable[RecordType | int | str]) -> int:
    """The Grants contract's type bitmask: bit ``t`` for record type ``t``."""
    mask = 0
    for t in types:
        mask |= 1 << int(RecordType.parse(t))
    return mask


class Enterprise:
    """An owner's account: its grants are signed by its own chain key."""

    def __init__(self, client: Client, code: str) -> None:
        self.client = client
        self.code = code

    def grant(self, grantee: str, *, purpose: str, max_reads: int,
              types: Iterable[RecordType | int | str] = (), record_id: str | None = None,
              valid_for_s: int | None = None, expires_at: int | None = None,
              subject: str | None = None, wait_s: float = 120.0) -> dict[str, Any]:
        """Let ``grantee`` (a member's credit code) read this owner's records of
        ``subject`` (default: the owner itself): of the given ``types``, or the one
        ``record_id``; until ``expires_at`` (unix seconds; or ``valid_for_s`` from now);
        at most ``max_reads`` times. Returns the committed grant (with ``grant_id``).

        The grant is signed once; while the chain is slow or stalled the same signed
        transaction is resent (see :meth:`Client.submit`), so one call never creates two
        grants. If it has not committed within ``wait_s`` seconds,
        :class:`~yilian.sdk.errors.NotCommitted` carries the signed transaction: pass it
        to :meth:`resend` later instead of calling ``grant`` again."""
        if (expires_at is None) == (valid_for_s is None):
            raise InvalidArgument("give exactly one of expires_at and valid_for_s")
        expiry = expires_at if expires_at is not None else int(time.time()) + int(
            valid_for_s or 0)
        rid = bytes.fromhex(record_id[2:]) if record_id else b"\x00" * 32
        raw = self.client.sign_call(
            "Grants", GRANTS_ADDRESS, "grant", to_bytes32(grantee),
            to_bytes32(subject or self.code), types_mask(types), rid, purpose, expiry,
            max_reads)
        return self.client.submit("/v1/grants", raw, wait_s=wait_s)

    def resend(self, raw_transaction: str, *, wait_s: float = 120.0) -> dict[str, Any]:
        """The result of a grant signed earlier (``NotCommitted.raw_transaction``): its
        committed grant, made once however often it is resent."""
        return self.client.submit("/v1/grants", raw_transaction, wait_s=wait_s)

    def revoke(self, grant_id: int, *, wait_s: float = 120.0) -> dict[str, Any]:
        """Revoke a grant at once: later reads under it are refused."""
        raw = self.client.sign_call("Grants", GRANTS_ADDRESS, "revoke", grant_id)
        return self.client.submit(f"/v1/grants/{grant_id}/revoke", raw, wait_s=wait_s)
