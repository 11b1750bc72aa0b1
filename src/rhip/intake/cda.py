"""CDA shared documents (WS/T 500, HL7 CDA R2 XML) → catalogue records.

Parsed with a locked-down lxml parser: no network, no DTD loading, no entity expansion, no huge trees; a
document type declaration is refused outright (billion-laughs and XXE payloads never reach the parser's
entity machinery). The document type comes from the WS/T 500 template id (2.16.156.10011.2.1.1.<20+part>)
or, failing that, the document code (C00<part>). Header fields (patient, custodian, encounter, service
event) map onto the catalogue table of the document; body data elements are found by their WS/T 363 data
element code (DE..) on section entries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml import etree

from rhip.clock import SHANGHAI
from rhip.db.engine import Database
from rhip.errors import BadRequest, Forbidden, Invalid
from rhip.intake import formats, reading, service
from rhip.lake.store import Lake

NS = {"h": "urn:hl7-org:v3"}
CDA_ROOT = "{urn:hl7-org:v3}ClinicalDocument"
TEMPLATE_PREFIX = "2.16.156.10011.2.1.1."
ID_NUMBER_ROOT = "2.16.156.10011.1.3"  # 居民身份证号码
MAX_CDA_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class DocType:
    """A supported WS/T 500 shared document."""

    part: int
    code: str
    label: str
    table: str

    @property
    def template_id(self) -> str:
        """The document template id of WS/T 500 (2.16.156.10011.2.1.1.<20+part>)."""
        return f"{TEMPLATE_PREFIX}{20 + self.part}"


DOC_TYPES = {
    d.code: d
    for d in (
        DocType(1, "C0001", "病历概要", "patient_info"),
        DocType(2, "C0002", "门（急）诊病历", "outpatient_visit"),
        DocType(6, "C0006", "检查报告", "exam_report"),
        DocType(7, "C0007", "检验报告", "lab_report"),
        DocType(34, "C0034", "入院记录", "admission"),
        DocType(53, "C0053", "出院小结", "discharge_summary"),
    )
}
_BY_TEMPLATE = {d.template_id: d for d in DOC_TYPES.values()}

# WS/T 363 data elements used in section entries
DE_CHIEF_COMPLAINT = "DE04.01.119.00"
DE_DIAGNOSIS_CODE = "DE05.01.024.00"
DE_FEE_TOTAL = "DE07.00.004.00"
DE_MODALITY = "DE02.10.028.00"
DE_FINDINGS = "DE04.30.009.00"
DE_CONCLUSION = "DE04.50.131.00"
DE_TREATMENT = "DE06.00.296.00"
DE_ADVICE = "DE06.00.287.00"
DE_ADMISSION_ROUTE = "DE02.10.049.00"
DE_SPECIMEN_TYPE = "DE04.50.134.00"
DE_LOS_DAYS = "DE06.00.310.00"  # 实际住院天数
DE_SELF_PAY = "DE07.00.001.00"  # 个人承担费用
LAB_RESULTS_SECTION = "30954-2"


@dataclass
class CdaDoc:
    """A parsed CDA document: its identity and the catalogue records it carries."""

    doc_type: DocType
    document_id: str
    title: str
    effective_time: datetime | None
    custodian: str
    sha256: str
    content: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(raw: bytes) -> Any:
    """The XML root of a request body, parsed safely; malformed XML or a DTD is a 400."""
    if not raw.strip():
        raise BadRequest("请求体为空；应为 CDA 文档（XML）", code="empty-body")
    if len(raw) > MAX_CDA_BYTES:
        from rhip.intake.uploads import too_large

        raise too_large(MAX_CDA_BYTES)
    head = raw[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in raw.lower():
        raise BadRequest("CDA 文档不得包含 DOCTYPE/ENTITY 声明", code="xml-dtd")
    try:
        root = etree.fromstring(raw, parser=_parser())
    except etree.XMLSyntaxError as exc:
        line = getattr(exc, "lineno", None)
        raise BadRequest(
            f"XML 格式错误（第 {line} 行）：{str(exc.msg if hasattr(exc, 'msg') else exc)[:120]}",
            code="bad-xml",
            line=line,
        ) from None
    except ValueError as exc:  # e.g. an encoding declaration lxml cannot honour
        raise BadRequest(f"XML 无法解析：{str(exc)[:120]}", code="bad-xml") from None
    if root is None:
        raise BadRequest("XML 无根元素", code="bad-xml")
    # the byte check above sees only ASCII-compatible encodings: a UTF-16 (or EBCDIC, UTF-32) document
    # hides its DOCTYPE from it. The parser read it without loading or resolving anything; refuse it here,
    # whatever the encoding, so no document with a DTD is ever kept
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise BadRequest("CDA 文档不得包含 DOCTYPE/ENTITY 声明", code="xml-dtd")
    return root


def _x(node: Any, path: str) -> Any:
    got = node.xpath(path, namespaces=NS)
    if not got:
        return None
    v = got[0]
    if isinstance(v, str):
        v = str(v).strip()
        return v or None
    return v


def _ts(value: str | None) -> str | None:
    """HL7 TS (YYYYMMDD[HHMM[SS]][+zzzz]) → 'YYYY-MM-DD HH:MM:SS' (local wall clock as written)."""
    if not value:
        return None
    digits = value.split("+")[0].split("-")[0].split(".")[0]
    if not digits.isdigit() or len(digits) < 8:
        return value  # left as is: the type rule rejects it with a precise message
    d = digits.ljust(14, "0")[:14]
    return f"{d[0:4]}-{d[4:6]}-{d[6:8]} {d[8:10]}:{d[10:12]}:{d[12:14]}"


def _date(value: str | None) -> str | None:
    t = _ts(value)
    return t[:10] if t and len(t) >= 10 and t[4] == "-" else t


def _value(obs: Any) -> dict[str, str | None]:
    v = _x(obs, "h:value")
    if v is None:
        return {"code": None, "display": None, "value": None, "unit": None, "text": None}
    text = "".join(v.itertext()).strip() or None
    return {
        "code": v.get("code"),
        "display": v.get("displayName"),
        "value": v.get("value"),
        "unit": v.get("unit"),
        "text": text,
    }


def _de(root: Any, code: str) -> dict[str, str | None]:
    obs = _x(root, f"h:component/h:structuredBody//h:observation[h:code/@code='{code}']")
    if obs is None:
        return {"code": None, "display": None, "value": None, "unit": None, "text": None}
    return _value(obs)


def _doc_type(root: Any) -> DocType:
    for tid in root.xpath("h:templateId/@root", namespaces=NS):
        if str(tid) in _BY_TEMPLATE:
            return _BY_TEMPLATE[str(tid)]
    code = _x(root, "h:code/@code")
    if code in DOC_TYPES:
        return DOC_TYPES[code]
    got = ", ".join(str(t) for t in root.xpath("h:templateId/@root", namespaces=NS)) or code or "无"
    supported = "、".join(f"{d.label}（{d.template_id}）" for d in DOC_TYPES.values())
    raise Invalid(f"不支持的 CDA 文档类型（模板 {got}）；支持：{supported}", code="cda-type")


def parse(raw: bytes, *, institution_code: str, collected_at: str) -> CdaDoc:
    """Parse a WS/T 500 document sent by an institution and map it onto catalogue records."""
    root = parse_xml(raw)
    if root.tag != CDA_ROOT:
        tag = etree.QName(root).localname if isinstance(root.tag, str) else "?"
        raise Invalid(
            f"XML 不是 HL7 CDA R2 文档：根元素应为 urn:hl7-org:v3 命名空间的 ClinicalDocument，实际为 {tag}",
            code="not-cda",
        )
    dt = _doc_type(root)
    doc_id = _x(root, "h:id/@extension") or _x(root, "h:id/@root")
    if not doc_id:
        raise Invalid("CDA 文档缺少文档标识（ClinicalDocument/id）", code="cda-no-id")
    custodian = _x(
        root, "h:custodian/h:assignedCustodian/h:representedCustodianOrganization/h:id/@extension"
    ) or _x(root, "h:author/h:assignedAuthor/h:representedOrganization/h:id/@extension")
    if not custodian:
        raise Invalid("CDA 文档缺少保管机构代码（custodian）", code="cda-no-custodian")
    if custodian != institution_code:
        raise Forbidden(
            f"CDA 文档的保管机构（{custodian}）不是上传机构（{institution_code}）；只能上传本机构的文档",
            code="other-institution",
        )
    effective = _ts(_x(root, "h:effectiveTime/@value"))
    version = _x(root, "h:versionNumber/@value")
    base = {
        "org_code": institution_code,
        "collected_at": collected_at,
        "updated_at": effective or collected_at,
        "change_flag": "2" if version and version.isdigit() and int(version) > 1 else "1",
    }
    rows = _map(root, dt, base)
    try:
        eff_dt = (
            datetime.strptime(effective, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI) if effective else None
        )
    except ValueError:
        eff_dt = None
    text = raw.decode(root.getroottree().docinfo.encoding or "utf-8", errors="replace")
    return CdaDoc(
        doc_type=dt,
        document_id=str(doc_id)[:128],
        title=(_x(root, "h:title/text()") or dt.label)[:128],
        effective_time=eff_dt,
        custodian=custodian,
        sha256=hashlib.sha256(raw).hexdigest(),
        content=text,
        rows=rows,
    )


def _map(root: Any, dt: DocType, base: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    pr = _x(root, "h:recordTarget/h:patientRole")
    patient = _x(pr, "h:patient") if pr is not None else None
    pid = _x(pr, "h:id/@extension") if pr is not None else None
    name = _x(patient, "h:name/text()") if patient is not None else None
    id_number = _x(patient, f"h:id[@root='{ID_NUMBER_ROOT}']/@extension") if patient is not None else None
    sex = _x(patient, "h:administrativeGenderCode/@code") if patient is not None else None
    enc = _x(root, "h:componentOf/h:encompassingEncounter")
    enc_id = _x(enc, "h:id/@extension") if enc is not None else None
    enc_low = (
        _ts(_x(enc, "h:effectiveTime/h:low/@value") or _x(enc, "h:effectiveTime/@value"))
        if (enc is not None)
        else None
    )
    enc_high = _ts(_x(enc, "h:effectiveTime/h:high/@value")) if enc is not None else None
    dept = (
        _x(enc, "h:location/h:healthCareFacility/h:serviceProviderOrganization/h:id/@extension")
        if enc is not None
        else None
    )
    author = _x(root, "h:author/h:assignedAuthor/h:id/@extension")
    event = _x(root, "h:documentationOf/h:serviceEvent")
    event_id = _x(event, "h:id/@extension") if event is not None else None
    event_code = _x(event, "h:code/@code") if event is not None else None
    event_name = _x(event, "h:code/@displayName") if event is not None else None
    event_time = _ts(_x(event, "h:effectiveTime/h:low/@value")) if event is not None else None
    effective = _ts(_x(root, "h:effectiveTime/@value"))
    diag = _de(root, DE_DIAGNOSIS_CODE)
    inpatient = enc is not None and _x(enc, "h:code/@code") == "IMP"
    link = {"admission_no": enc_id} if inpatient else {"visit_no": enc_id}
    out: dict[str, list[dict[str, Any]]] = {}
    if dt.table == "patient_info":
        out["patient_info"] = [
            {
                **base,
                "patient_id": pid,
                "name": name,
                "sex": sex,
                "birth_date": _date(_x(patient, "h:birthTime/@value") if patient is not None else None),
                "id_number": id_number,
                "phone": _x(pr, "h:telecom/@value") if pr is not None else None,
                "address": _x(pr, "h:addr/text()") if pr is not None else None,
            }
        ]
    elif dt.table == "outpatient_visit":
        out["outpatient_visit"] = [
            {
                **base,
                "visit_no": enc_id,
                "patient_id": pid,
                "patient_name": name,
                "id_number": id_number,
                "sex": sex,
                "visit_type": "2" if enc is not None and _x(enc, "h:code/@code") == "EMER" else "1",
                "dept_code": dept,
                "doctor_code": author,
                "visit_time": enc_low,
                "chief_complaint": _de(root, DE_CHIEF_COMPLAINT)["text"],
                "main_diagnosis_code": diag["code"],
                "main_diagnosis_name": diag["display"],
                "fee_total": _de(root, DE_FEE_TOTAL)["value"],
            }
        ]
    elif dt.table == "exam_report":
        out["exam_report"] = [
            {
                **base,
                **link,
                "report_no": event_id,
                "patient_id": pid,
                "modality": _de(root, DE_MODALITY)["code"],
                "exam_item_code": event_code,
                "exam_item_name": event_name,
                "exam_time": event_time,
                "reported_at": effective,
                "findings": _de(root, DE_FINDINGS)["text"],
                "conclusion": _de(root, DE_CONCLUSION)["text"],
                "reporter_code": author,
            }
        ]
    elif dt.table == "lab_report":
        out["lab_report"] = [
            {
                **base,
                **link,
                "report_no": event_id,
                "patient_id": pid,
                "panel_code": event_code,
                "panel_name": event_name,
                "specimen_type": _de(root, DE_SPECIMEN_TYPE)["code"],
                "sampled_at": event_time,
                "reported_at": effective,
                "reporter_code": author,
            }
        ]
        results = []
        for obs in root.xpath(
            f"h:component/h:structuredBody/h:component/h:section[h:code/@code='{LAB_RESULTS_SECTION}']"
            "//h:observation",
            namespaces=NS,
        ):
            v = _value(obs)
            results.append(
                {
                    **base,
                    "report_no": event_id,
                    "item_code": _x(obs, "h:code/@code"),
                    "item_name": _x(obs, "h:code/@displayName"),
                    "result_value": v["value"] or v["text"] or v["display"],
                    "result_numeric": v["value"],
                    "unit": v["unit"],
                    "abnormal_flag": _x(obs, "h:interpretationCode/@code"),
                    "reference_low": _x(obs, "h:referenceRange/h:observationRange/h:value/h:low/@value"),
                    "reference_high": _x(obs, "h:referenceRange/h:observationRange/h:value/h:high/@value"),
                    "reported_at": effective,
                }
            )
        if results:
            out["lab_result"] = results
    elif dt.table == "admission":
        out["admission"] = [
            {
                **base,
                "admission_no": enc_id,
                "patient_id": pid,
                "patient_name": name,
                "id_number": id_number,
                "sex": sex,
                "admitted_at": enc_low,
                "dept_code": dept,
                "admission_route": _de(root, DE_ADMISSION_ROUTE)["code"],
                "attending_doctor_code": author,
                "chief_complaint": _de(root, DE_CHIEF_COMPLAINT)["text"],
                "admission_diagnosis_code": diag["code"],
                "admission_diagnosis_name": diag["display"],
            }
        ]
    elif dt.table == "discharge_summary":
        out["discharge_summary"] = [
            {
                **base,
                "admission_no": enc_id,
                "patient_id": pid,
                "admitted_at": enc_low,
                "discharged_at": enc_high,
                "dept_code": dept,
                "discharge_diagnosis_code": diag["code"],
                "discharge_diagnosis_name": diag["display"],
                "discharge_disposition": _x(enc, "h:dischargeDispositionCode/@code")
                if enc is not None
                else None,
                "total_fee": _de(root, DE_FEE_TOTAL)["value"],
                "los_days": _de(root, DE_LOS_DAYS)["value"],
                "self_pay_fee": _de(root, DE_SELF_PAY)["value"],
                "treatment_summary": _de(root, DE_TREATMENT)["text"],
                "discharge_advice": _de(root, DE_ADVICE)["text"],
                "attending_doctor_code": author,
            }
        ]
    return out


def ingest_document(
    db: Database,
    lake: Lake,
    raw: bytes,
    *,
    institution_code: str,
    submitted_by: str,
    collected_at: str,
) -> tuple[CdaDoc, service.Receipt, bool]:
    """Parse, keep and ingest one document as one batch (channel cda); (document, receipt, newly kept)."""
    doc = parse(raw, institution_code=institution_code, collected_at=collected_at)
    frames = {}
    for table, rows in doc.rows.items():
        ds = reading.get_dataset(table)
        frames[table] = reading.frame_of(ds, formats.table_from_records(rows))
    kept: list[bool] = []

    def keep(session: Any, batch_id: str) -> None:
        kept.append(
            service.record_cda(
                session,
                batch_id=batch_id,
                institution_code=institution_code,
                document_id=doc.document_id,
                doc_type=doc.doc_type.code,
                title=doc.title,
                effective_time=doc.effective_time,
                sha256=doc.sha256,
                content=doc.content,
            )
        )

    receipt = service.ingest(
        db,
        lake,
        institution_code=institution_code,
        submitted_by=submitted_by,
        channel="cda",
        frames=frames,
        on_committed=keep,
    )
    return doc, receipt, bool(kept and kept[0])
