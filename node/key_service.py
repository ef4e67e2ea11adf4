"""The custodian key service and the center's record publisher.

A center's node is the *custodian* of the records its center provides. It holds the
center's chain account (to sign receipts and publications) and the center's encryption
key (to unwrap the data keys wrapped for it).

Publishing (``publish``): the center's own systems send the plaintext record to their own
node, which validates it against the data standard, encrypts it under a fresh data key,
wraps that key for the custodian (itself) and the owner, and commits ``Records.publish``.
The plaintext exists only in this node's memory during the call; only the ciphertext
and the wrapped keys go on chain.

Reading (``release_key``): a grantee's signed request reaches any node; a node that is not
the record's custodian forwards it unchanged (see ``yilian.api.routes.records``). The
custodian checks the live grant on chain, commits an access receipt through
``Grants.record_access`` (which checks the grant *again* atomically and counts the read),
and only after that receipt is final re-wraps the data key for the grantee's registered
encryption key. The custodian never sends a data key in a form anyone but the grantee
can open, so a relaying node learns nothing.

If the custodian's node is down, the read fails with ``custodian_unavailable`` and nothing
else: no other node holds a key that opens the record. The owner can always read its own
records, because the data key is also wrapped for it. See docs/records.md.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

from yilian.contracts.addresses import max_access_items
from yilian.crypto.suites import load_private_key
from yilian.node import key_batches
from yilian.node.center_account import CenterAccount
from yilian.node.config import NodeConfig
from yilian.node.domain import RECORDS, Located, RecordMeta, code_of
from yilian.node.genesis import Genesis
from yilian.node.interfaces import DomainReader, HealthCheck, LedgerAPI
from yilian.node.key_types import (
    KeyItem,
    KeyRelease,
    NotCustodian,
    Published,
    ReadPlan,
    ReceiptRef,
    ServiceError,
    failure,
    refusal,
)
from yilian.node.receipt_batcher import ReceiptBatcher
from yilian.node.tx_outcome import TxFailed
from yilian.protocol import envelope, standard
from yilian.protocol.credit_code import CreditCodeError
from yilian.protocol.credit_code import to_bytes32 as code_to_id
from yilian.protocol.record_ids import record_id_for

REQUEST_ID_TAG = b"yilian-key-request-v1"
MAX_CIPHERTEXT = 32768  # Records.publish takes ciphertext: Bytes[32768]
RETRY_WINDOW_S = 600  # how long a read's request id may fetch its key again


@dataclass(frozen=True)
class _Planned:
    """A checked publication or removal, ready to send."""

    record_id: bytes
    version: int
    digest: bytes
    data: bytes  # the Records call
    plaintext: bytes | None  # publications: to tell a retry from a reused client id


def request_id_for(account: bytes, request: bytes) -> bytes:
    """The on-chain id of ``account``'s key request named ``request`` (the client's request
    id, or the signed request's nonce): the contract refuses a second receipt for it."""
    return keccak(REQUEST_ID_TAG + account + request)


class KeyService:
    def __init__(self, genesis: Genesis, domain: DomainReader, account: CenterAccount,
                 enc_private: bytes) -> None:
        self.genesis = genesis
        self.domain = domain
        self.account = account
        self.suite = genesis.suite
        self._enc_private = enc_private
        self._center: bytes | None = None
        # single reads' receipts, recorded together under load (node/receipt_batcher.py)
        self.receipts = ReceiptBatcher(account, domain.grants.encode_call,
                                       max_access_items(genesis.params.max_tx_gas))

    # -- identity -------------------------------------------------------------------------
    def center_id(self) -> bytes:
        if self._center is None:
            member = self.domain.member_of(self.account.address)
            if not any(member):
                raise ServiceError("not_registered",
                                   f"this node's center account {self.account.checksum} is not "
                                   "a registered member; ask the consortium admin to add it")
            self._center = member
        return self._center

    def _aad(self, meta: RecordMeta, version: int, schema: int) -> bytes:
        return envelope.record_aad(
            self.genesis.chain_id, RECORDS, meta.record_id, version, meta.rtype,
            meta.subject, meta.owner, schema)

    # -- publishing -----------------------------------------------------------------------
    async def publish(self, caller: bytes, rtype: Any, subject: str, payload: Any, *,
                      client_id: str, owner: str | None, version: int | None) -> Published:
        """Publish one record (see the module doc); waits for the commit holding no thread."""
        plan = await asyncio.to_thread(self._plan_publish, caller, rtype, subject, payload,
                                       client_id, owner, version)
        if isinstance(plan, Published):
            return plan
        try:
            rec = await self.account.send(RECORDS, plan.data)
        except TxFailed as exc:
            return await asyncio.to_thread(self._publish_failed, exc, plan)
        return Published(plan.record_id, plan.version, plan.digest, bytes(rec.tx.hash),
                         rec.block_number, rec.block_hash)

    def _publish_failed(self, exc: TxFailed, plan: _Planned) -> Published:
        now = self.domain.record(plan.record_id)
        if exc.reason == "reverted" and now is not None and now.latest >= plan.version:
            # an overlapping attempt of the same publication committed first
            return self._already(plan.record_id, plan.version, plan.plaintext)
        raise failure(exc, "publishing") from None

    def _plan_publish(self, caller: bytes, rtype: Any, subject: str, payload: Any,
                      client_id: str, owner: str | None, version: int | None
                      ) -> Published | _Planned:
        """The publication's transaction, or the committed one of an earlier attempt."""
        center = self.center_id()
        if self.domain.member_of(caller) != center:
            raise ServiceError("not_center_staff",
                               "only accounts of this node's own center may publish through it; "
                               "publish through your own center's node")
        try:
            subject_id = code_to_id(subject)
        except CreditCodeError as exc:
            raise ServiceError("invalid_record", str(exc),
                               {"fields": [{"field": "subject", "message": str(exc)}]}) from None
        try:
            kind = standard.RecordType.parse(rtype)
            plaintext = standard.canonical_bytes(kind, payload, subject=subject)
        except standard.RecordInvalid as exc:
            raise ServiceError("invalid_record", str(exc), {"fields": [
                {"field": e.field, "message": e.message} for e in exc.errors]}) from None
        if len(plaintext) + envelope.SEALED_OVERHEAD > MAX_CIPHERTEXT:
            limit = MAX_CIPHERTEXT - envelope.SEALED_OVERHEAD
            raise ServiceError("record_too_large",
                               f"the record encodes to {len(plaintext)} bytes; at most {limit} "
                               "fit in one on-chain record: split it into several records",
                               {"fields": [{"field": "", "message": "record too large"}]})
        owner_kind = owner or standard.DEFAULT_OWNER[kind]
        if owner_kind not in ("subject", "center"):
            raise ServiceError("invalid_record", "owner must be 'subject' or 'center'",
                               {"fields": [{"field": "owner", "message": "subject or center"}]})
        owner_id = subject_id if owner_kind == "subject" else center
        owner_member = self.domain.member(owner_id)
        if owner_member is None or not owner_member.active:
            raise ServiceError("owner_not_member",
                               f"the owner {code_of(owner_id)} is not an active member, so no "
                               "key can be wrapped for it; register the enterprise first or "
                               "publish with owner='center'")
        record_id = record_id_for(center, client_id)
        existing = self.domain.record(record_id)
        latest = existing.latest if existing else 0
        target = version if version is not None else latest + 1
        if existing is not None and (version is None or version <= latest):
            # A retry of a publication that already committed: report it, add nothing -
            # but only if it is the same record; a client id reused for other content is
            # a mistake the caller must hear about.
            return self._already(record_id, version or 1, plaintext)
        if target != latest + 1:
            raise ServiceError("version_conflict",
                               f"record is at version {latest}; publish version {latest + 1}")
        meta = RecordMeta(record_id, int(kind), subject_id, center, owner_id, target, False)
        aad = self._aad(meta, target, standard.SCHEMA_VERSION)
        sealed = envelope.seal(self.suite, plaintext, aad)
        my_key = self.domain.member(center)
        assert my_key is not None
        wrapped = {center: envelope.wrap_key(self.suite, my_key.enc_key, sealed.data_key)}
        if owner_id != center:
            wrapped[owner_id] = envelope.wrap_key(self.suite, owner_member.enc_key,
                                                  sealed.data_key)
        digest = envelope.digest(self.suite, sealed.ciphertext)
        data = self.domain.records.encode_call(
            "publish", record_id, target, int(kind), subject_id, owner_id,
            standard.SCHEMA_VERSION, digest, sealed.ciphertext,
            envelope.encode_wrapped_keys(wrapped))
        return _Planned(record_id, target, digest, data, plaintext)

    async def remove(self, caller: bytes, record_id: bytes, version: int | None
                     ) -> Published:
        """Tombstone a record this center provides (a new version; old ones stay)."""
        plan = await asyncio.to_thread(self._plan_remove, caller, record_id, version)
        if isinstance(plan, Published):
            return plan
        try:
            rec = await self.account.send(RECORDS, plan.data)
        except TxFailed as exc:
            return await asyncio.to_thread(self._remove_failed, exc, plan)
        return Published(record_id, plan.version, plan.digest, bytes(rec.tx.hash),
                         rec.block_number, rec.block_hash)

    def _remove_failed(self, exc: TxFailed, plan: _Planned) -> Published:
        now = self.domain.record(plan.record_id)
        if exc.reason == "reverted" and now is not None and now.removed and (
                now.latest >= plan.version):
            return self._already(plan.record_id, plan.version)
        raise failure(exc, "removal") from None

    def _plan_remove(self, caller: bytes, record_id: bytes, version: int | None
                     ) -> Published | _Planned:
        center = self.center_id()
        if self.domain.member_of(caller) != center:
            raise ServiceError("not_center_staff",
                               "only accounts of the providing center may remove its records")
        meta = self.locate_custodian(record_id)
        if meta.center != center:
            raise ServiceError("not_provider", "only the providing center may remove a "
                               f"record; this one is {code_of(meta.center)}'s")
        target = version if version is not None else meta.latest + 1
        if meta.removed and version is not None and version <= meta.latest:
            return self._already(record_id, version)
        data = self.domain.records.encode_call("remove", record_id, target)
        return _Planned(record_id, target, b"\x00" * 32, data, None)

    def _already(self, record_id: bytes, version: int, plaintext: bytes | None = None
                 ) -> Published:
        located = self.domain.published(record_id, version)
        if located is None:
            raise ServiceError("version_conflict", f"version {version} is not committed")
        if plaintext is not None and self._committed_plaintext(located) != plaintext:
            raise ServiceError("client_id_reused",
                               f"version {version} of this record (client id) was already "
                               "published with different content; to update it publish "
                               f"version {self.locate_custodian(record_id).latest + 1}, or use "
                               "a new client id for a new record")
        return Published(record_id, version, bytes(located.event.args.get("digest", b"")),
                         located.tx_hash, located.block_number, located.block_hash, True)

    def _committed_plaintext(self, located: Located) -> bytes | None:
        """The plaintext of a version this center published (its own key opens it)."""
        args = located.event.args
        if located.event.event != "RecordPublished":
            return None
        meta = self.locate_custodian(bytes(args["record_id"]))
        mine = envelope.decode_wrapped_keys(bytes(args["wrapped_keys"])).get(meta.center)
        if mine is None:
            return None
        key = envelope.unwrap_key(self.suite, self._enc_private, mine)
        aad = self._aad(meta, int(args["version"]), int(args["schema"]))
        return envelope.open_sealed(self.suite, key, bytes(args["ciphertext"]), aad)

    # -- key release ----------------------------------------------------------------------
    def locate_custodian(self, record_id: bytes) -> RecordMeta:
        meta = self.domain.record(record_id)
        if meta is None:
            raise ServiceError("record_not_found",
                               f"no record 0x{record_id.hex()} on chain (yet)")
        return meta

    def earlier_receipt(self, meta: RecordMeta, request_id: bytes, grant_id: int,
                         version: int, reader_id: bytes) -> Located | None:
        """The committed receipt of an earlier attempt of the same read (same request id),
        if the chain has one. ServiceError if that id was used for a different read, if
        the grant no longer allows the read (revoked, expired, grantee or owner suspended,
        record removed: every rule of a new read but the read count, Grants.check_retry),
        or if the receipt is older than RETRY_WINDOW_S: a retry is for a lost answer, not
        a standing licence."""
        located = self.domain.receipt_of_request(request_id)
        if located is None:
            return None
        a = located.event.args
        if (a["record_id"], a["version"], a["reader"], a["grant_id"]) != (
                meta.record_id, version, reader_id, grant_id):
            raise ServiceError("request_id_used", "this request id was already used for "
                               "another read; use a fresh request id for a new read")
        status = self.domain.check_grant(grant_id, meta.record_id, reader_id, retry=True)
        grant = self.domain.grant(grant_id)
        if status == 0 and grant is not None and time.time() >= int(grant["expiry"]):
            # The view ran at the head's timestamp; with no block since the expiry the
            # wall clock is the later (and the stricter) of the two.
            status = 3
        if status != 0:
            raise refusal(status)
        if time.time() - located.timestamp > RETRY_WINDOW_S:
            raise ServiceError("request_id_expired",
                               f"the read with this request id was served more than "
                               f"{RETRY_WINDOW_S} s ago; make a new read")
        return located

    async def release_key(self, reader: bytes, nonce: str, record_id: bytes, grant_id: int,
                          version: int | None, client_request_id: bytes | None = None,
                          expect_enc_key: bytes | None = None) -> KeyRelease:
        """Release the data key of one record version to ``reader`` under ``grant_id``.

        ``client_request_id`` names the read: a retry with the same id after a failure
        (say, this node crashed after the receipt committed) gets the key again under the
        receipt already on chain instead of spending another read. Waiting for the
        receipt to commit holds no thread.
        """
        plan = await asyncio.to_thread(self._plan_read, reader, nonce, record_id, grant_id,
                                       version, client_request_id, expect_enc_key)
        if plan.send_receipt:
            assert plan.request_id is not None
            try:
                record = await self.receipts.record((plan.grant_id, plan.meta.record_id,
                                                     plan.version, plan.reader_id,
                                                     plan.request_id))
            except TxFailed as exc:
                plan = await asyncio.to_thread(self._receipt_refused, plan, exc)
            else:  # committed with status 1: its receipt is on chain
                plan = replace(plan, receipt=ReceiptRef(
                    bytes(record.tx.hash), record.block_number, record.block_hash))
        return await asyncio.to_thread(self.rewrap, plan)

    async def release_keys(self, reader: bytes, nonce: str, items: list[KeyItem],
                           client_request_id: bytes | None = None,
                           expect_enc_key: bytes | None = None) -> list[KeyRelease]:
        """The data keys of several records of this custodian, each wrapped for ``reader``,
        with one receipt transaction for all (:mod:`yilian.node.key_batches`)."""
        return await key_batches.release_keys(self, reader, nonce, items, client_request_id,
                                              expect_enc_key)

    def _receipt_refused(self, plan: ReadPlan, exc: TxFailed) -> ReadPlan:
        """The receipt transaction failed: a concurrent attempt of the same read may have
        won the race (its receipt is the answer); otherwise the reason it was refused."""
        if exc.reason != "reverted":
            raise failure(exc, "the access receipt") from None
        assert plan.request_id is not None
        receipt = self.earlier_receipt(plan.meta, plan.request_id, plan.grant_id,
                                       plan.version, plan.reader_id)
        if receipt is not None:
            return replace(plan, receipt=ReceiptRef.of(receipt))
        status = self.domain.check_grant(plan.grant_id, plan.meta.record_id, plan.reader_id)
        if status != 0:
            raise refusal(status) from None
        raise ServiceError("refused", f"read refused: {exc}") from None

    def rewrap(self, plan: ReadPlan) -> KeyRelease:
        """The plan's data key, re-wrapped for the reader, with its receipt (if any)."""
        try:
            wrapped = envelope.rewrap(self.suite, self._enc_private, plan.custodian_key,
                                      plan.reader_enc_key)
        except envelope.EnvelopeError as exc:
            raise ServiceError("rewrap_failed", f"cannot re-wrap the data key: {exc}"
                               ) from None
        receipt = plan.receipt
        return KeyRelease(plan.meta.record_id, plan.version, wrapped,
                          None if receipt is None else receipt.tx_hash,
                          None if receipt is None else receipt.block_number,
                          None if receipt is None else receipt.block_hash)

    def _plan_read(self, reader: bytes, nonce: str, record_id: bytes, grant_id: int,
                   version: int | None, client_request_id: bytes | None,
                   expect_enc_key: bytes | None) -> ReadPlan:
        """Every check of a read before a receipt is sent; the receipt call to send, if
        the read needs one and no earlier attempt of it committed."""
        plan = self.check_read(reader, record_id, grant_id, version, expect_enc_key)
        if not plan.needs_receipt:  # the owner reads its own record: no receipt
            return plan
        request_id = request_id_for(reader, client_request_id or bytes.fromhex(nonce))
        receipt = self.earlier_receipt(plan.meta, request_id, grant_id, plan.version,
                                       plan.reader_id)
        if receipt is not None:
            return replace(plan, request_id=request_id, receipt=ReceiptRef.of(receipt))
        status = self.domain.check_grant(grant_id, record_id, plan.reader_id)
        if status != 0:
            raise refusal(status)
        return replace(plan, request_id=request_id, send_receipt=True)

    def check_read(self, reader: bytes, record_id: bytes, grant_id: int, version: int | None,
                   expect_enc_key: bytes | None = None) -> ReadPlan:
        """Every check of a read that does not depend on its request id: this node is the
        record's custodian (NotCustodian otherwise), the reader an active member with a
        usable encryption key (``expect_enc_key``, when the caller names the key it holds,
        must be that registered key), the version published and intact. The plan names no
        receipt yet."""
        meta = self.locate_custodian(record_id)
        if meta.center != self.center_id():
            raise NotCustodian(meta.center)
        reader_id = self.domain.member_of(reader)
        reader_member = self.domain.member(reader_id) if any(reader_id) else None
        if reader_member is None or not reader_member.active:
            raise ServiceError("not_member", "the caller is not an active member account")
        if expect_enc_key is not None and expect_enc_key != reader_member.enc_key:
            raise ServiceError("wrong_enc_key", f"the encryption key this request holds "
                               f"(public key 0x{expect_enc_key.hex()}) is not the one member "
                               f"{code_of(reader_id)} registered "
                               f"(0x{bytes(reader_member.enc_key).hex()}); use the member's "
                               "registered encryption key, or have the admin register the "
                               "new one first. No read was spent.")
        v = version or meta.latest
        if not 1 <= v <= meta.latest:
            raise ServiceError("version_not_found",
                               f"record has versions 1..{meta.latest}; asked for {v}")
        vmeta = self.domain.version(record_id, v)
        if vmeta.tombstone:
            raise ServiceError("record_removed", f"version {v} is a removal (tombstone)")
        located = self.domain.published(record_id, v)
        if located is None or located.event.event != "RecordPublished":
            raise ServiceError("index_missing", "the version's publication is not indexed")
        args = located.event.args
        ciphertext = bytes(args["ciphertext"])
        if envelope.digest(self.suite, ciphertext) != vmeta.digest or bytes(
                args["digest"]) != vmeta.digest:
            raise ServiceError("tampered",
                               "the stored ciphertext does not match its on-chain digest")
        bundle = envelope.decode_wrapped_keys(bytes(args["wrapped_keys"]))
        mine = bundle.get(meta.center)
        if mine is None:
            raise ServiceError("no_custodian_key", "no data key was wrapped for the "
                               "custodian of this record")
        try:  # before a read is spent: a key that cannot be wrapped for would waste it
            envelope.check_enc_public_key(self.suite, reader_member.enc_key)
        except envelope.EnvelopeError as exc:
            raise ServiceError("bad_enc_key", f"the caller's registered encryption key "
                               f"is unusable on this network: {exc}; ask the admin to "
                               "register a valid one") from None
        return ReadPlan(meta, v, reader_id, reader_member.enc_key, mine, grant_id)


def load_key_service(config: NodeConfig, home: Path, ledger: LedgerAPI, liveness: HealthCheck,
                     domain: DomainReader) -> KeyService | None:
    """The key service when the node is configured with a center account and enc key."""
    if not (config.account_key_file and config.enc_key_file and domain.enabled):
        return None

    def path(name: str) -> os.PathLike[str] | str:
        return name if os.path.isabs(name) else home / name

    account = CenterAccount(ledger, liveness, load_private_key(path(config.account_key_file)))
    enc_private = load_private_key(path(config.enc_key_file))
    return KeyService(ledger.genesis, domain, account, enc_private)
