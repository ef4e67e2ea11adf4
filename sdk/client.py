"""The SDK's connection to one node: signed REST calls, JSON-RPC and transactions.

Every ``/v1`` request is signed with the caller's chain key (EIP-191 over the node it is
for, the method, path, body hash, a fresh nonce and an expiry; see
:mod:`yilian.protocol.signed_request`). The node's audience comes from its ``/healthz``;
a key request names the record's custodian instead (``audience=``).
Transactions are built and signed here, so private keys never leave the caller.
JSON-RPC at a node that listens beyond loopback needs a bearer token: :meth:`Client.login_rpc`
gets one by signing the node's challenge (done on the first 401 too).
"""

from __future__ import annotations

import json
import random
import time
import urllib.parse
from typing import Any

import requests
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from yilian.contracts.abi import contract_abi
from yilian.contracts.addresses import DOMAIN_TX_GAS
from yilian.protocol.rpc_login import sign_login
from yilian.protocol.signed_request import sign_request
from yilian.sdk.errors import CustodianUnavailable, NotANode, NotCommitted, Refused, YilianError

# Answers after which the same signed transaction is sent again: it is kept by the node
# (or was never admitted), so resending it cannot make the change twice.
RESEND_REASONS = frozenset({"no_quorum", "no_commit", "too_many_waiting", "waiting_full",
                            "commit_timeout"})
# Answers that say "too many of your calls are waiting for blocks now; come back": a
# center operation refused this way submitted nothing, so it is sent again after a pause.
BUSY_REASONS = frozenset({"too_many_waiting", "waiting_full"})
BUSY_WAIT_S = 120.0
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
        health = self._identify(api_url)
        self.chain_id: int = int(health["chainId"])
        self.suite: str = str(health["suite"])
        self.rpc_token: str | None = None  # set by login_rpc (or the first 401 from /rpc)
        self._rpc_token_expires = 0.0
        # The node this client's signed requests are for (None: the node signs nothing).
        self.audience: str | None = health.get("audience")

    def _identify(self, given: str) -> dict[str, Any]:
        """The node's ``/healthz`` (chain id, suite, audience); NotANode when the URL
        answers, but not as a yilian node (transport failures stay ``requests`` errors)."""
        url = f"{self.api_url}/healthz"
        resp = self._session.get(url, timeout=self.timeout)
        try:
            health = resp.json()
            int(health["chainId"])
            str(health["suite"])
        except (ValueError, TypeError, KeyError):
            raise NotANode(
                f"{given!r} is not a yilian node: GET {url} answered HTTP {resp.status_code} "
                "without a chain id; give the node's base URL, e.g. http://127.0.0.1:8545 "
                "(the `api` of the node in network.json; its `rpc` URL works too)") from None
        if not isinstance(health, dict):
            raise NotANode(f"{given!r} is not a yilian node: GET {url} answered no object")
        return health

    @property
    def address(self) -> str:
        return str(self._account.address)

    # -- REST ------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None,
                params: dict[str, Any] | None = None, *, signed: bool = True,
                audience: str | None = None) -> Any:
        """A /v1 call; signed for ``audience`` (default: the node called)."""
        if params:
            path = f"{path}?{urllib.parse.urlencode(params)}"
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if signed:
            audience = audience or self.audience
            if not audience:
                raise YilianError(f"{self.api_url} does not say which audience signed requests "
                                  "to it must name (no 'audience' in its /healthz): it is not "
                                  "a yilian node of this version")
            headers.update(sign_request(self._account.key, chain_id=self.chain_id,
                                        audience=audience, method=method, path=path,
                                        body=data).as_dict())
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

    def post(self, path: str, body: Any, *, signed: bool = True,
             audience: str | None = None) -> Any:
        return self.request("POST", path, body, signed=signed, audience=audience)

    def post_when_free(self, path: str, body: Any, *, audience: str | None = None,
                       wait_s: float = BUSY_WAIT_S) -> Any:
        """:meth:`post` a center operation (publish, remove, key request), sending it again
        while the node answers that this caller has too many calls waiting (429
        ``too_many_waiting``) or that the node has (503 ``waiting_full``): such a call
        submitted nothing. Pauses grow from 0.1 s to 2 s (with jitter, so many callers do
        not return together); after ``wait_s`` the last refusal is raised."""
        deadline = time.monotonic() + wait_s
        pause = 0.1
        while True:
            try:
                return self.post(path, body, audience=audience)
            except Refused as exc:
                sleep = pause * random.uniform(0.5, 1.5)
                if exc.reason not in BUSY_REASONS or time.monotonic() + sleep > deadline:
                    raise
            time.sleep(sleep)
            pause = min(2.0, pause * 2)

    # -- JSON-RPC and transactions ---------------------------------------------------------
    def login_rpc(self, ttl_s: int = 3600) -> str:
        """Obtain a JSON-RPC bearer token for this account (one call; docs/rpc-auth.md).

        Signs the node's challenge with the chain key; :meth:`rpc` then sends the token.
        web3.py can use it too: ``HTTPProvider(url, request_kwargs={"headers":
        {"Authorization": f"Bearer {token}"}})``.
        """
        challenge = self.post("/v1/auth/challenge", {"account": self.address}, signed=False)
        signature = sign_login(self._account.key, chain_id=self.chain_id,
                               node=str(challenge["node"]), nonce=str(challenge["nonce"]),
                               ttl_s=ttl_s)
        out = self.post("/v1/auth/token", {"account": self.address, "nonce": challenge["nonce"],
                                           "signature": signature, "ttl_s": ttl_s},
                        signed=False)
        self.rpc_token = str(out["token"])
        self._rpc_token_expires = float(out["expires_at"])
        return self.rpc_token

    def rpc(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        resp = self._post_rpc(body)
        if resp.status_code == 401 and self.rpc_token is None:  # the node needs a token
            self.login_rpc()
            resp = self._post_rpc(body)
        try:
            out = resp.json()
        except ValueError:
            raise YilianError(f"{method}: HTTP {resp.status_code} with a non-JSON body: "
                              f"{resp.text[:200]}") from None
        if "error" in out:
            raise YilianError(f"{method}: {out['error'].get('message')}")
        return out["result"]

    def _post_rpc(self, body: dict[str, Any]) -> Any:
        if self.rpc_token is not None and self._rpc_token_expires - time.time() < 60:
            self.login_rpc()  # renew a minute before expiry
        if self.rpc_token is None:
            return self._session.post(f"{self.api_url}/rpc", timeout=self.timeout, json=body)
        return self._session.post(f"{self.api_url}/rpc", timeout=self.timeout, json=body,
                                  headers={"Authorization": f"Bearer {self.rpc_token}"})

    def sign_call(self, contract: str, address: str, fn: str, *args: Any) -> str:
        """A signed transaction calling ``contract.fn(*args)`` (0x hex), next nonce."""
        nonce = int(self.rpc("eth_getTransactionCount", self.address, "pending"), 16)
        signed = self._account.sign_transaction({
            "type": 2, "chainId": self.chain_id, "nonce": nonce,
            "to": to_checksum_address(address), "value": 0, "gas": DOMAIN_TX_GAS,
            "data": contract_abi(contract).encode_call(fn, *args),
            "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
        })
        return "0x" + bytes(signed.raw_transaction).hex()

    def submit(self, path: str, raw_transaction: str, *, wait_s: float = 120.0,
               poll_s: float = 1.0) -> dict[str, Any]:
        """Post a signed domain transaction (``{"raw_transaction": ...}``) to ``path`` and
        return its committed result.

        While the answer is "not yet" (HTTP 202 pending or queued, 503 ``no_quorum`` or
        ``no_commit`` from a stalled chain, 429 ``too_many_waiting`` or 503
        ``waiting_full``, or a lost connection) it sends the *same* signed bytes again
        every ``poll_s`` seconds: the node answers a transaction it already holds with its
        status, so the change is made at most once. After ``wait_s`` seconds it raises
        :class:`NotCommitted` with the hash and the raw transaction, to resend later.
        Other refusals raise :class:`Refused` at once.
        """
        tx_hash = "0x" + keccak(bytes.fromhex(raw_transaction[2:])).hex()
        deadline = time.monotonic() + wait_s
        while True:
            try:
                out = self.post(path, {"raw_transaction": raw_transaction}, signed=False)
                if not (isinstance(out, dict) and out.get("status") in ("pending", "queued")):
                    return dict(out)
                last = str(out.get("message"))
            except Refused as exc:
                if exc.reason not in RESEND_REASONS:
                    raise
                last = exc.message
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"the node did not answer: {exc!r}"
            if time.monotonic() + poll_s > deadline:
                raise NotCommitted(tx_hash, raw_transaction, last)
            time.sleep(poll_s)

    def wait_receipt(self, tx_hash: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return dict(receipt)
            time.sleep(0.1)
        raise YilianError(f"transaction {tx_hash} did not commit within {timeout:.0f} s")
