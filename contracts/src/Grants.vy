# pragma version ~=0.4.3
"""
@title Grants
@license Apache-2.0
@notice Consent to read records: a record owner grants another member access to
        its records about one subject (by record types, or one record), for a
        purpose, until an expiry, for a bounded number of reads. The custodian
        center logs every access it serves as an `AccessReceipt`, which also
        spends one read of the grant.
@dev Invariants:
     * Grant ids are 1, 2, 3, ... in creation order; a grant's owner, grantee,
       subject, scope, purpose, expiry and max_reads never change.
     * `reads` never exceeds `max_reads`; it only grows, by one per receipt.
     * A grant covers record R iff R exists and is not removed, R's subject and
       owner equal the grant's, and R's id equals the grant's record id (record
       grants) or R's type bit is set in the grant's type mask (type grants).
     * A request id yields at most one receipt, ever.
     * Every grant covers only what its owner owns (`grant_refusal`): a type grant
       only types of which the granter owns records about the subject
       (`Records.owned_types`), plus, for the subject itself, the types it owns by
       default (basic, qualification, performance, personnel), so it may grant
       those before they are published; a record grant only by the record's owner.
       Credit, supervision and project records belong by default to the center that
       provides them: that center grants them (by type: exactly its own records of
       the subject; or by record id). So no grant in a subject's history was made
       by a non-owner.
     * A grant works only while both its grantee and its owner are active members
       (a suspension pauses it; the suspended owner can still revoke it).
     * Storage is packed: per grant owner, grantee, subject, record id (written
       only when set), purpose and one metadata word; `get_grant` unpacks it.
"""

ROLE_CENTER: constant(uint8) = 1
TYPE_BITS: constant(uint256) = 254  # bits 1..7: one per record type
# Types the subject owns by default (standard.DEFAULT_OWNER): basic, qualification,
# performance, personnel. The others (credit, supervision, project) are the providing
# center's.
SUBJECT_TYPES: constant(uint256) = 30  # bits 1..4
CODE_LEN: constant(uint256) = 18  # a member id is an 18-character credit code, zero-padded
MASK32: constant(uint256) = 2**32 - 1
MASK64: constant(uint256) = 2**64 - 1

# Field offsets in StoredGrant.meta.
EXPIRY_AT: constant(uint256) = 0  # uint64
MAX_READS_AT: constant(uint256) = 64  # uint32
READS_AT: constant(uint256) = 96  # uint32
REVOKED_AT: constant(uint256) = 128  # 1 bit
CREATED_AT: constant(uint256) = 136  # uint64
TYPES_AT: constant(uint256) = 200  # 8 bits

OK: constant(uint8) = 0
NO_GRANT: constant(uint8) = 1
REVOKED: constant(uint8) = 2
EXPIRED: constant(uint8) = 3
NO_READS_LEFT: constant(uint8) = 4
NOT_COVERED: constant(uint8) = 5
NOT_GRANTEE: constant(uint8) = 6
GRANTEE_INACTIVE: constant(uint8) = 7
OWNER_INACTIVE: constant(uint8) = 8


interface IMembers:
    def account_info(account: address) -> (bytes32, uint8): view
    def member_of(account: address) -> bytes32: view
    def member_role(id: bytes32) -> uint8: view


# Same layout as Records.Record (the ABI tuple get_record returns).
struct Record:
    rtype: uint8
    subject: bytes32
    center: bytes32
    owner: bytes32
    latest: uint32
    removed: bool


# Same layout as Records.Version.
struct Version:
    digest: bytes32
    schema: uint16
    block_number: uint64
    timestamp: uint64
    tombstone: bool


interface IRecords:
    def get_record(record_id: bytes32) -> Record: view
    def owned_types(owner: bytes32, subject: bytes32) -> uint256: view
    def get_version(record_id: bytes32, version: uint32) -> Version: view


struct Grant:
    owner: bytes32
    grantee: bytes32
    subject: bytes32
    types: uint256
    record_id: bytes32
    purpose: String[256]
    expiry: uint64
    max_reads: uint32
    reads: uint32
    revoked: bool
    created: uint64


struct StoredGrant:
    owner: bytes32
    grantee: bytes32
    subject: bytes32
    record_id: bytes32
    meta: uint256
    purpose: String[256]


# One read for record_access_many: the arguments of record_access.
struct Access:
    grant_id: uint256
    record_id: bytes32
    version: uint32
    reader: bytes32
    request_id: bytes32


event Granted:
    grant_id: indexed(uint256)
    owner: indexed(bytes32)
    grantee: indexed(bytes32)
    subject: bytes32
    types: uint256
    record_id: bytes32
    purpose: String[256]
    expiry: uint64
    max_reads: uint32


event Revoked:
    grant_id: indexed(uint256)
    owner: indexed(bytes32)
    subject: bytes32


event AccessReceipt:
    subject: indexed(bytes32)
    grant_id: indexed(uint256)
    record_id: indexed(bytes32)
    version: uint32
    reader: bytes32
    custodian: bytes32
    timestamp: uint64
    request_id: bytes32


# @notice The member registry.
MEMBERS: public(immutable(IMembers))
# @notice The record registry whose records grants cover.
RECORDS: public(immutable(IRecords))

grants: HashMap[uint256, StoredGrant]

# @notice Number of grants ever made; the latest grant's id.
grant_count: public(uint256)

# @notice True once a request id has produced an access receipt.
used_requests: public(HashMap[bytes32, bool])


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
def __init__(members: address, records: address):
    MEMBERS = IMembers(members)
    RECORDS = IRecords(records)


@internal
@pure
def _code(id: bytes32) -> String[18]:
    return convert(slice(id, 0, CODE_LEN), String[18])


@internal
@view
def _refusal(granter: bytes32, subject: bytes32, types: uint256, record_id: bytes32
             ) -> String[200]:
    if record_id == empty(bytes32):
        owned: uint256 = staticcall RECORDS.owned_types(granter, subject)
        if granter == subject:
            owned |= SUBJECT_TYPES
        missing: uint256 = types & ~owned
        if missing & SUBJECT_TYPES != 0:
            return concat(
                "only the subject ", self._code(subject), " may grant its basic, "
                "qualification, performance and personnel records by type; ask it for the grant",
            )
        if missing != 0:
            return concat(
                self._code(granter), " owns no records of ", self._code(subject),
                " of the types asked for: its credit, supervision and project records are "
                "owned by the center that provides them, which grants them",
            )
        return ""
    rec: Record = staticcall RECORDS.get_record(record_id)
    if rec.latest == 0:
        return "no such record: a record grant needs a published record"
    if rec.removed:
        return "the record was removed"
    if rec.subject != subject:
        return concat("the record is about ", self._code(rec.subject), ", not the grant's subject")
    if rec.owner != granter:
        return concat("only the record's owner ", self._code(rec.owner), " may grant access to it")
    return ""


@external
@view
def grant_refusal(granter: bytes32, subject: bytes32, types: uint256, record_id: bytes32
                  ) -> String[200]:
    """
    @notice Why member `granter` may not grant access to `subject`'s records of `types`
            (or to record `record_id`), naming the owner; empty if it owns them. A type
            grant may cover the types of which the granter owns records about the
            subject (`Records.owned_types`) and, for the subject itself, basic,
            qualification, performance and personnel (its own by default); a record
            grant needs the record's owner.
    """
    return self._refusal(granter, subject, types, record_id)


@external
def grant(
    grantee: bytes32,
    subject: bytes32,
    types: uint256,
    record_id: bytes32,
    purpose: String[256],
    expiry: uint64,
    max_reads: uint32,
) -> uint256:
    """
    @notice Let member `grantee` read the caller's records about `subject`; returns
            the new grant id. The caller's member (an active member) is the owner and
            must own what the grant covers (see `grant_refusal`).
    @param types Bit (1 << rtype) per covered record type; 0 when `record_id` is set.
    @param record_id The one covered record; zero when `types` is set.
    @param expiry Unix seconds; the grant is usable while block.timestamp < expiry.
    @param max_reads How many access receipts the grant allows.
    """
    owner: bytes32 = empty(bytes32)
    role: uint8 = 0
    owner, role = staticcall MEMBERS.account_info(msg.sender)
    assert role != 0, "only an active member may grant access"
    assert staticcall MEMBERS.member_role(grantee) != 0, "grantee must be an active member"
    assert self._valid_credit_code(subject), (
        "subject is not a valid unified social credit code"
    )
    assert (types == 0) != (record_id == empty(bytes32)), (
        "give either record types or one record id, not both or neither"
    )
    assert types & TYPE_BITS == types, "types may only set bits 1..7 (one per record type)"
    assert convert(expiry, uint256) > block.timestamp, "expiry must be in the future"
    assert max_reads > 0, "max_reads must be at least 1"
    assert len(purpose) > 0, "purpose must not be empty"
    refusal: String[200] = self._refusal(owner, subject, types, record_id)
    if len(refusal) > 0:
        raise refusal
    grant_id: uint256 = self.grant_count + 1
    self.grant_count = grant_id
    self.grants[grant_id].owner = owner
    self.grants[grant_id].grantee = grantee
    self.grants[grant_id].subject = subject
    if record_id != empty(bytes32):
        self.grants[grant_id].record_id = record_id
    self.grants[grant_id].meta = (
        (convert(expiry, uint256) << EXPIRY_AT)
        | (convert(max_reads, uint256) << MAX_READS_AT)
        | (block.timestamp << CREATED_AT)
        | (types << TYPES_AT)
    )
    self.grants[grant_id].purpose = purpose
    log Granted(
        grant_id=grant_id,
        owner=owner,
        grantee=grantee,
        subject=subject,
        types=types,
        record_id=record_id,
        purpose=purpose,
        expiry=expiry,
        max_reads=max_reads,
    )
    return grant_id


@external
def revoke(grant_id: uint256):
    """
    @notice Revoke grant `grant_id` at once; only an account of its owner may.
    """
    owner: bytes32 = self.grants[grant_id].owner
    assert owner != empty(bytes32), "grant not found"
    assert staticcall MEMBERS.member_of(msg.sender) == owner, "only the owner may revoke this grant"
    meta: uint256 = self.grants[grant_id].meta
    assert (meta >> REVOKED_AT) & 1 == 0, "grant already revoked"
    self.grants[grant_id].meta = meta | (1 << REVOKED_AT)
    log Revoked(grant_id=grant_id, owner=owner, subject=self.grants[grant_id].subject)


@internal
@view
def _status(grant_id: uint256, record_id: bytes32, rec: Record, reader: bytes32,
            count_reads: bool) -> uint8:
    owner: bytes32 = self.grants[grant_id].owner
    if owner == empty(bytes32):
        return NO_GRANT
    meta: uint256 = self.grants[grant_id].meta
    if (meta >> REVOKED_AT) & 1 == 1:
        return REVOKED
    if block.timestamp >= (meta >> EXPIRY_AT) & MASK64:
        return EXPIRED
    if count_reads and (meta >> READS_AT) & MASK32 >= (meta >> MAX_READS_AT) & MASK32:
        return NO_READS_LEFT
    if rec.latest == 0 or rec.removed:
        return NOT_COVERED
    if rec.subject != self.grants[grant_id].subject or rec.owner != owner:
        return NOT_COVERED
    scoped: bytes32 = self.grants[grant_id].record_id
    if scoped != empty(bytes32):
        if scoped != record_id:
            return NOT_COVERED
    elif (meta >> TYPES_AT) & (1 << convert(rec.rtype, uint256)) == 0:
        return NOT_COVERED
    if reader != self.grants[grant_id].grantee:
        return NOT_GRANTEE
    if staticcall MEMBERS.member_role(reader) == 0:
        return GRANTEE_INACTIVE
    if staticcall MEMBERS.member_role(owner) == 0:
        return OWNER_INACTIVE
    return OK


@external
@view
def check(grant_id: uint256, record_id: bytes32, reader: bytes32) -> uint8:
    """
    @notice Whether member `reader` may read record `record_id` under grant
            `grant_id` now: 0 yes; 1 no such grant, 2 revoked, 3 expired, 4 no
            reads left, 5 record not covered (missing, removed, other subject or
            owner, type or id outside the grant), 6 reader is not the grantee,
            7 the grantee's membership is suspended, 8 the owner's membership is
            suspended (a grant pauses while either party is suspended).
    """
    return self._status(
        grant_id, record_id, staticcall RECORDS.get_record(record_id), reader, True
    )


@external
@view
def check_retry(grant_id: uint256, record_id: bytes32, reader: bytes32) -> uint8:
    """
    @notice `check` for a read already counted (a retry of a read whose receipt is on
            chain): every rule but the read count, so an expired, revoked or paused
            grant releases nothing even under an earlier receipt.
    """
    return self._status(
        grant_id, record_id, staticcall RECORDS.get_record(record_id), reader, False
    )


MAX_ACCESS_ITEMS: constant(uint256) = 32


@internal
def _record_access(
    me: bytes32, role: uint8, grant_id: uint256, record_id: bytes32, version: uint32,
    reader: bytes32, request_id: bytes32
) -> String[64]:
    """
    @dev Check one access and, when it is allowed, spend its read and log its receipt;
         otherwise change nothing and return why (empty when it was recorded).
    """
    rec: Record = staticcall RECORDS.get_record(record_id)
    if role != ROLE_CENTER or me != rec.center:
        return "only the record's custodian center may record an access"
    if request_id == empty(bytes32):
        return "request id must not be zero"
    if self.used_requests[request_id]:
        return "request already used"
    if version < 1 or version > rec.latest:
        return "no such version of this record"
    if (staticcall RECORDS.get_version(record_id, version)).tombstone:
        return "that version is a removal tombstone, not readable data"
    status: uint8 = self._status(grant_id, record_id, rec, reader, True)
    if status == NO_GRANT:
        return "grant not found"
    elif status == REVOKED:
        return "grant revoked"
    elif status == EXPIRED:
        return "grant expired"
    elif status == NO_READS_LEFT:
        return "no reads left"
    elif status == NOT_COVERED:
        return "record not covered by grant"
    elif status == NOT_GRANTEE:
        return "reader is not the grantee"
    elif status == GRANTEE_INACTIVE:
        return "the grantee is not an active member"
    elif status == OWNER_INACTIVE:
        return "the grant's owner is not an active member"
    self.used_requests[request_id] = True
    self.grants[grant_id].meta += 1 << READS_AT
    log AccessReceipt(
        subject=rec.subject,
        grant_id=grant_id,
        record_id=record_id,
        version=version,
        reader=reader,
        custodian=me,
        timestamp=convert(block.timestamp, uint64),
        request_id=request_id,
    )
    return ""


@external
def record_access(
    grant_id: uint256, record_id: bytes32, version: uint32, reader: bytes32, request_id: bytes32
):
    """
    @notice Log that the custodian center served version `version` of record
            `record_id` to member `reader` under grant `grant_id`, spending one
            read. `request_id` (non-zero, never used before) makes the receipt
            unique, so a resubmitted transaction cannot spend a second read.
    """
    me: bytes32 = empty(bytes32)
    role: uint8 = 0
    me, role = staticcall MEMBERS.account_info(msg.sender)
    refusal: String[64] = self._record_access(
        me, role, grant_id, record_id, version, reader, request_id
    )
    if len(refusal) > 0:
        raise refusal


@external
def record_access_many(items: DynArray[Access, MAX_ACCESS_ITEMS]):
    """
    @notice `record_access` for several reads in one transaction (a key request naming
            several records): one AccessReceipt per item, in order, all or nothing. An
            item that may not be recorded reverts the whole transaction with
            "item <i>: <reason>" (i from 0), and no read is spent. Each item needs its
            own request id; items are recorded in order, so two items on a grant with
            one read left revert together.
    """
    assert len(items) > 0, "no items"
    me: bytes32 = empty(bytes32)
    role: uint8 = 0
    me, role = staticcall MEMBERS.account_info(msg.sender)
    i: uint256 = 0
    for it: Access in items:
        refusal: String[64] = self._record_access(
            me, role, it.grant_id, it.record_id, it.version, it.reader, it.request_id
        )
        if len(refusal) > 0:
            raise concat("item ", uint2str(i), ": ", refusal)
        i += 1


@external
@view
def get_grant(grant_id: uint256) -> Grant:
    """
    @notice Grant `grant_id` (all zero if there is none).
    """
    g: StoredGrant = self.grants[grant_id]
    return Grant(
        owner=g.owner,
        grantee=g.grantee,
        subject=g.subject,
        types=(g.meta >> TYPES_AT) & 255,
        record_id=g.record_id,
        purpose=g.purpose,
        expiry=convert((g.meta >> EXPIRY_AT) & MASK64, uint64),
        max_reads=convert((g.meta >> MAX_READS_AT) & MASK32, uint32),
        reads=convert((g.meta >> READS_AT) & MASK32, uint32),
        revoked=(g.meta >> REVOKED_AT) & 1 == 1,
        created=convert((g.meta >> CREATED_AT) & MASK64, uint64),
    )
