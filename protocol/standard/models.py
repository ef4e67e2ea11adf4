"""One pydantic model per record type, and :func:`validate_record` that checks a payload
against it.

Invariants: ``validate_record(t, validate_record(t, p)) == validate_record(t, p)``; every
rejection is one :class:`~yilian.protocol.standard.enums.RecordInvalid` listing every bad
field by dotted path; models are frozen and forbid unknown fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
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

from yilian.protocol import credit_code as _cc
from yilian.protocol.standard.enums import (
    EntityStatus,
    EntityType,
    FieldError,
    FindingCategory,
    IdType,
    QualificationStatus,
    RecordInvalid,
    RecordType,
    RevocationStatus,
    Role,
)
from yilian.protocol.standard.fields import (
    OTHER_ID_RE,
    SCHEMA_VERSION,
    AccountNumber,
    CreditCode,
    Currency,
    Date,
    DecimalString,
    Identifier,
    Name,
    Phone,
    PositiveDecimal,
    RegionCode,
    Text,
    check_array,
    check_credit_code,
    check_resident_id,
    check_text,
    json_type,
    require_str,
)

__all__ = [
    "BankAccount",
    "BasicRecord",
    "BlacklistEntry",
    "BlacklistWithdrawal",
    "Contact",
    "CreditRecord",
    "CreditScore",
    "Party",
    "PerformanceRecord",
    "PersonnelRecord",
    "PracticeCertificate",
    "ProjectRecord",
    "QualificationRecord",
    "RecordModel",
    "Section",
    "SupervisionFinding",
    "SupervisionRecord",
    "json_schema",
    "model_for",
    "validate_record",
]


def _rule(field: str, message: str) -> PydanticCustomError:
    """An error about ``field`` (relative to the model raising it) from a model rule."""
    return PydanticCustomError("record_rule", "{message}", {"message": message, "field": field})

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
        v = check_array(v)
        if isinstance(v, list | tuple) and not v:
            raise ValueError(f"must list at least one {what}")
        return v

    return BeforeValidator(check)


_ARRAY: Final = BeforeValidator(check_array)


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
        PlainValidator(lambda v: require_str(v)),
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
            check_resident_id(v)
        elif id_type == IdType.OTHER:
            check_text(v, 32, multiline=False)
        elif not OTHER_ID_RE.fullmatch(v):
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
            check_credit_code(subject)
        except ValueError as exc:
            errors.append(FieldError("subject", f"not a valid subject credit code: {exc}"))
    if not isinstance(payload, Mapping):
        errors.append(FieldError("", f"record data must be a JSON object, got "
                                     f"{json_type(payload)}"))
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
