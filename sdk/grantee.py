"""What a grantee (a bank's desk, another center, ...) calls: read a record under a grant.

The record's ciphertext comes from any node; its digest is checked against the one on
chain; the data key comes from the custodian's key service, wrapped for this caller's
registered encryption key, and only this process ever unwraps it. Every read leaves an
access receipt on chain before the key is released.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import requests
from eth_utils import to_canonical_address

from yilian.protocol import envelope, standard
from yilian.protocol.credit_code import to_bytes32
from yilian.sdk.client import Client
from yilian.sdk.errors import Refused, TamperedError, WrongEncryptionKey, YilianError


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
        if version is None:
            version = int(self.client.get(f"/v1/records/{record_id}")["latest"])
        doc = dict(self.client.get(f"/v1/records/{record_id}/versions/{version}"))
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
        read id, so a retry never spends a second read of the grant. Before any read is
        spent, the local encryption key is checked against the member's registered one
        (WrongEncryptionKey), since the data key is wrapped for the registered key only.
        """
        self.check_enc_key()
        doc = self.version_doc(record_id, version)
        body = {"grant_id": grant_id, "version": int(doc["version"]),
                "request_id": "0x" + os.urandom(32).hex()}
        for attempt in range(retries + 1):
            try:
                key = self.client.post_when_free(f"/v1/records/{record_id}/key", body,
                                                 audience=str(doc["center"]))  # custodian
                break
            except (requests.ConnectionError, requests.Timeout):
                if attempt == retries:
                    raise
            except Refused as exc:
                if exc.status < 500 or attempt == retries:
                    raise
            time.sleep(0.5 * (attempt + 1))
        data_key = envelope.unwrap_key(self.client.suite, self._enc_private(),
                                       bytes.fromhex(key["wrapped_key"][2:]))
        rtype, data, plaintext = verify_and_open(self.client.suite, doc, data_key)
        return ReadResult(record_id, int(doc["version"]), rtype, str(doc["subject"]), data,
                          plaintext, key["receipt_tx"], key["receipt_block_number"])

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

    def _enc_private(self) -> bytes:
        assert self.client.enc_private_key is not None
        return bytes(self.client.enc_private_key)
