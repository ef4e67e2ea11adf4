"""Record types, who owns each by default, the enumerations record fields take, and the
errors that name them.

Invariants: a :class:`RecordType`'s integer is its on-chain type id and never changes;
``RecordType.parse`` accepts the member, its id, its label or its decimal id string and
raises :class:`RecordInvalid` (field ``"type"``) for anything else; every enumeration's
values are the strings the canonical JSON carries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final

from yilian.protocol.errors import YilianError

__all__ = [
    "DEFAULT_OWNER",
    "OWNER_CENTER",
    "OWNER_SUBJECT",
    "EntityStatus",
    "EntityType",
    "FieldError",
    "FindingCategory",
    "IdType",
    "QualificationStatus",
    "RecordInvalid",
    "RecordType",
    "RevocationStatus",
    "Role",
]

# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class FieldError:
    """One problem with one field.

    ``field`` is a dotted path into the record (``"credit_code"``, ``"contact.phone"``,
    ``"sections.1.estimate_amount"``), ``"type"``/``"schema"``/``"subject"`` for the
    record type, schema version and subject arguments, or ``""`` for a rule about the
    record as a whole (the message then names the fields involved).
    """

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field or '(record)'}: {self.message}"


class RecordInvalid(YilianError, ValueError):
    """A record does not conform to the data standard.

    ``errors`` lists every bad field (never empty); ``rtype`` is the record type the
    payload was checked against, or ``None`` if the type itself was not recognised.
    """

    def __init__(self, errors: Iterable[FieldError], rtype: RecordType | None = None) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        if not self.errors:
            raise ValueError("RecordInvalid needs at least one FieldError")
        self.rtype = rtype
        what = f"{rtype.label} record" if rtype is not None else "record"
        n = len(self.errors)
        head = f"invalid {what}: {n} problem{'s' if n != 1 else ''} to fix"
        super().__init__("\n  - ".join([head, *(str(e) for e in self.errors)]))

    @property
    def fields(self) -> tuple[str, ...]:
        """The dotted paths of the bad fields, in report order."""
        return tuple(e.field for e in self.errors)


# --------------------------------------------------------------------- record types


class RecordType(IntEnum):
    """Kinds of shared record; the integer is the on-chain type id, ``label`` its name."""

    BASIC = 1
    QUALIFICATION = 2
    PERFORMANCE = 3
    PERSONNEL = 4
    CREDIT = 5
    SUPERVISION = 6
    PROJECT = 7

    @property
    def label(self) -> str:
        """Lowercase name used in canonical JSON and APIs (``"basic"`` ...)."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: RecordType | int | str) -> RecordType:
        """A record type from its enum member, integer id, label or decimal id string.

        Raises :class:`RecordInvalid` (field ``"type"``) listing the valid types.
        """
        if isinstance(value, cls):
            return value
        known = cls._value2member_map_
        if isinstance(value, int) and not isinstance(value, bool) and value in known:
            return cls(value)
        if isinstance(value, str):
            for member in cls:
                if value == member.label or value == str(member.value):
                    return member
        valid = ", ".join(f"{m.value}={m.label}" for m in cls)
        raise RecordInvalid(
            [FieldError("type", f"unknown record type {value!r}; use one of {valid}")]
        )


OWNER_SUBJECT: Final = "subject"
"""Owner marker: the market entity the record is about controls it (and its privacy)."""

OWNER_CENTER: Final = "center"
"""Owner marker: the trading center that provided the record controls it."""

DEFAULT_OWNER: Final[dict[RecordType, str]] = {
    RecordType.BASIC: OWNER_SUBJECT,
    RecordType.QUALIFICATION: OWNER_SUBJECT,
    RecordType.PERFORMANCE: OWNER_SUBJECT,
    RecordType.PERSONNEL: OWNER_SUBJECT,
    RecordType.CREDIT: OWNER_CENTER,
    RecordType.SUPERVISION: OWNER_CENTER,
    RecordType.PROJECT: OWNER_CENTER,
}
"""Who controls (grants access to) a record of each type by default.

Data the entity itself declares to a center - registration details and bank account,
qualification certificates, performance (业绩), and its staff's personal data - belongs
to the entity (``"subject"``): it is the entity's (and its employees') private data and
the entity decides which other centers may read it.  Data a center produces in its own
public function - blacklists and credit scores, supervision penalties and findings, and
the projects it runs - belongs to the providing ``"center"``: the subject must not be
able to hide adverse records about itself.
"""


# ----------------------------------------------------------------------------- enums


class Role(StrEnum):
    """Role of a market entity in trading (交易角色)."""

    TENDERER = "tenderer"  # 招标人
    BIDDER = "bidder"  # 投标人
    AGENCY = "agency"  # 招标代理机构
    PURCHASER = "purchaser"  # 采购人
    SUPPLIER = "supplier"  # 供应商
    TRANSFEROR = "transferor"  # 出让方/转让方
    TRANSFEREE = "transferee"  # 受让方/竞买人
    OTHER = "other"


class EntityType(StrEnum):
    """Kind of organisation (主体类型)."""

    ENTERPRISE = "enterprise"  # 企业
    PUBLIC_INSTITUTION = "public_institution"  # 事业单位
    GOVERNMENT_AGENCY = "government_agency"  # 机关
    SOCIAL_ORGANISATION = "social_organisation"  # 社会团体
    PRIVATE_NON_ENTERPRISE = "private_non_enterprise"  # 民办非企业单位
    INDIVIDUAL_BUSINESS = "individual_business"  # 个体工商户
    FARMERS_COOPERATIVE = "farmers_cooperative"  # 农民专业合作社
    OTHER = "other"


class EntityStatus(StrEnum):
    """Registration status (登记状态)."""

    ACTIVE = "active"  # 存续/在业
    SUSPENDED = "suspended"  # 停业
    MOVED_OUT = "moved_out"  # 迁出
    CANCELLED = "cancelled"  # 注销
    REVOKED = "revoked"  # 吊销


class QualificationStatus(StrEnum):
    """Status of a qualification certificate (资质状态)."""

    VALID = "valid"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    REVOKED = "revoked"
    CANCELLED = "cancelled"


class IdType(StrEnum):
    """Type of personal identity document (证件类型)."""

    RESIDENT_ID_CARD = "resident_id_card"  # 居民身份证
    PASSPORT = "passport"  # 护照
    HK_MACAO_PERMIT = "hk_macao_permit"  # 港澳居民来往内地通行证
    TAIWAN_PERMIT = "taiwan_permit"  # 台湾居民来往大陆通行证
    FOREIGN_PERMANENT_RESIDENT_ID = "foreign_permanent_resident_id"  # 外国人永久居留身份证
    OTHER = "other"


class RevocationStatus(StrEnum):
    """Whether a blacklist entry is still in force (撤销状态)."""

    IN_FORCE = "in_force"
    REVOKED = "revoked"
    EXPIRED = "expired"


class FindingCategory(StrEnum):
    """Kind of supervision outcome (监管类别)."""

    PENALTY = "penalty"  # 行政处罚
    FINDING = "finding"  # 监督检查发现
    WARNING = "warning"  # 警示/约谈
    RECTIFICATION = "rectification"  # 责令整改
    OTHER = "other"
