# pragma version ~=0.4.3
"""
@title Members
@license Apache-2.0
@notice The consortium's member registry: who each member is (unified social
        credit code, role, name, encryption key, REST endpoint), which accounts
        act for it, and whether it is active. Records and Grants ask this
        contract who a caller is.
@dev Invariants:
     * Every member id is a valid 18-character unified social credit code
       (GB 32100-2015) in ASCII, right-padded with zero bytes.
     * A member's role is one of 1..5 and never changes.
     * An account belongs to at most one member, forever.
     * `role_of` / `member_role` / `account_info` report role 0 for unknown or
       inactive members, so callers only need to test the role.
     * Only an active ADMIN member's account may change the registry, and the
       registry always holds at least one member (an ADMIN, seeded at deploy).
"""

ROLE_CENTER: constant(uint8) = 1
ROLE_FINANCIAL: constant(uint8) = 2
ROLE_ENTERPRISE: constant(uint8) = 3
ROLE_AUDITOR: constant(uint8) = 4
ROLE_ADMIN: constant(uint8) = 5


struct Member:
    role: uint8
    name: String[64]
    enc_key: Bytes[64]
    endpoint: String[128]
    active: bool


struct Seed:
    id: bytes32
    role: uint8
    name: String[64]
    enc_key: Bytes[64]
    endpoint: String[128]
    account: address


event MemberAdded:
    id: indexed(bytes32)
    role: uint8
    name: String[64]


event AccountAdded:
    id: indexed(bytes32)
    account: indexed(address)


event MemberStatus:
    id: indexed(bytes32)
    active: bool


members: HashMap[bytes32, Member]

# The member each account acts for (zero if none); read it with `member_of`.
account_member: HashMap[address, bytes32]

# @notice Number of members ever added (inactive ones included).
member_count: public(uint256)


@deploy
def __init__(seeds: DynArray[Seed, 64]):
    """
    @notice Register the founding members. At least one must be an ADMIN.
    """
    has_admin: bool = False
    for s: Seed in seeds:
        self._add(s.id, s.role, s.name, s.enc_key, s.endpoint, s.account)
        if s.role == ROLE_ADMIN:
            has_admin = True
    assert has_admin, "genesis needs an admin"


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


@internal
@view
def _active_role(id: bytes32) -> uint8:
    if self.members[id].active:
        return self.members[id].role
    return 0


@internal
@view
def _is_admin(account: address) -> bool:
    return self._active_role(self.account_member[account]) == ROLE_ADMIN


@internal
def _add_account(id: bytes32, account: address):
    assert account != empty(address), "account must not be the zero address"
    assert self.account_member[account] == empty(bytes32), "account already registered"
    self.account_member[account] = id
    log AccountAdded(id=id, account=account)


@internal
def _add(
    id: bytes32,
    role: uint8,
    name: String[64],
    enc_key: Bytes[64],
    endpoint: String[128],
    account: address,
):
    assert self._valid_credit_code(id), "invalid credit code"
    assert role >= ROLE_CENTER and role <= ROLE_ADMIN, "unknown role"
    assert self.members[id].role == 0, "member already exists"
    assert len(enc_key) == 32 or len(enc_key) == 64, "encryption key must be 32 or 64 bytes"
    assert len(name) > 0, "member name must not be empty"
    self.members[id] = Member(
        role=role, name=name, enc_key=enc_key, endpoint=endpoint, active=True
    )
    self.member_count += 1
    log MemberAdded(id=id, role=role, name=name)
    self._add_account(id, account)


@external
def add_member(
    id: bytes32,
    role: uint8,
    name: String[64],
    enc_key: Bytes[64],
    endpoint: String[128],
    account: address,
):
    """
    @notice Register a new member with its first account (admin only).
    @param id Unified social credit code, ASCII, right-padded with zero bytes.
    @param role 1 center, 2 financial, 3 enterprise, 4 auditor, 5 admin.
    @param enc_key X25519 (32 bytes) or SM2 (64 bytes x||y) public key.
    @param endpoint The center's REST base URL (may be empty for non-centers).
    """
    assert self._is_admin(msg.sender), "only the consortium admin may add members"
    self._add(id, role, name, enc_key, endpoint, account)


@external
def add_account(id: bytes32, account: address):
    """
    @notice Let another account act for member `id` (admin only).
    """
    assert self._is_admin(msg.sender), "only the consortium admin may add accounts"
    assert self.members[id].role != 0, "no member with this id"
    self._add_account(id, account)


@external
def set_active(id: bytes32, active: bool):
    """
    @notice Suspend (`active` False) or reinstate a member (admin only). An admin
            cannot suspend its own member, so the registry keeps an admin.
    """
    assert self._is_admin(msg.sender), "only the consortium admin may change a member's status"
    assert self.members[id].role != 0, "no member with this id"
    assert active or id != self.account_member[msg.sender], (
        "the admin cannot suspend its own membership"
    )
    self.members[id].active = active
    log MemberStatus(id=id, active=active)


@external
@view
def valid_credit_code(code: bytes32) -> bool:
    """
    @notice True iff `code` is a well-formed unified social credit code: 18 ASCII
            characters from 0-9A-Y without I, O, S, V, zero padding after them,
            and a matching check character (GB 32100-2015).
    """
    return self._valid_credit_code(code)


@external
@view
def role_of(account: address) -> uint8:
    """
    @notice The role of the member `account` acts for; 0 if none or inactive.
    """
    return self._active_role(self.account_member[account])


@external
@view
def member_of(account: address) -> bytes32:
    """
    @notice The member `account` acts for (zero if none), active or not.
    """
    return self.account_member[account]


@external
@view
def account_info(account: address) -> (bytes32, uint8):
    """
    @notice The member `account` acts for and its role (0 if inactive); one call
            for contracts that need both.
    """
    id: bytes32 = self.account_member[account]
    return id, self._active_role(id)


@external
@view
def member_role(id: bytes32) -> uint8:
    """
    @notice The role of member `id`; 0 if there is no such member or it is inactive.
    """
    return self._active_role(id)


@external
@view
def is_active(id: bytes32) -> bool:
    """
    @notice True iff `id` is a registered, active member.
    """
    return self.members[id].active


@external
@view
def get_member(id: bytes32) -> Member:
    """
    @notice Everything registered about member `id` (role 0 if there is none).
    """
    return self.members[id]
