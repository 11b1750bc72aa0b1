"""What the facade reads from each FHIR resource: element → catalogue field, declared once.

The same declarations name the element in a refusal's OperationOutcome (`expression`), build the
StructureDefinition profiles (`profiles.py`) and the tables of docs/fhir.md. `records.py` does the
reading itself (plain dict walking, for speed); a test checks that every field it fills is declared here.
"""

from __future__ import annotations

from dataclasses import dataclass

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ID_NUMBER_SYSTEM = "urn:oid:2.16.156.10011.1.3"  # WS/T 500 居民身份证号
DOC_SERIAL_SYSTEM = "urn:oid:2.16.156.10011.1.1"  # WS/T 500 文档流水号: never an ID number
OUTPATIENT_NO_SYSTEM = "urn:oid:2.16.156.10011.1.11"  # 门（急）诊号
INPATIENT_NO_SYSTEM = "urn:oid:2.16.156.10011.1.12"  # 住院号
LOINC = "http://loinc.org"
ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "urn:oid:2.16.156.10011.2.3.3.11")


@dataclass(frozen=True)
class Element:
    """One mapped element: FHIRPath relative to the resource → one catalogue field."""

    path: str  # FHIRPath from the resource, e.g. "serviceType" or "extension('fee-total')"
    field: str  # the catalogue field it fills
    element: str | None = None  # the StructureDefinition element id it constrains (None: no constraint)
    extension: str | None = None  # the name of our extension carrying it (its canonical is configured)
    value_type: str = "string"  # the extension's value[x] type
    min1: bool = False  # required in FHIR terms (the catalogue requires it and no default stands in)
    default: str | None = None  # what the facade fills when the element is absent
    note: str = ""


@dataclass(frozen=True)
class Profile:
    """A profile of one resource type onto one catalogue table."""

    id: str
    type: str
    table: str
    title: str
    elements: tuple[Element, ...]
    invariants: tuple[tuple[str, str, str], ...] = ()  # (key, Chinese text, FHIRPath)
    note: str = ""


META = (Element("meta.lastUpdated", "updated_at", "meta.lastUpdated", note="缺省为接收时间"),)
_KEY_NOTE = "资源 id；没有 id 时取 identifier（条件更新时取 URL 中的标识）"


def _key(field: str) -> Element:
    return Element("id | identifier.value", field, None, note=_KEY_NOTE)


def _ext(
    name: str, field: str, value_type: str, *, min1: bool = False, default: str | None = None
) -> Element:
    return Element(
        f"extension('{name}')",
        field,
        f"extension:{name}",
        extension=name,
        value_type=value_type,
        min1=min1,
        default=default,
    )


SUBJECT = Element("subject", "patient_id", "subject", min1=True, note="Patient 引用 → 该患者的患者ID")


def _encounter_link(field: str) -> Element:
    return Element("encounter", field, "encounter", note="Encounter 引用 → 就诊/住院流水号")


PROFILES: tuple[Profile, ...] = (
    Profile(
        "rhip-patient",
        "Patient",
        "patient_info",
        "患者基本信息",
        (
            Element(
                "id | identifier.where(type.coding.code='MR').value",
                "patient_id",
                None,
                note="资源 id，或类型为 v2-0203 MR 的标识（机构内患者号）",
            ),
            Element("name", "name", "name", min1=True, note="name.text，或 family + given"),
            Element("gender", "sex", "gender", min1=True, note="male→1 female→2 unknown→0 other→9"),
            Element("birthDate", "birth_date", "birthDate", min1=True),
            Element(
                f"identifier.where(system='{ID_NUMBER_SYSTEM}' or type.coding.code='NNCHN').value",
                "id_number",
                None,
                note="身份证号：system 为 urn:oid:2.16.156.10011.1.3，或类型为 v2-0203 NNCHN",
            ),
            Element("telecom.where(system='phone').value", "phone", "telecom"),
            *META,
        ),
        invariants=(
            (
                "rhip-pat-1",
                "患者须有资源 id 或类型为 MR 的标识（机构内患者ID）",
                "id.exists() or identifier.where(type.coding.code='MR').exists()",
            ),
        ),
    ),
    Profile(
        "rhip-encounter-outpatient",
        "Encounter",
        "outpatient_visit",
        "门急诊就诊记录",
        (
            _key("visit_no"),
            SUBJECT,
            Element("class", "visit_type", "class", min1=True, note="AMB 门诊 → 1，EMER 急诊 → 2"),
            Element("serviceType", "dept_code", "serviceType", min1=True, note="科室代码（机构注册库）"),
            Element(
                "participant.individual",
                "doctor_code",
                "participant",
                min1=True,
                note="Practitioner 引用或 identifier → 医生工号",
            ),
            Element("period.start", "visit_time", "period.start", min1=True),
            _ext("fee-total", "fee_total", "decimal", min1=True),
            *META,
        ),
        note="class 不是 IMP/ACUTE/NONAC 的 Encounter",
    ),
    Profile(
        "rhip-encounter-admission",
        "Encounter",
        "admission",
        "入院记录",
        (
            _key("admission_no"),
            SUBJECT,
            Element(
                f"identifier.where(system='{INPATIENT_NO_SYSTEM}').value", "inpatient_no", None, note="住院号"
            ),
            Element("period.start", "admitted_at", "period.start", min1=True),
            Element("serviceType", "dept_code", "serviceType", min1=True, note="或扩展 department"),
            _ext("department", "dept_code", "code"),
            _ext("admission-route", "admission_route", "code", default="9"),
            *META,
        ),
        note="class 为 IMP、ACUTE 或 NONAC 的 Encounter",
    ),
    Profile(
        "rhip-condition",
        "Condition",
        "diagnosis",
        "诊断记录",
        (
            _key("diagnosis_no"),
            SUBJECT,
            _encounter_link("visit_no"),
            Element("encounter", "admission_no", None, note="引用住院 Encounter 时"),
            Element("category", "diagnosis_type", "category", default="1（门诊）或 2（住院）"),
            _ext("main-diagnosis", "main_flag", "code", default="1"),
            Element("code.coding.code", "diagnosis_code", "code", min1=True, note="ICD-10"),
            Element("code.text", "diagnosis_name", "code.text", min1=True, note="或 coding.display"),
            Element("recordedDate | onsetDateTime", "diagnosed_at", "recordedDate", min1=True),
            *META,
        ),
    ),
    Profile(
        "rhip-observation-lab",
        "Observation",
        "lab_result",
        "检验结果",
        (
            Element(
                "extension('report-no')",
                "report_no",
                "extension:report-no",
                extension="report-no",
                note="列出它（result）的 DiagnosticReport 的报告单号；否则扩展 report-no；否则 partOf",
            ),
            Element(
                f"code.coding.where(system!='{LOINC}').code",
                "item_code",
                "code",
                min1=True,
                note="本院项目编码",
            ),
            Element(f"code.coding.where(system='{LOINC}').code", "loinc_code", None),
            Element("code.text", "item_name", "code.text", min1=True, note="或 coding.display"),
            Element("value", "result_value", "value[x]", min1=True),
            Element("valueQuantity.value", "result_numeric", None),
            Element("valueQuantity.unit", "unit", None),
            Element("referenceRange.text", "reference_range", None),
            Element("referenceRange.low.value", "reference_low", None),
            Element("referenceRange.high.value", "reference_high", None),
            Element("interpretation", "abnormal_flag", "interpretation"),
            Element("issued | effectiveDateTime", "reported_at", "issued", min1=True),
            *META,
        ),
    ),
    Profile(
        "rhip-diagnosticreport-lab",
        "DiagnosticReport",
        "lab_report",
        "检验报告",
        (
            _key("report_no"),
            SUBJECT,
            _encounter_link("visit_no"),
            Element("encounter", "admission_no", None, note="引用住院 Encounter 时"),
            Element("code.text", "panel_name", "code.text", min1=True),
            Element("issued | effectiveDateTime", "reported_at", "issued", min1=True),
            *META,
        ),
        note="category 含 LAB 的 DiagnosticReport",
    ),
    Profile(
        "rhip-diagnosticreport-exam",
        "DiagnosticReport",
        "exam_report",
        "检查报告",
        (
            _key("report_no"),
            SUBJECT,
            _encounter_link("visit_no"),
            Element("encounter", "admission_no", None, note="引用住院 Encounter 时"),
            Element(
                "imagingStudy.modality | extension('modality') | category",
                "modality",
                "category",
                min1=True,
                note="所引 ImagingStudy 的 modality，或扩展 modality，或 category 中 RAD 以外的代码",
            ),
            _ext("modality", "modality", "code"),
            Element("code.text", "exam_item_name", "code.text", min1=True),
            Element("issued | effectiveDateTime", "reported_at", "issued", min1=True),
            Element("conclusion", "conclusion", "conclusion", min1=True),
            *META,
        ),
        note="category 不含 LAB 的 DiagnosticReport",
    ),
    Profile(
        "rhip-imagingstudy",
        "ImagingStudy",
        "exam_report",
        "检查报告（无 DiagnosticReport 时）",
        (
            _key("report_no"),
            SUBJECT,
            _encounter_link("visit_no"),
            Element("modality | series.modality", "modality", "modality", min1=True),
            Element("description", "exam_item_name", "description", min1=True),
            Element("started", "reported_at", "started", min1=True),
            _ext("conclusion", "conclusion", "string", min1=True),
            *META,
        ),
        note="被某个 DiagnosticReport.imagingStudy 引用时由该报告入库，本资源不再单独入库",
    ),
    Profile(
        "rhip-medicationrequest",
        "MedicationRequest",
        "prescription_item",
        "处方明细",
        (
            Element("groupIdentifier.value | id", "prescription_no", "groupIdentifier", note="处方号"),
            _ext("item-seq", "item_seq", "positiveInt", default="1"),
            Element("authoredOn", "issued_at", "authoredOn", min1=True),
            Element("medicationCodeableConcept.coding.code", "drug_code", "medication[x]", min1=True),
            Element("medicationCodeableConcept.text", "drug_name", None, note="或 coding.display"),
            Element("dispenseRequest.quantity.value", "quantity", "dispenseRequest.quantity", min1=True),
            *META,
        ),
    ),
    Profile(
        "rhip-procedure",
        "Procedure",
        "surgery",
        "手术记录",
        (
            _key("surgery_no"),
            SUBJECT,
            Element(
                "encounter", "admission_no", "encounter", min1=True, note="住院 Encounter 引用 → 住院流水号"
            ),
            Element("code.coding.code", "procedure_code", "code", min1=True),
            Element("code.text", "procedure_name", "code.text", min1=True, note="或 coding.display"),
            _ext("surgery-level", "surgery_level", "code", min1=True),
            Element("performedPeriod.start | performedDateTime", "started_at", "performed[x]", min1=True),
            Element("performedPeriod.end", "ended_at", None),
            Element("performer.actor", "surgeon_code", "performer", min1=True, note="术者工号"),
            *META,
        ),
    ),
)
BY_ID = {p.id: p for p in PROFILES}
EXTENSIONS: dict[str, tuple[str, str]] = {}  # name → (value type, the catalogue fields it carries)
for _p in PROFILES:
    for _e in _p.elements:
        if _e.extension:
            vt, fields = EXTENSIONS.get(_e.extension, (_e.value_type, ""))
            EXTENSIONS[_e.extension] = (vt, ", ".join(sorted({*filter(None, fields.split(", ")), _e.field})))


def profile_of(rtype: str, table: str) -> Profile | None:
    """The profile mapping a resource type onto a catalogue table."""
    for p in PROFILES:
        if p.type == rtype and p.table == table:
            return p
    return None


def element_path(rtype: str, table: str, field: str, *, canonical: str) -> str | None:
    """The FHIRPath (relative to the resource) of the element that fills a catalogue field: its first
    alternative, an extension named by its canonical URL."""
    p = profile_of(rtype, table)
    if p is None:
        return None
    for e in p.elements:
        if e.field == field:
            first = e.path.split(" | ")[0]
            if e.extension and first.startswith("extension("):
                return f"extension.where(url='{extension_url(canonical, e.extension)}')"
            return first
    return None


def extension_url(canonical: str, name: str) -> str:
    """The URL of one of our extensions under the configured canonical base."""
    return f"{canonical.rstrip('/')}/StructureDefinition/{name}"
