"""Realistic valid example records, one per record type (documentation, tests, benches)."""

from __future__ import annotations

from typing import Any, Final

from yilian.protocol import credit_code as _cc
from yilian.protocol.standard.enums import FieldError, RecordInvalid, RecordType
from yilian.protocol.standard.fields import check_credit_code, resident_id_check_character
from yilian.protocol.standard.models import validate_record

__all__ = ["example_record"]

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
        check_credit_code(subject)
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
