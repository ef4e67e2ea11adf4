"""The yilian data standard: what a shared market-entity record may contain.

Field families follow the national 公共资源交易平台系统数据规范 V2.0 (public-resource
trading platform data specification); field names are snake_case English.  There is one
pydantic model per :class:`RecordType`; :func:`validate_record` checks a payload against
it and returns the normalised JSON-able dict, and :func:`canonical_bytes` /
:func:`parse_canonical` give the one byte encoding that is hashed, signed and stored
on chain.

Value conventions
-----------------
* Dates are ISO ``YYYY-MM-DD`` strings (``datetime.date`` objects are accepted from
  Python callers; datetimes and other date spellings are not).
* Amounts and scores are decimal strings without sign or exponent, at most 18 integer
  digits and 6 decimals (``"1250000.00"``); JSON numbers are rejected because floats
  lose precision.  The given precision is kept: ``"100"`` and ``"100.00"`` are both
  valid and encode differently.
* Text is NFC-normalised Unicode without control characters, bidi overrides or
  leading/trailing whitespace (rejected, never silently changed).  Single-line fields
  (:data:`Name`) are at most 200 characters; free text (:data:`Text`) may contain
  ``\\n`` and ``\\t`` and is at most 2000 characters.
* Credit codes are validated with :mod:`yilian.contracts.credit_code`; region codes are
  6-digit GB/T 2260 codes whose first two digits are a province-level code (or the
  national code ``100000``); currencies are 3 uppercase letters (ISO 4217, default CNY).
* Optional fields are always present in the normalised output (``null`` when absent)
  and lists default to empty, so every record has exactly one canonical encoding.

Invariants
----------
* ``validate_record(t, validate_record(t, p)) == validate_record(t, p)`` (idempotent).
* ``parse_canonical(canonical_bytes(t, p)) == (RecordType(t), SCHEMA_VERSION,
  validate_record(t, p))`` and ``parse_canonical`` accepts *only* such byte strings.
* Every rejection is a :class:`RecordInvalid` listing every bad field (dotted paths,
  e.g. ``"contact.phone"`` or ``"blacklist.0.subject_credit_code"``), or, from
  ``parse_canonical`` only, a :class:`CanonicalError` for bytes that are not a
  canonical encoding.  Nothing else escapes for any input.
* Error messages never echo personal ID numbers.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from yilian.contracts import credit_code as _cc
from yilian.contracts.errors import YilianError

__all__ = [
    "DEFAULT_OWNER",
    "MAX_CANONICAL_BYTES",
    "OWNER_CENTER",
    "OWNER_SUBJECT",
    "SCHEMA_VERSION",
    "BankAccount",
    "BasicRecord",
    "BlacklistEntry",
    "BlacklistWithdrawal",
    "CanonicalError",
    "Contact",
    "CreditRecord",
    "CreditScore",
    "EntityStatus",
    "EntityType",
    "FieldError",
    "FindingCategory",
    "IdType",
    "Party",
    "PerformanceRecord",
    "PersonnelRecord",
    "PracticeCertificate",
    "ProjectRecord",
    "QualificationRecord",
    "QualificationStatus",
    "RecordInvalid",
    "RecordModel",
    "RecordType",
    "RevocationStatus",
    "Role",
    "Section",
    "SupervisionFinding",
    "SupervisionRecord",
    "canonical_bytes",
    "example_record",
    "json_schema",
    "model_for",
    "parse_canonical",
    "resident_id_check_character",
    "validate_record",
]

SCHEMA_VERSION: Final = 1
"""Version of the field layout below; part of every canonical encoding."""

MAX_CANONICAL_BYTES: Final = 1 << 20
"""``parse_canonical`` refuses larger inputs (1 MiB) before parsing them."""

_MAX_ITEMS: Final = 1000
_NAME_MAX: Final = 200
_TEXT_MAX: Final = 2000


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


class CanonicalError(YilianError, ValueError):
    """Bytes given to :func:`parse_canonical` are not a canonical record encoding."""


def _rule(field: str, message: str) -> PydanticCustomError:
    """An error about ``field`` (relative to the model raising it) from a model rule."""
    return PydanticCustomError("record_rule", "{message}", {"message": message, "field": field})


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


# ------------------------------------------------------------------------ value types


def _json_type(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float | Decimal):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "object"
    if isinstance(v, list | tuple):
        return "array"
    return type(v).__name__


def _require_str(v: object, what: str = "a string") -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be {what}, got {_json_type(v)}")
    return v


_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _check_text(v: str, max_len: int, multiline: bool) -> str:
    if not v or v.isspace():
        raise ValueError("must not be empty")
    if len(v) > max_len:
        raise ValueError(f"is {len(v)} characters long; at most {max_len} are allowed")
    if v != v.strip():
        raise ValueError("has leading or trailing whitespace; remove it")
    for i, ch in enumerate(v, start=1):
        if multiline and ch in "\n\t":
            continue
        cat = unicodedata.category(ch)
        if cat == "Cs":
            raise ValueError(f"character {i} is an unpaired surrogate; send valid Unicode text")
        if cat == "Cc" or ch in _BIDI_CONTROLS or (not multiline and cat in ("Zl", "Zp")):
            hint = "use \\n for line breaks" if multiline else "this field is a single line"
            raise ValueError(f"character {i} is control character U+{ord(ch):04X}; remove it "
                             f"({hint})")
    if not unicodedata.is_normalized("NFC", v):
        raise ValueError("is not in Unicode NFC form; normalise it first "
                         "(unicodedata.normalize('NFC', text))")
    return v


def _name(v: object) -> str:
    return _check_text(_require_str(v), _NAME_MAX, multiline=False)


def _text(v: object) -> str:
    return _check_text(_require_str(v), _TEXT_MAX, multiline=True)


_IDENTIFIER_RE: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z._/\-]{0,63}")


def _identifier(v: object) -> str:
    s = _require_str(v)
    if not _IDENTIFIER_RE.fullmatch(s):
        raise ValueError("must be 1-64 ASCII letters, digits, '.', '_', '/' or '-', starting "
                         "with a letter or digit")
    return s


def _credit_code(v: object) -> str:
    s = _require_str(v, "an 18-character unified social credit code")
    try:
        return _cc.validate(s)
    except _cc.CreditCodeError as exc:
        raise ValueError(exc.reason) from None


_DECIMAL_RE: Final = re.compile(r"(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,6})?")


def _decimal(v: object) -> str:
    if isinstance(v, int | float | Decimal) and not isinstance(v, bool):
        raise ValueError(f'must be a decimal string such as "{v}", not a JSON number '
                         "(numbers lose precision)")
    s = _require_str(v, 'a decimal string such as "1250000.00"')
    if not _DECIMAL_RE.fullmatch(s):
        raise ValueError('must be a plain decimal string such as "1250000.00": digits, an '
                         "optional '.' and 1-6 decimals; no sign, exponent, separators or "
                         "leading zeros")
    return s


def _positive_decimal(v: object) -> str:
    s = _decimal(v)
    if Decimal(s) == 0:
        raise ValueError("must be greater than zero")
    return s


_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")


def _currency(v: object) -> str:
    s = _require_str(v)
    if not _CURRENCY_RE.fullmatch(s):
        raise ValueError("must be an ISO 4217 currency code of 3 uppercase letters, e.g. CNY")
    return s


# GB/T 2260 province-level prefixes, plus 100000 (national) as used in credit codes.
_PROVINCES: Final = frozenset(
    str(n) for n in (*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47),
                     *range(50, 55), *range(61, 66), 71, 81, 82)
)
_REGION_RE: Final = re.compile(r"[0-9]{6}")


def _region_code(v: object) -> str:
    s = _require_str(v, "a 6-digit GB/T 2260 region code")
    if not _REGION_RE.fullmatch(s):
        raise ValueError("must be a 6-digit GB/T 2260 administrative region code, e.g. 440300")
    if s != "100000" and s[:2] not in _PROVINCES:
        raise ValueError(f"starts with {s[:2]!r}, which is not a GB/T 2260 province-level code "
                         "(11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82)")
    return s


_PHONE_RE: Final = re.compile(
    r"1[3-9][0-9]{9}"  # mobile
    r"|0[1-9][0-9]{1,2}-?[1-9][0-9]{6,7}(?:-[0-9]{1,6})?"  # landline with area code
    r"|[48]00-?[0-9]{3}-?[0-9]{4}"  # 400/800 service numbers
)


def _phone(v: object) -> str:
    s = _require_str(v)
    if not _PHONE_RE.fullmatch(s):
        raise ValueError("must be a mainland mobile number (11 digits, e.g. 13800138000), a "
                         "landline with area code (e.g. 0755-83212345, optional -extension) "
                         "or a 400/800 number; no spaces or +86 prefix")
    return s


_ACCOUNT_RE: Final = re.compile(r"[0-9]{8,32}")


def _account_number(v: object) -> str:
    s = _require_str(v)
    if not _ACCOUNT_RE.fullmatch(s):
        raise ValueError("must be the bank account number as 8-32 digits, without spaces")
    return s


_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(v: object) -> date:
    if isinstance(v, datetime):
        raise ValueError("must be a date (YYYY-MM-DD), not a date-time")
    if isinstance(v, date):
        return v
    s = _require_str(v, "an ISO date string YYYY-MM-DD")
    if not _DATE_RE.fullmatch(s):
        raise ValueError("must be an ISO date string YYYY-MM-DD, e.g. 2024-03-01")
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise ValueError(f"{s} is not a calendar date") from None


def _array(v: object) -> object:
    if isinstance(v, list | tuple):
        if len(v) > _MAX_ITEMS:
            raise ValueError(f"has {len(v)} items; at most {_MAX_ITEMS} are allowed per record")
        return v
    raise ValueError(f"must be an array, got {_json_type(v)}")


Name = Annotated[
    str,
    PlainValidator(_name),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": _NAME_MAX}),
]
"""Single-line text (names, numbers of documents, authorities)."""

Text = Annotated[
    str,
    PlainValidator(_text),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": _TEXT_MAX}),
]
"""Free text; may span lines."""

Identifier = Annotated[
    str,
    PlainValidator(_identifier),
    WithJsonSchema({"type": "string", "pattern": "^" + _IDENTIFIER_RE.pattern + "$"}),
]
CreditCode = Annotated[
    str,
    PlainValidator(_credit_code),
    WithJsonSchema({"type": "string", "pattern": f"^[{_cc.ALPHABET}]{{18}}$",
                    "description": "unified social credit code (GB 32100-2015)"}),
]
DecimalString = Annotated[
    str,
    PlainValidator(_decimal),
    WithJsonSchema({"type": "string", "pattern": "^" + _DECIMAL_RE.pattern + "$"}),
]
PositiveDecimal = Annotated[
    str,
    PlainValidator(_positive_decimal),
    WithJsonSchema({"type": "string", "pattern": "^" + _DECIMAL_RE.pattern + "$",
                    "description": "greater than zero"}),
]
Currency = Annotated[
    str,
    PlainValidator(_currency),
    WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$", "default": "CNY"}),
]
RegionCode = Annotated[
    str,
    PlainValidator(_region_code),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{6}$",
                    "description": "GB/T 2260 administrative region code"}),
]
Phone = Annotated[
    str,
    PlainValidator(_phone),
    WithJsonSchema({"type": "string", "pattern": "^(?:" + _PHONE_RE.pattern + ")$"}),
]
AccountNumber = Annotated[
    str,
    PlainValidator(_account_number),
    WithJsonSchema({"type": "string", "pattern": "^" + _ACCOUNT_RE.pattern + "$"}),
]
Date = Annotated[date, BeforeValidator(_date)]
"""ISO ``YYYY-MM-DD`` date (``_date`` does the strict parsing; pydantic serialises it)."""

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


# ------------------------------------------------------------------ resident ID card

_ID_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))
_ID_BODY_RE: Final = re.compile(r"[0-9]{17}")
_OTHER_ID_RE: Final = re.compile(r"[0-9A-Z][0-9A-Z\-]{3,31}")


def resident_id_check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of an 18-digit resident ID (``0``-``9`` or ``X``).

    Raises ``ValueError`` unless ``first17`` is exactly 17 digits.
    """
    if not isinstance(first17, str) or not _ID_BODY_RE.fullmatch(first17):
        raise ValueError("the first 17 characters of a resident ID number must be digits")
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return "0123456789X"[(12 - total % 11) % 11]


def _check_resident_id(s: str) -> None:
    if len(s) != 18:
        raise ValueError(f"a resident ID number has 18 characters, got {len(s)}")
    if not _ID_BODY_RE.fullmatch(s[:17]):
        raise ValueError("the first 17 characters of a resident ID number must be digits")
    if s[17] == "x":
        raise ValueError("write the check character as uppercase 'X'")
    try:
        date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise ValueError("characters 7-14 of a resident ID number must be a valid birth "
                         "date YYYYMMDD") from None
    if s[17] != resident_id_check_character(s[:17]):
        raise ValueError("the check character (ISO 7064 MOD 11-2) does not match; one of the "
                         "18 characters is mistyped")


# ---------------------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=False, use_attribute_docstrings=True
    )


class RecordModel(_Model):
    """Base of the per-type record models (see :func:`model_for`)."""


def _unique(items: tuple[Any, ...], attr: str) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        key = getattr(item, attr)
        if key in seen:
            raise _rule(f"{i}.{attr}", f"duplicate {attr} {key!r} (also item {seen[key]})")
        seen[key] = i


def _not_before(v: date | None, info: ValidationInfo, earlier: str) -> date | None:
    start = info.data.get(earlier)
    if v is not None and isinstance(start, date) and v < start:
        raise ValueError(f"{v.isoformat()} is before {earlier} {start.isoformat()}")
    return v


def _nonempty(what: str) -> BeforeValidator:
    def check(v: object) -> object:
        v = _array(v)
        if isinstance(v, list | tuple) and not v:
            raise ValueError(f"must list at least one {what}")
        return v

    return BeforeValidator(check)


_ARRAY: Final = BeforeValidator(_array)


class Party(_Model):
    """A counterparty named by legal name and credit code."""

    name: Name
    """Legal name (名称)."""
    credit_code: CreditCode
    """Unified social credit code (统一社会信用代码)."""


class BankAccount(_Model):
    """Basic deposit account (基本存款账户)."""

    bank_name: Name
    """Bank and branch (开户银行)."""
    account_number: AccountNumber
    """Account number, digits only (账号)."""


class Contact(_Model):
    """Contact person (联系人)."""

    name: Name
    phone: Phone


class BasicRecord(RecordModel):
    """Basic information of a market entity (市场主体基本信息)."""

    legal_name: Name
    """Registered name (主体名称)."""
    credit_code: CreditCode
    """Unified social credit code (统一社会信用代码); must equal the record's subject."""
    role: Role
    """Trading role (交易角色)."""
    legal_representative: Name
    """Legal representative (法定代表人)."""
    entity_type: EntityType
    """Kind of organisation (主体类型)."""
    industry: Name
    """Industry (所属行业)."""
    region_code: RegionCode
    """Administrative region of registration (注册地行政区划代码)."""
    registered_capital: DecimalString
    """Registered capital, >= 0 (注册资本)."""
    currency: Currency = "CNY"
    """Currency of the registered capital (币种)."""
    basic_account: BankAccount
    """Basic deposit account (基本账户)."""
    contact: Contact
    """Contact person (联系人)."""
    status: EntityStatus
    """Registration status (登记状态)."""


class QualificationRecord(RecordModel):
    """A qualification certificate held by the entity (资质信息)."""

    certificate_number: Name
    """Certificate number (证书编号)."""
    issuing_authority: Name
    """Issuing authority (发证机关)."""
    issue_date: Date
    """Date of issue (发证日期)."""
    valid_from: Date
    """Start of validity (有效期起)."""
    valid_to: Date
    """End of validity, not before valid_from (有效期止)."""
    category: Name
    """Qualification category (资质类别)."""
    sequence: Name
    """Qualification sequence (资质序列)."""
    level: Name
    """Grade (资质等级)."""
    status: QualificationStatus
    """Certificate status (资质状态)."""

    @field_validator("valid_to")
    @classmethod
    def _valid_to_after_from(cls, v: date, info: ValidationInfo) -> date | None:
        return _not_before(v, info, "valid_from")


class PracticeCertificate(_Model):
    """A personal practice certificate (执业资格证书), e.g. 一级建造师."""

    number: Name
    """Certificate / registration number (证书编号)."""
    specialty: Name
    """Specialty (专业)."""
    valid_to: Date
    """End of validity (有效期止)."""


class PersonnelRecord(RecordModel):
    """A person working for the entity (人员信息); contains personal data."""

    id_type: IdType
    """Identity document type (证件类型)."""
    id_number: Annotated[
        str,
        PlainValidator(lambda v: _require_str(v)),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 32}),
    ]
    """Identity document number (证件号码).

    Resident ID card: 18 characters, birth date and ISO 7064 MOD 11-2 check verified,
    uppercase ``X``.  Type ``other``: any single-line text up to 32 characters.  Other
    types: 4-32 digits, uppercase letters and ``-``.
    """
    name: Name
    """Full name (姓名)."""
    unit_credit_code: CreditCode
    """Credit code of the employing entity (所在单位统一社会信用代码)."""
    title: Name | None = None
    """Professional title (职称), if any."""
    practice_certificates: Annotated[tuple[PracticeCertificate, ...], _ARRAY] = ()
    """Practice certificates (执业资格)."""

    @field_validator("id_number")
    @classmethod
    def _id_number_matches_type(cls, v: str, info: ValidationInfo) -> str:
        id_type = info.data.get("id_type")
        if id_type is None:  # id_type itself is invalid and reported; nothing to check against
            return v
        if id_type == IdType.RESIDENT_ID_CARD:
            _check_resident_id(v)
        elif id_type == IdType.OTHER:
            _check_text(v, 32, multiline=False)
        elif not _OTHER_ID_RE.fullmatch(v):
            raise ValueError("must be 4-32 characters of digits, uppercase letters and '-' "
                             "(use id_type \"other\" for documents numbered otherwise)")
        return v


class PerformanceRecord(RecordModel):
    """A completed or signed contract won by the entity (业绩信息)."""

    project_name: Name
    """Project name (项目名称)."""
    tenderer: Party
    """Tenderer / purchaser (招标人)."""
    winning_bidder: Party
    """Winning bidder (中标人)."""
    contract_amount: PositiveDecimal
    """Contract amount, > 0 (合同金额)."""
    currency: Currency = "CNY"
    """Currency of the contract amount (币种)."""
    signing_date: Date
    """Contract signing date (合同签订日期)."""
    completion_date: Date | None = None
    """Completion date, not before signing (竣工/完成日期)."""
    evaluation: Text | None = None
    """Performance evaluation (履约评价)."""

    @field_validator("completion_date")
    @classmethod
    def _completed_after_signing(cls, v: date | None, info: ValidationInfo) -> date | None:
        return _not_before(v, info, "signing_date")


class BlacklistEntry(_Model):
    """An entry on a dishonesty blacklist (失信黑名单)."""

    entry_code: Identifier
    """Identifier of the entry at the listing center (名单编号)."""
    subject_name: Name
    """Name of the listed entity (失信主体名称)."""
    subject_credit_code: CreditCode
    """Credit code of the listed entity (统一社会信用代码)."""
    subject_type: EntityType
    """Kind of the listed entity (主体类型)."""
    subject_role: Role
    """Trading role in which the entity misbehaved (交易角色)."""
    reason: Text
    """Facts of the dishonest conduct (失信行为)."""
    decision_date: Date
    """Date of the listing decision (认定日期)."""
    deciding_authority: Name
    """Deciding authority (认定部门)."""
    document_number: Name
    """Number of the decision document (决定文书号)."""
    confined_actions: Annotated[tuple[Name, ...], _nonempty("confined action")]
    """Actions the entity is barred from (惩戒措施)."""
    scope: Name
    """Where the restrictions apply (惩戒范围)."""
    revocation_status: RevocationStatus
    """Whether the entry is still in force (撤销状态)."""


class BlacklistWithdrawal(_Model):
    """Removal of an earlier blacklist entry (移出名单)."""

    entry_code: Identifier
    """The withdrawn entry (名单编号)."""
    withdrawal_date: Date
    """Date of removal (移出日期)."""
    reason: Text
    """Grounds for removal (移出原因)."""


class CreditScore(_Model):
    """A credit evaluation score (信用评分)."""

    scorer: Name
    """Scoring body (评价机构)."""
    score: DecimalString
    """Score, a non-negative decimal string (分值)."""
    as_of: Date
    """Date the score refers to (评价日期)."""
    scale: Name
    """Scoring scale, e.g. "0-100" (评分标准)."""


class CreditRecord(RecordModel):
    """Credit information produced by a center (信用信息): at least one list is non-empty."""

    blacklist: Annotated[tuple[BlacklistEntry, ...], _ARRAY] = ()
    withdrawals: Annotated[tuple[BlacklistWithdrawal, ...], _ARRAY] = ()
    scores: Annotated[tuple[CreditScore, ...], _ARRAY] = ()

    @field_validator("blacklist", "withdrawals")
    @classmethod
    def _unique_entries(cls, v: tuple[Any, ...]) -> tuple[Any, ...]:
        _unique(v, "entry_code")
        return v

    @model_validator(mode="after")
    def _something(self) -> CreditRecord:
        if not (self.blacklist or self.withdrawals or self.scores):
            raise _rule("", "a credit record must contain at least one blacklist entry, "
                            "withdrawal or score")
        return self


class SupervisionFinding(_Model):
    """A penalty or supervision finding (行政处罚/监管信息)."""

    authority: Name
    """Deciding authority (决定机关)."""
    decision_number: Name
    """Decision document number (决定书文号)."""
    decision_date: Date
    """Decision date (决定日期)."""
    category: FindingCategory
    """Kind of outcome (类别)."""
    description: Text
    """Facts and outcome (内容)."""
    amount: DecimalString | None = None
    """Fine or confiscated amount, if any (罚没金额)."""
    currency: Currency = "CNY"
    """Currency of the amount (币种)."""


class SupervisionRecord(RecordModel):
    """Supervision outcomes about the entity, produced by a center (监管信息)."""

    findings: Annotated[tuple[SupervisionFinding, ...], _nonempty("penalty or finding")]
    """Penalties and findings."""


class Section(_Model):
    """A bid section of a project (标段)."""

    section_code: Identifier
    """Section code (标段编号), unique within the project."""
    section_name: Name
    """Section name (标段名称)."""
    estimate_amount: PositiveDecimal
    """Estimated amount, > 0 (估算金额)."""


class ProjectRecord(RecordModel):
    """A trading project run by a center (项目信息)."""

    project_code: Identifier
    """Project code (项目编号)."""
    project_name: Name
    """Project name (项目名称)."""
    sections: Annotated[tuple[Section, ...], _nonempty("section")]
    """Bid sections (标段), unique section codes."""
    tenderer: Party
    """Tenderer (招标人)."""
    region_code: RegionCode
    """Project location (项目所在地行政区划代码)."""
    estimate_total: PositiveDecimal
    """Total estimated amount, > 0 (项目估算总额)."""
    currency: Currency = "CNY"
    """Currency of the amounts (币种)."""

    @field_validator("sections")
    @classmethod
    def _unique_sections(cls, v: tuple[Section, ...]) -> tuple[Section, ...]:
        _unique(v, "section_code")
        return v


_MODELS: Final[dict[RecordType, type[RecordModel]]] = {
    RecordType.BASIC: BasicRecord,
    RecordType.QUALIFICATION: QualificationRecord,
    RecordType.PERFORMANCE: PerformanceRecord,
    RecordType.PERSONNEL: PersonnelRecord,
    RecordType.CREDIT: CreditRecord,
    RecordType.SUPERVISION: SupervisionRecord,
    RecordType.PROJECT: ProjectRecord,
}


def model_for(rtype: RecordType | int | str) -> type[RecordModel]:
    """The pydantic model of a record type (``RecordInvalid`` on field "type" if unknown)."""
    return _MODELS[RecordType.parse(rtype)]


def json_schema(rtype: RecordType | int | str) -> dict[str, Any]:
    """JSON Schema (draft 2020-12, as produced by pydantic) of a record type's payload."""
    rt = RecordType.parse(rtype)
    schema = _MODELS[rt].model_json_schema()
    schema["x-yilian-record-type"] = rt.label
    schema["x-yilian-schema-version"] = SCHEMA_VERSION
    return schema


# ------------------------------------------------------------------------ validation


def _message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field; remove it (json_schema() lists the allowed fields)"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind == "record_rule":
        return str(ctx["message"])
    return str(err["msg"])


def _field_errors(exc: ValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        path = [str(part) for part in err["loc"]]
        if err["type"] == "record_rule":
            path += [p for p in str((err.get("ctx") or {}).get("field", "")).split(".") if p]
        out.append(FieldError(".".join(path), _message(err)))
    return out


def validate_record(
    rtype: RecordType | int | str,
    payload: Mapping[str, Any],
    *,
    subject: str | None = None,
) -> dict[str, Any]:
    """Validate ``payload`` as a record of type ``rtype``; return its normalised JSON form.

    The result is ``model.model_dump(mode="json")``: dates and amounts as strings, enums
    as their values, optional fields present (``None`` when absent).  If ``subject`` (a
    credit code) is given it must be valid, and a basic record's ``credit_code`` must
    equal it.  Raises :class:`RecordInvalid` naming every bad field.
    """
    rt = RecordType.parse(rtype)
    errors: list[FieldError] = []
    if subject is not None:
        try:
            _credit_code(subject)
        except ValueError as exc:
            errors.append(FieldError("subject", f"not a valid subject credit code: {exc}"))
    if not isinstance(payload, Mapping):
        errors.append(FieldError("", f"record data must be a JSON object, got "
                                     f"{_json_type(payload)}"))
        raise RecordInvalid(errors, rt)
    model: RecordModel | None = None
    try:
        model = _MODELS[rt].model_validate(dict(payload))
    except ValidationError as exc:
        errors.extend(_field_errors(exc))
    if rt is RecordType.BASIC and subject is not None and _cc.is_valid(subject):
        code = payload.get("credit_code")
        if _cc.is_valid(code) and code != subject:
            errors.append(FieldError(
                "credit_code",
                f"basic record is about {code} but its subject is {subject}; a basic record "
                "must carry its own subject's credit code",
            ))
    if errors or model is None:
        raise RecordInvalid(errors, rt)
    return model.model_dump(mode="json")


# ------------------------------------------------------------------------- canonical


def _encode(obj: object) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_bytes(
    rtype: RecordType | int | str,
    payload: Mapping[str, Any],
    *,
    subject: str | None = None,
) -> bytes:
    """The canonical encoding of a record: validate, then encode
    ``{"type": label, "schema": SCHEMA_VERSION, "data": normalised}`` as UTF-8 JSON with
    sorted keys, no whitespace and no ``\\u`` escapes for non-ASCII text.

    Raises :class:`RecordInvalid` exactly when :func:`validate_record` would.
    """
    rt = RecordType.parse(rtype)
    data = validate_record(rt, payload, subject=subject)
    return _encode({"type": rt.label, "schema": SCHEMA_VERSION, "data": data})


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise CanonicalError(f"duplicate JSON key {key!r}")
        obj[key] = value
    return obj


def _no_constants(name: str) -> object:
    raise CanonicalError(f"{name} is not valid JSON")


_MAX_DEPTH: Final = 16
_JSON_STRING_RE: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE: Final = re.compile(rb"[\[\]{}]")


def _check_depth(raw: bytes) -> None:
    """Refuse JSON nested deeper than any canonical record before ``json.loads`` sees it.

    The C JSON decoder recurses per nesting level, and node processes run with a raised
    recursion limit (py-evm / py_ecc set it to 100000), so deeply nested input would
    overflow the C stack and kill the process instead of raising ``RecursionError``.
    """
    depth = 0
    for m in _BRACKET_RE.finditer(_JSON_STRING_RE.sub(b"", raw)):
        depth += 1 if m.group() in (b"[", b"{") else -1
        if depth > _MAX_DEPTH:
            raise CanonicalError(f"record JSON is nested more than {_MAX_DEPTH} levels deep; "
                                 "no canonical record is")


def parse_canonical(
    data: bytes | bytearray | memoryview,
) -> tuple[RecordType, int, dict[str, Any]]:
    """Strict inverse of :func:`canonical_bytes`: ``(type, schema version, record data)``.

    Raises :class:`CanonicalError` if ``data`` is not UTF-8 JSON of the form
    ``{"type", "schema", "data"}`` or is not byte-for-byte canonical, and
    :class:`RecordInvalid` (fields ``"type"``, ``"schema"`` or the record's own fields)
    if its content does not conform to this schema version.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CanonicalError(f"expected bytes, got {type(data).__name__}")
    raw = bytes(data)
    if len(raw) > MAX_CANONICAL_BYTES:
        raise CanonicalError(f"record is {len(raw)} bytes; at most {MAX_CANONICAL_BYTES} allowed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CanonicalError(f"record is not valid UTF-8 (byte {exc.start})") from None
    _check_depth(raw)
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except CanonicalError:
        raise
    except (ValueError, RecursionError) as exc:
        raise CanonicalError(f"record is not valid JSON: {exc}") from None
    if not isinstance(obj, dict) or set(obj) != {"type", "schema", "data"}:
        raise CanonicalError('a canonical record is a JSON object with exactly the keys "data", '
                             '"schema" and "type"')
    label, schema, body = obj["type"], obj["schema"], obj["data"]
    if not isinstance(label, str) or label not in {m.label for m in RecordType}:
        names = ", ".join(m.label for m in RecordType)
        raise RecordInvalid([FieldError("type", f"unknown record type {label!r}; expected one "
                                                f"of {names}")])
    rt = RecordType.parse(label)
    if type(schema) is not int or schema != SCHEMA_VERSION:
        raise RecordInvalid([FieldError("schema", f"schema version {schema!r} is not supported "
                                                  f"(this node reads version {SCHEMA_VERSION}); "
                                                  "upgrade the node or re-encode the record")], rt)
    if not isinstance(body, dict):
        raise RecordInvalid([FieldError("", f"record data must be a JSON object, got "
                                            f"{_json_type(body)}")], rt)
    normalised = validate_record(rt, body)
    if _encode({"type": rt.label, "schema": SCHEMA_VERSION, "data": normalised}) != raw:
        raise CanonicalError("record is valid but not canonically encoded (sorted keys, no "
                             "whitespace, raw UTF-8, every optional field present); re-encode "
                             "it with canonical_bytes()")
    return rt, schema, normalised


# -------------------------------------------------------------------------- examples

_EXAMPLE_TENDERER_CODE: Final = _cc.make_code("12440300455755838")
_EXAMPLE_ALT_CODE: Final = _cc.make_code("91440300MA5G0Q4R2")


def example_record(rtype: RecordType | int | str, subject: str) -> dict[str, Any]:
    """A realistic valid record of ``rtype`` about ``subject`` (normalised JSON form).

    The subject appears where the type has a natural place for it: basic
    ``credit_code``, personnel ``unit_credit_code``, performance ``winning_bidder``,
    credit ``blacklist[0].subject_credit_code`` and project ``tenderer``.  Each call
    returns a new dict.  Raises :class:`RecordInvalid` (field "subject") if ``subject``
    is not a valid credit code.
    """
    rt = RecordType.parse(rtype)
    try:
        _credit_code(subject)
    except ValueError as exc:
        raise RecordInvalid([FieldError("subject", f"not a valid subject credit code: {exc}")],
                            rt) from None
    other = _EXAMPLE_TENDERER_CODE if subject != _EXAMPLE_TENDERER_CODE else _EXAMPLE_ALT_CODE
    entity = "深圳市前海建设工程有限公司"
    payloads: dict[RecordType, dict[str, Any]] = {
        RecordType.BASIC: {
            "legal_name": entity,
            "credit_code": subject,
            "role": "bidder",
            "legal_representative": "张伟",
            "entity_type": "enterprise",
            "industry": "建筑业",
            "region_code": "440300",
            "registered_capital": "50000000.00",
            "currency": "CNY",
            "basic_account": {"bank_name": "中国建设银行股份有限公司深圳分行",
                              "account_number": "44250100000123456789"},
            "contact": {"name": "李娜", "phone": "0755-83212345"},
            "status": "active",
        },
        RecordType.QUALIFICATION: {
            "certificate_number": "D244012345",
            "issuing_authority": "广东省住房和城乡建设厅",
            "issue_date": "2021-03-15",
            "valid_from": "2021-03-15",
            "valid_to": "2026-03-14",
            "category": "建筑业企业资质",
            "sequence": "施工总承包",
            "level": "建筑工程施工总承包一级",
            "status": "valid",
        },
        RecordType.PERFORMANCE: {
            "project_name": "深圳市南山区科技园片区道路改造工程",
            "tenderer": {"name": "深圳市南山区建筑工务署", "credit_code": other},
            "winning_bidder": {"name": entity, "credit_code": subject},
            "contract_amount": "38650000.00",
            "currency": "CNY",
            "signing_date": "2022-05-20",
            "completion_date": "2023-11-30",
            "evaluation": "工程质量合格，按期竣工，履约评价为优良。",
        },
        RecordType.PERSONNEL: {
            "id_type": "resident_id_card",
            "id_number": "44030419850315002" + resident_id_check_character("44030419850315002"),
            "name": "王芳",
            "unit_credit_code": subject,
            "title": "高级工程师",
            "practice_certificates": [
                {"number": "粤1442021202212345", "specialty": "建筑工程",
                 "valid_to": "2027-06-30"},
            ],
        },
        RecordType.CREDIT: {
            "blacklist": [{
                "entry_code": "SZ-HMD-2023-0042",
                "subject_name": entity,
                "subject_credit_code": subject,
                "subject_type": "enterprise",
                "subject_role": "bidder",
                "reason": "在南山区道路改造工程投标中提供虚假业绩材料，骗取中标。",
                "decision_date": "2023-08-10",
                "deciding_authority": "深圳市住房和建设局",
                "document_number": "深建罚〔2023〕42号",
                "confined_actions": ["参加本市依法必须招标项目的投标", "申请财政性资金支持"],
                "scope": "深圳市",
                "revocation_status": "in_force",
            }],
            "withdrawals": [],
            "scores": [{"scorer": "深圳市公共资源交易中心", "score": "72.5",
                        "as_of": "2024-01-01", "scale": "0-100"}],
        },
        RecordType.SUPERVISION: {
            "findings": [
                {
                    "authority": "深圳市住房和建设局",
                    "decision_number": "深建罚〔2023〕42号",
                    "decision_date": "2023-08-10",
                    "category": "penalty",
                    "description": "投标文件中提供虚假业绩，依据《中华人民共和国招标投标法》"
                                   "第五十四条处中标项目金额千分之五的罚款。",
                    "amount": "193250.00",
                    "currency": "CNY",
                },
                {
                    "authority": "深圳市公共资源交易中心",
                    "decision_number": "深交监〔2023〕7号",
                    "decision_date": "2023-06-02",
                    "category": "finding",
                    "description": "开标现场核验发现投标保证金缴纳账户与基本账户不一致，"
                                   "已移交行业主管部门。",
                },
            ],
        },
        RecordType.PROJECT: {
            "project_code": "E4403000001002023001",
            "project_name": "深圳市光明区公共文化中心建设工程",
            "sections": [
                {"section_code": "001", "section_name": "施工总承包",
                 "estimate_amount": "286000000.00"},
                {"section_code": "002", "section_name": "工程监理",
                 "estimate_amount": "4200000.00"},
            ],
            "tenderer": {"name": entity, "credit_code": subject},
            "region_code": "440311",
            "estimate_total": "290200000.00",
            "currency": "CNY",
        },
    }
    return validate_record(rt, payloads[rt], subject=subject)
