"""Writing WS/T 500 shared documents (HL7 CDA R2) from catalogue records: what a hospital's document
system sends. The demo replays part of the synthetic month this way; `cda.parse` reads them back to the
same record."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from rhip.intake import cda

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="CN"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_MT000040"/>
  <templateId root={template}/>
  <id root="2.16.156.10011.1.1" extension={doc_id}/>
  <code code={code} codeSystem="2.16.156.10011.2.4" codeSystemName="卫生信息共享文档规范编码体系"/>
  <title>{title}</title>
  <effectiveTime value={effective}/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25" displayName="正常访问保密级别"/>
  <languageCode code="zh-CN"/>
  <versionNumber value={version}/>
  <recordTarget typeCode="RCT" contextControlCode="OP">
    <patientRole classCode="PAT">
      <id root="2.16.156.10011.1.2" extension={patient_id}/>
      <patient classCode="PSN" determinerCode="INSTANCE"/>
    </patientRole>
  </recordTarget>
  <author typeCode="AUT" contextControlCode="OP">
    <time value={effective}/>
    <assignedAuthor classCode="ASSIGNED">
      <id root="2.16.156.10011.1.7" extension={author}/>
      <representedOrganization><id root="2.16.156.10011.1.5" extension={org}/></representedOrganization>
    </assignedAuthor>
  </author>
  <custodian typeCode="CST">
    <assignedCustodian classCode="ASSIGNED">
      <representedCustodianOrganization classCode="ORG" determinerCode="INSTANCE">
        <id root="2.16.156.10011.1.5" extension={org}/>
      </representedCustodianOrganization>
    </assignedCustodian>
  </custodian>
"""


def hl7_ts(value: Any) -> str:
    """'YYYY-MM-DD HH:MM:SS' (local wall clock) → HL7 TS with the +0800 offset; other text as it is."""
    text = str(value or "")
    digits = text.replace("-", "").replace(":", "").replace(" ", "")
    if digits.isdigit() and len(digits) in (8, 14):
        return digits + "+0800"
    return text


def _obs(de: str, value: str) -> str:
    return (
        '<entry><observation classCode="OBS" moodCode="EVN">'
        f'<code code="{de}" codeSystem="2.16.156.10011.2.2.1"/>{value}</observation></entry>'
    )


def _section(code: str, title: str, entries: list[str]) -> str:
    body = "".join(e for e in entries if e)
    if not body:
        return ""
    return (
        f'<component><section><code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>'
        f"<title>{title}</title>{body}</section></component>"
    )


def _text(de: str, value: Any) -> str:
    return _obs(de, f'<value xsi:type="ST">{escape(str(value))}</value>') if value else ""


def _number(de: str, value: Any, unit: str) -> str:
    return _obs(de, f'<value xsi:type="PQ" value={quoteattr(str(value))} unit="{unit}"/>') if value else ""


def discharge_summary(rec: dict[str, Any], *, doc_id: str) -> bytes:
    """出院小结 (WS/T 500.53, template …2.1.1.73) carrying one discharge_summary record."""
    dt = cda.DOC_TYPES["C0053"]
    diag = ""
    if rec.get("discharge_diagnosis_code"):
        diag = _obs(
            cda.DE_DIAGNOSIS_CODE,
            f'<value xsi:type="CD" code={quoteattr(str(rec["discharge_diagnosis_code"]))}'
            f" displayName={quoteattr(str(rec.get('discharge_diagnosis_name') or ''))}"
            ' codeSystem="2.16.156.10011.2.3.3.11"/>',
        )
    disposition = rec.get("discharge_disposition")
    encounter = (
        "<componentOf><encompassingEncounter>"
        f'<id root="2.16.156.10011.1.12" extension={quoteattr(str(rec.get("admission_no") or ""))}/>'
        '<code code="IMP" codeSystem="2.16.840.1.113883.5.4"/>'
        f"<effectiveTime><low value={quoteattr(hl7_ts(rec.get('admitted_at')))}/>"
        f"<high value={quoteattr(hl7_ts(rec.get('discharged_at')))}/></effectiveTime>"
        + (f"<dischargeDispositionCode code={quoteattr(str(disposition))}/>" if disposition else "")
        + "<location><healthCareFacility><serviceProviderOrganization>"
        f'<id root="2.16.156.10011.1.26" extension={quoteattr(str(rec.get("dept_code") or ""))}/>'
        "</serviceProviderOrganization></healthCareFacility></location>"
        "</encompassingEncounter></componentOf>"
    )
    body = (
        _section("11535-2", "出院诊断章节", [diag])
        + _section(
            "8648-8",
            "住院过程章节",
            [
                _text(cda.DE_TREATMENT, rec.get("treatment_summary")),
                _number(cda.DE_LOS_DAYS, rec.get("los_days"), "d"),
            ],
        )
        + _section("18776-5", "医嘱章节", [_text(cda.DE_ADVICE, rec.get("discharge_advice"))])
        + _section(
            "48768-6",
            "费用章节",
            [
                _number(cda.DE_FEE_TOTAL, rec.get("total_fee"), "元"),
                _number(cda.DE_SELF_PAY, rec.get("self_pay_fee"), "元"),
            ],
        )
    )
    head = HEADER.format(
        template=quoteattr(dt.template_id),
        doc_id=quoteattr(doc_id),
        code=quoteattr(dt.code),
        title=escape(dt.label),
        effective=quoteattr(hl7_ts(rec.get("updated_at"))),
        version=quoteattr("2" if str(rec.get("change_flag")) == "2" else "1"),
        patient_id=quoteattr(str(rec.get("patient_id") or "")),
        author=quoteattr(str(rec.get("attending_doctor_code") or "")),
        org=quoteattr(str(rec.get("org_code") or "")),
    )
    body = f"<component><structuredBody>{body}</structuredBody></component>\n</ClinicalDocument>\n"
    return (head + encounter + body).encode("utf-8")
