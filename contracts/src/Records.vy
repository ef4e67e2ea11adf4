# pragma version ~=0.4.3
"""
@title Records
@license Apache-2.0
@notice Versioned, encrypted records about enterprises, published by the
        trading center that holds them (the record's custodian). The chain
        keeps who published what and when plus a digest per version; the
        encrypted payload travels only in the transaction's calldata and the
        `RecordPublished` event, never in storage.
@dev Invariants:
     * A record's type, subject, owner and providing center never change
       after its first version.
     * Versions are numbered 1, 2, 3, ... without gaps; `publish`/`remove`
       name the version they create, so a resubmitted transaction fails with
       "version conflict" instead of adding a duplicate.
     * A removed record ends with a tombstone version (digest zero) and takes
       no further versions.
     * A record's owner is its subject or its providing center, so storage
       keeps a flag instead of the owner id.
     * `owned_types[owner][subject]` has bit `rtype` set iff `owner` owns (or owned:
       removal keeps the bit) a record of type `rtype` about `subject`; Grants lets a
       type grant cover only such types (and the subject's own default types).
     * Storage is packed: per record subject, center and one metadata word;
       per version the digest and one metadata word. The views unpack it into
       `Record` / `Version`.
"""

ROLE_CENTER: constant(uint8) = 1
ROLE_ENTERPRISE: constant(uint8) = 3
MAX_RTYPE: constant(uint8) = 7
MASK16: constant(uint256) = 2**16 - 1
MASK32: constant(uint256) = 2**32 - 1
MASK64: constant(uint256) = 2**64 - 1
REMOVED: constant(uint256) = 1 << 40
CENTER_OWNS: constant(uint256) = 1 << 48


interface IMembers:
    def account_info(account: address) -> (bytes32, uint8): view
    def member_role(id: bytes32) -> uint8: view


struct Record:
    rtype: uint8
    subject: bytes32
    center: bytes32
    owner: bytes32
    latest: uint32
    removed: bool


struct Version:
    digest: bytes32
    schema: uint16
    block_number: uint64
    timestamp: uint64
    tombstone: bool


# meta = rtype | latest << 8 | removed << 40 | (owner is the center) << 48
struct StoredRecord:
    subject: bytes32
    center: bytes32
    meta: uint256


# meta = schema | block_number << 16 | timestamp << 80 | tombstone << 144
struct StoredVersion:
    digest: bytes32
    meta: uint256


event RecordPublished:
    record_id: indexed(bytes32)
    subject: indexed(bytes32)
    owner: indexed(bytes32)
    version: uint32
    rtype: uint8
    center: bytes32
    schema: uint16
    digest: bytes32
    ciphertext: Bytes[32768]
    wrapped_keys: Bytes[1024]


event RecordRemoved:
    record_id: indexed(bytes32)
    subject: indexed(bytes32)
    owner: indexed(bytes32)
    version: uint32
    center: bytes32


# @notice The member registry consulted for callers' roles and credit codes.
MEMBERS: public(immutable(IMembers))

records: HashMap[bytes32, StoredRecord]
versions: HashMap[bytes32, HashMap[uint32, StoredVersion]]

# @notice Number of distinct records ever published (removed ones included).
record_count: public(uint256)

# @notice Bit (1 << rtype) per record type of which member `owner` owns a record about
#         `subject` (set when such a record is first published, kept after removal).
owned_types: public(HashMap[bytes32, HashMap[bytes32, uint256]])


CREDIT_CODE_CHECK: constant(address) = 0x00000000000000000000000000000000000a1200


@internal
@view
def _valid_credit_code(code: bytes32) -> bool:
    """
    @dev The GB 32100-2015 check, by the chain's credit-code precompile (yilian
         node/natstd_precompiles.py; its EVM reference is CreditCodeReference.vy):
         18 alphabet characters, zero padding, a matching check character.
    """
    out: Bytes[32] = raw_call(
        CREDIT_CODE_CHECK, concat(code, b""), max_outsize=32, is_static_call=True
    )
    return len(out) == 32 and extract32(out, 0, output_type=uint256) == 1


@deploy
def __init__(members: address):
    MEMBERS = IMembers(members)


@internal
@view
def _caller() -> (bytes32, uint8):
    return staticcall MEMBERS.account_info(msg.sender)


@internal
@pure
def _owner(rec: StoredRecord) -> bytes32:
    if rec.meta & CENTER_OWNS != 0:
        return rec.center
    return rec.subject


@internal
@view
def _version_meta(schema: uint16, tombstone: bool) -> uint256:
    meta: uint256 = convert(schema, uint256) | (block.number << 16) | (block.timestamp << 80)
    if tombstone:
        meta |= 1 << 144
    return meta


@external
def publish(
    record_id: bytes32,
    version: uint32,
    rtype: uint8,
    subject: bytes32,
    owner: bytes32,
    schema: uint16,
    digest: bytes32,
    ciphertext: Bytes[32768],
    wrapped_keys: Bytes[1024],
) -> uint32:
    """
    @notice Publish version `version` of record `record_id`; returns `version`.
    @dev Version 1 creates the record: `owner` must be the subject (a registered,
         active enterprise) or the publishing center itself. Later versions may
         come only from the same center and must repeat type, subject and owner.
    @param version Must be the record's latest version + 1 (1 for a new record).
    @param rtype 1 basic, 2 qualification, 3 performance, 4 personnel, 5 credit,
           6 supervision, 7 project.
    @param subject Credit code of the enterprise the record is about.
    @param schema Payload schema number (> 0) understood by off-chain readers.
    @param digest Hash of the plaintext payload (non-zero).
    @param ciphertext Encrypted payload; kept only in the event.
    @param wrapped_keys The payload key wrapped for its readers; kept only in the event.
    """
    me: bytes32 = empty(bytes32)
    role: uint8 = 0
    me, role = self._caller()
    assert role == ROLE_CENTER, "only a trading center may publish records"
    assert schema > 0, "schema must be greater than zero"
    assert digest != empty(bytes32), "digest must not be zero"
    assert len(ciphertext) > 0, "ciphertext must not be empty"
    rec: StoredRecord = self.records[record_id]
    latest: uint32 = convert((rec.meta >> 8) & MASK32, uint32)
    if latest == 0:
        assert record_id != empty(bytes32), "record id must not be zero"
        assert version == 1, "version conflict: expected 1"
        assert rtype >= 1 and rtype <= MAX_RTYPE, "unknown record type (must be 1..7)"
        assert self._valid_credit_code(subject), (
            "subject is not a valid unified social credit code"
        )
        assert owner == me or (
            owner == subject and staticcall MEMBERS.member_role(subject) == ROLE_ENTERPRISE
        ), "owner must be the subject enterprise (registered) or the publishing center"
        # Each center names its records in its own namespace, so no center can take an id
        # another center will use (ids are predictable: derived from client ids).
        assert convert(record_id, uint256) >> 192 == convert(keccak256(me), uint256) >> 192, (
            "record id is outside the publishing center's namespace (its first 8 bytes must "
            "be those of keccak256(center id))"
        )
        meta: uint256 = convert(rtype, uint256) | (1 << 8)
        if owner == me:
            meta |= CENTER_OWNS
        self.records[record_id] = StoredRecord(subject=subject, center=me, meta=meta)
        self.record_count += 1
        bit: uint256 = 1 << convert(rtype, uint256)
        if self.owned_types[owner][subject] & bit == 0:
            self.owned_types[owner][subject] |= bit
    else:
        assert rec.center == me, "only the providing center may update a record"
        assert rec.meta & REMOVED == 0, "record was removed"
        assert version == latest + 1, concat("version conflict: expected ", uint2str(latest + 1))
        assert convert(rec.meta & 255, uint8) == rtype and rec.subject == subject and (
            self._owner(rec) == owner
        ), "record type, subject and owner cannot change between versions"
        self.records[record_id].meta = (rec.meta & ~(MASK32 << 8)) | (
            convert(version, uint256) << 8
        )
    self.versions[record_id][version] = StoredVersion(
        digest=digest, meta=self._version_meta(schema, False)
    )
    log RecordPublished(
        record_id=record_id,
        subject=subject,
        owner=owner,
        version=version,
        rtype=rtype,
        center=me,
        schema=schema,
        digest=digest,
        ciphertext=ciphertext,
        wrapped_keys=wrapped_keys,
    )
    return version


@external
def remove(record_id: bytes32, version: uint32):
    """
    @notice Remove record `record_id` by appending tombstone version `version`
            (latest + 1, digest zero). Only the providing center may remove.
    """
    me: bytes32 = empty(bytes32)
    role: uint8 = 0
    me, role = self._caller()
    assert role == ROLE_CENTER, "only a trading center may remove records"
    rec: StoredRecord = self.records[record_id]
    latest: uint32 = convert((rec.meta >> 8) & MASK32, uint32)
    assert latest != 0, "no such record"
    assert rec.center == me, "only the providing center may remove a record"
    assert rec.meta & REMOVED == 0, "record was removed"
    assert version == latest + 1, concat("version conflict: expected ", uint2str(latest + 1))
    self.records[record_id].meta = (
        (rec.meta & ~(MASK32 << 8)) | (convert(version, uint256) << 8) | REMOVED
    )
    self.versions[record_id][version] = StoredVersion(
        digest=empty(bytes32), meta=self._version_meta(0, True)
    )
    log RecordRemoved(
        record_id=record_id, subject=rec.subject, owner=self._owner(rec), version=version, center=me
    )


@external
@view
def get_record(record_id: bytes32) -> Record:
    """
    @notice Record `record_id` (all zero, latest 0, if there is none).
    """
    rec: StoredRecord = self.records[record_id]
    return Record(
        rtype=convert(rec.meta & 255, uint8),
        subject=rec.subject,
        center=rec.center,
        owner=self._owner(rec),
        latest=convert((rec.meta >> 8) & MASK32, uint32),
        removed=rec.meta & REMOVED != 0,
    )


@external
@view
def get_version(record_id: bytes32, version: uint32) -> Version:
    """
    @notice Version `version` of record `record_id` (all zero if there is none).
    """
    v: StoredVersion = self.versions[record_id][version]
    return Version(
        digest=v.digest,
        schema=convert(v.meta & MASK16, uint16),
        block_number=convert((v.meta >> 16) & MASK64, uint64),
        timestamp=convert((v.meta >> 80) & MASK64, uint64),
        tombstone=(v.meta >> 144) & 1 == 1,
    )
