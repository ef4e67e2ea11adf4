"""The SDK's connection to one node: signed REST calls, JSON-RPC and transactions.

Every ``/v1`` request is signed with the caller's chain key (EIP-191 over the method,
path, body hash, a fresh nonce and an expiry; see :mod:`yilian.contracts.signed_request`).
Transactions are built and signed here, so private keys never leave the caller.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import requests
from eth_account import Account
from eth_utils import to_checksum_address

from yilian.contracts.abi import contract_abi
from yilian.contracts.signed_request import sign_request
from yilian.sdk.errors import CustodianUnavailable, NotANode, Refused, YilianError

TX_GAS = 2_000_000
# What a user may paste instead of the node's base URL: its JSON-RPC, WebSocket, health or
# docs URL (all served at the base URL's root).
_NODE_PATHS = ("/rpc", "/ws", "/healthz", "/docs", "/redoc")


def node_base_url(url: str) -> str:
    """The node's base URL (``http://host:port``) from a base URL or one of the node's own
    URLs (``.../rpc``, ``ws://.../ws``, ...). NotANode if ``url`` is no http(s)/ws(s) URL."""
    parts = urllib.parse.urlsplit(url.strip())
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.netloc:
        raise NotANode(f"{url!r} is not a node URL; give the node's base URL, e.g. "
                       "http://127.0.0.1:8545 (its JSON-RPC URL .../rpc works too)")
    path = parts.path.rstrip("/")
    for suffix in _NODE_PATHS:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, "", ""))


class Client:
    """One caller (a chain key, optionally an encryption key) talking to one node.

    ``api_url`` is the node's base URL, e.g. ``http://127.0.0.1:8545``, or its JSON-RPC
    URL (``http://127.0.0.1:8545/rpc``); NotANode if it does not answer as a yilian node.
    """

    def __init__(self, api_url: str, private_key: str | bytes, *,
                 enc_private_key: str | bytes | None = None, timeout: float = 90.0) -> None:
        self.api_url = node_base_url(api_url)
        self._account = Account.from_key(private_key)
        self.enc_private_key = (bytes.fromhex(enc_private_key[2:])
                                if isinstance(enc_private_key, str) else enc_private_key)
        self.timeout = timeout
        self._session = requests.Session()
        self.chain_id, self.suite = self._identify(api_url)

    def _identify(self, given: str) -> tuple[int, str]:
        """The node's chain id and suite from its ``/healthz``; NotANode when the URL
        answers, but not as a yilian node (transport failures stay ``requests`` errors)."""
        url = f"{self.api_url}/healthz"
        resp = self._session.get(url, timeout=self.timeout)
        try:
            health = resp.json()
            return int(health["chainId"]), str(health["suite"])
        except (ValueError, TypeError, KeyError):
            raise NotANode(
                f"{given!r} is not a yilian node: GET {url} answered HTTP {resp.status_code} "
                "without a chain id; give the node's base URL, e.g. http://127.0.0.1:8545 "
                "(the `api` of the node in network.json; its `rpc` URL works too)") from None

    @property
    def address(self) -> str:
        return str(self._account.address)

    # -- REST ------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None,
                params: dict[str, Any] | None = None, *, signed: bool = True) -> Any:
        if params:
            path = f"{path}?{urllib.parse.urlencode(params)}"
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if signed:
            headers.update(sign_request(self._account.key, chain_id=self.chain_id,
                                        method=method, path=path, body=data).as_dict())
        resp = self._session.request(method, self.api_url + path, data=data or None,
                                     headers=headers, timeout=self.timeout)
        try:
            payload = resp.json()
        except ValueError:
            raise YilianError(f"{method} {path}: HTTP {resp.status_code} with a non-JSON "
                              f"body: {resp.text[:200]}") from None
        if resp.status_code >= 400:
            err = payload.get("error") if isinstance(payload, dict) else None
            if not isinstance(err, dict):  # FastAPI's own validation errors
                raise Refused(resp.status_code, "bad_request", json.dumps(payload)[:1000])
            details = {k: v for k, v in err.items() if k not in ("reason", "message")}
            cls = CustodianUnavailable if err.get("reason") == "custodian_unavailable" \
                else Refused
            raise cls(resp.status_code, str(err.get("reason")), str(err.get("message")),
                      details)
        return payload

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any, *, signed: bool = True) -> Any:
        return self.request("POST", path, body, signed=signed)

    # -- JSON-RPC and transactions ---------------------------------------------------------
    def rpc(self, method: str, *params: Any) -> Any:
        resp = self._session.post(f"{self.api_url}/rpc", timeout=self.timeout, json={
            "jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        out = resp.json()
        if "error" in out:
            raise YilianError(f"{method}: {out['error'].get('message')}")
        return out["result"]

    def sign_call(self, contract: str, address: str, fn: str, *args: Any) -> str:
        """A signed transaction calling ``contract.fn(*args)`` (0x hex), next nonce."""
        nonce = int(self.rpc("eth_getTransactionCount", self.address, "pending"), 16)
        signed = self._account.sign_transaction({
            "type": 2, "chainId": self.chain_id, "nonce": nonce,
            "to": to_checksum_address(address), "value": 0, "gas": TX_GAS,
            "data": contract_abi(contract).encode_call(fn, *args),
            "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
        })
        return "0x" + bytes(signed.raw_transaction).hex()

    def wait_receipt(self, tx_hash: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return dict(receipt)
            time.sleep(0.1)
        raise YilianError(f"transaction {tx_hash} did not commit within {timeout:.0f} s")
