"""What the consortium admin calls: add members and accounts, suspend or restore members.

Each change is a Members transaction signed by the admin's chain key and committed
through ``POST /v1/members``; the node and the contract both refuse it from any other
account (reason ``role``).
"""

from __future__ import annotations

from typing import Any

from yilian.contracts.addresses import MEMBERS_ADDRESS, ROLES_BY_NAME
from yilian.protocol.credit_code import to_bytes32
from yilian.sdk.client import Client
from yilian.sdk.errors import InvalidArgument


class Admin:
    def __init__(self, client: Client) -> None:
        self.client = client

    def _commit(self, fn: str, *args: Any) -> dict[str, Any]:
        raw = self.client.sign_call("Members", MEMBERS_ADDRESS, fn, *args)
        return self.client.submit("/v1/members", raw)

    def add_member(self, code: str, role: str, name: str, *, enc_key: bytes, account: str,
                   endpoint: str = "") -> dict[str, Any]:
        """Register a member (``role``: center, financial, enterprise, auditor, admin) with
        its first account and its encryption public key."""
        if role not in ROLES_BY_NAME:
            raise InvalidArgument(f"unknown role {role!r}; use one of {sorted(ROLES_BY_NAME)}")
        return self._commit("add_member", to_bytes32(code), ROLES_BY_NAME[role], name,
                            enc_key, endpoint, account)

    def add_account(self, code: str, account: str) -> dict[str, Any]:
        return self._commit("add_account", to_bytes32(code), account)

    def set_active(self, code: str, active: bool) -> dict[str, Any]:
        return self._commit("set_active", to_bytes32(code), active)
