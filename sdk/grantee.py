"""What a grantee (a bank's desk, another center, ...) calls: read a record under a grant.

The record's ciphertext comes from any node; its digest is checked against the one on
chain; the data key comes from the custodian's key service, wrapped for this caller's
registered encryption key, and only this process ever unwraps it. Every read leaves an
access receipt on chain before the key is released.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from eth_utils import keccak, to_canonical_address

from yilian.contracts.addresses import MAX_ACCESS_ITEMS
from yilian.protocol import envelope, standard
from yilian.protocol.credit_code import to_bytes32
from yilian.sdk.client import Client
from yilian.sdk.errors import (
    InvalidArgument,
    Refused,
    TamperedError,
    WrongEncryptionKey,
    YilianError,
)


@dataclass(frozen=True)
class ReadResult:
    record_id: str
    version: int
    rtype: standard.RecordType
    subject: str
    data: dict[str, Any]
    plaintext: bytes
    receipt_tx: str | None
    receipt_block_number: int | None


def verify_and_open(suite: str, version_doc: dict[str, Any], data_key: bytes
                    ) -> tuple[standard.RecordType, dict[str, Any], bytes]:
    """Check a version's ciphertext against its on-chain digest, decrypt and parse it.

    Raises TamperedError when the ciphertext, its digest or its binding to this record
    (id, version, type, subject, owner, schema, network) was altered.
    """
    ciphertext = bytes.fromhex(version_doc["ciphertext"][2:])
    digest = bytes.fromhex(version_doc["digest"][2:])
    if envelope.digest(suite, ciphertext) != digest or version_doc["event_digest"] != \
            version_doc["digest"]:
        raise TamperedError("the record's ciphertext does not match its digest on chain: the "
                            "ciphertext or the digest was altered; do not use this record")
    aad = envelope.record_aad(
        int(version_doc["chain_id"]), bytes(to_canonical_address(version_doc["records_address"])),
        bytes.fromhex(version_doc["record_id"][2:]), int(version_doc["version"]),
        int(version_doc["type"]), to_bytes32(version_doc["subject"]),
        to_bytes32(version_doc["owner"]), int(version_doc["schema"]))
    plaintext = envelope.open_sealed(suite, data_key, ciphertext, aad)
    rtype, _, data = standard.parse_canonical(plaintext)
    if int(rtype) != int(version_doc["type"]):
        raise TamperedError("the decrypted record's type differs from its on-chain type")
    return rtype, data, plaintext


class Grantee:
    """A member account with an encryption key, reading records shared with it."""

    def __init__(self, client: Client) -> None:
        if client.enc_private_key is None:
            raise YilianError("a grantee needs its encryption private key "
                              "(Client(..., enc_private_key=...))")
        self.client = client

    def version_doc(self, record_id: str, version: int | None = None) -> dict[str, Any]:
        """One version as served by the node (ciphertext, digests, wrapped keys); checked to
        be the record and version asked for (the AAD check then binds the ciphertext)."""
        which = "latest" if version is None else str(version)
        doc = dict(self.client.get(f"/v1/records/{record_id}/versions/{which}"))
        if version is None:
            version = int(doc.get("version", 0))
        if str(doc.get("record_id", "")).lower() != record_id.lower() or int(
                doc.get("version", 0)) != version:
            raise TamperedError(f"the node answered with record {doc.get('record_id')} version "
                                f"{doc.get('version')} for {record_id} version {version}")
        return doc

    def read(self, record_id: str, grant_id: int, version: int | None = None, *,
             retries: int = 2) -> ReadResult:
        """The plaintext of one record version, read under ``grant_id``.

        Raises :class:`~yilian.sdk.errors.Refused` with the reason when the grant does not
        allow the read (``grant_revoked``, ``grant_expired``, ``grant_exhausted``,
        ``not_covered``, ``not_grantee``), CustodianUnavailable when the custodian's node
        is down, and TamperedError when the data was altered.

        A network failure or a 5xx answer is retried (``retries`` times) under the same
        read id, so a retry never spends a second read of the grant. The request names
        the local encryption key, and the custodian checks it against the member's
        registered one before any read is spent (WrongEncryptionKey), since the data key
        is wrapped for the registered key only.
        """
        doc = self.version_doc(record_id, version)
        body = {"grant_id": grant_id, "version": int(doc["version"]),
                "request_id": "0x" + os.urandom(32).hex(), "enc_key": self._enc_public()}
        key = self._ask_custodian(f"/v1/records/{record_id}/key", body, str(doc["center"]),
                                  retries)
        return self._open(doc, key)

    def read_many(self, reads: Sequence[tuple[str, int] | tuple[str, int, int | None]], *,
                  request_id: str | None = None, retries: int = 2) -> list[ReadResult]:
        """The plaintexts of several record versions, each ``(record_id, grant_id)`` or
        ``(record_id, grant_id, version)``, in the order given.

        The reads are grouped by custodian: one key request (``POST /v1/keys``) per
        custodian and per 32 records, whose receipts all commit in one transaction, so N
        reads wait for one block, not N. Each request keeps its read id across retries
        (a retry never spends a read twice). Raises as :meth:`read`; a refusal of one
        read names it: ``Refused.details["read"]`` is its index in ``reads``.

        The requests are made one after another, so when one is refused the keys of the
        ones before it were released and their reads spent. To get those again without
        spending more, call ``read_many`` again with the same ``reads`` and the same
        ``request_id`` (32 bytes as 0x-hex; by default each call draws a fresh one): each
        request's read id is derived from it, and a request already served is answered
        again under its receipts.
        """
        if not reads:
            return []
        base = bytes.fromhex(request_id[2:]) if request_id else os.urandom(32)
        if len(base) != 32:
            raise InvalidArgument("request_id must be 32 bytes as 0x-hex")
        docs = [self.version_doc(r[0], r[2] if len(r) > 2 else None) for r in reads]
        seen: set[tuple[str, int]] = set()
        groups: dict[str, list[int]] = {}
        for i, doc in enumerate(docs):
            key = (str(doc["record_id"]).lower(), int(doc["version"]))
            if key in seen:
                raise InvalidArgument(f"read {i} repeats version {key[1]} of record {key[0]}; "
                                      "name each record version once")
            seen.add(key)
            groups.setdefault(str(doc["center"]), []).append(i)
        results: list[ReadResult | None] = [None] * len(reads)
        for center, indices in groups.items():
            for start in range(0, len(indices), MAX_ACCESS_ITEMS):
                chunk = indices[start:start + MAX_ACCESS_ITEMS]
                chunk_id = keccak(base + center.encode() + start.to_bytes(4, "big"))
                body = {"items": [{"record_id": docs[i]["record_id"], "grant_id": reads[i][1],
                                   "version": int(docs[i]["version"])} for i in chunk],
                        "request_id": "0x" + chunk_id.hex(), "enc_key": self._enc_public()}
                try:
                    answer = self._ask_custodian("/v1/keys", body, center, retries)
                except Refused as exc:
                    item = exc.details.get("item")
                    if isinstance(item, int) and 0 <= item < len(chunk):
                        exc.details["read"] = chunk[item]
                    raise
                keys = list(answer.get("keys", []))
                if len(keys) != len(chunk):
                    raise TamperedError(f"the custodian {center} answered {len(keys)} keys "
                                        f"for {len(chunk)} records")
                for i, key in zip(chunk, keys, strict=True):
                    results[i] = self._open(docs[i], key)
        return [r for r in results if r is not None]

    def _ask_custodian(self, path: str, body: dict[str, Any], custodian: str, retries: int
                       ) -> dict[str, Any]:
        """POST a key request signed for ``custodian``; a network failure or a 5xx answer
        is retried (``retries`` times) with the same body, so under the same read id."""
        for attempt in range(retries + 1):
            try:
                return dict(self.client.post_when_free(path, body, audience=custodian))
            except (requests.ConnectionError, requests.Timeout):
                if attempt == retries:
                    raise
            except Refused as exc:
                if exc.reason == "wrong_enc_key":
                    raise WrongEncryptionKey(exc.message) from None
                if exc.status < 500 or attempt == retries:
                    raise
            time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    def _open(self, doc: dict[str, Any], key: dict[str, Any]) -> ReadResult:
        """``doc``'s plaintext under the released ``key``, checked to be that version's."""
        if str(key.get("record_id", "")).lower() != str(doc["record_id"]).lower() or int(
                key.get("version", 0)) != int(doc["version"]):
            raise TamperedError(f"the custodian released a key for record "
                                f"{key.get('record_id')} version {key.get('version')} when "
                                f"{doc['record_id']} version {doc['version']} was asked for")
        data_key = envelope.unwrap_key(self.client.suite, self._enc_private(),
                                       bytes.fromhex(key["wrapped_key"][2:]))
        rtype, data, plaintext = verify_and_open(self.client.suite, doc, data_key)
        return ReadResult(str(doc["record_id"]), int(doc["version"]), rtype,
                          str(doc["subject"]), data, plaintext, key["receipt_tx"],
                          key["receipt_block_number"])

    def read_own(self, record_id: str, version: int | None = None) -> ReadResult:
        """The owner reading its own record: its data key is wrapped for it in the record's
        event, so no key service (and no custodian) is involved and no receipt is written.
        Works while the custodian's node is down. Raises YilianError if the caller's member
        is not the record's owner."""
        doc = self.version_doc(record_id, version)
        bundle = envelope.decode_wrapped_keys(bytes.fromhex(doc["wrapped_keys"][2:]))
        mine = bundle.get(bytes.fromhex(doc["owner_id"][2:]))
        me = self.check_enc_key()
        if mine is None or me["id"] != doc["owner"]:
            raise YilianError(f"{self.client.address} is not an account of the record's owner "
                              f"{doc['owner']}; read it under a grant instead")
        data_key = envelope.unwrap_key(self.client.suite, self._enc_private(), mine)
        rtype, data, plaintext = verify_and_open(self.client.suite, doc, data_key)
        return ReadResult(record_id, int(doc["version"]), rtype, str(doc["subject"]), data,
                          plaintext, None, None)

    def check_enc_key(self) -> dict[str, Any]:
        """The caller's member (``GET /v1/members/by-account/...``), after checking that the
        local encryption private key belongs to the member's registered public key.

        Raises WrongEncryptionKey naming both keys otherwise: a key service wraps data keys
        for the registered key, so a read with another key would be spent and then fail
        to unwrap.
        """
        me = dict(self.client.get(f"/v1/members/by-account/{self.client.address}"))
        registered = str(me.get("enc_key", "")).lower()
        local = "0x" + envelope.enc_public_key(self.client.suite, self._enc_private()).hex()
        if local != registered:
            raise WrongEncryptionKey(
                f"the encryption key given to this Client (public key {local}) is not the one "
                f"member {me.get('id')} ({me.get('name')}) registered ({registered}); pass "
                "the member's registered encryption private key as enc_private_key (or have "
                "the admin register the new key first). No read was spent.")
        return me

    def _enc_public(self) -> str:
        """The encryption public key of this client's private one, as 0x-hex: sent with
        each key request, so the custodian refuses it before a read is spent unless it is
        the member's registered key."""
        return "0x" + envelope.enc_public_key(self.client.suite, self._enc_private()).hex()

    def _enc_private(self) -> bytes:
        assert self.client.enc_private_key is not None
        return bytes(self.client.enc_private_key)
