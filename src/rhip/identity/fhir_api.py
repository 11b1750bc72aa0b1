"""FHIR R4 identity resources under /fhir/r4: Person (the EMPI's person, linking every Patient),
Patient (each institution's record, with its own identifiers), Patient?identifier= and Patient/$match.

The ID number's identifier system is WS/T 500's OID for 身份证号, urn:oid:2.16.156.10011.1.3; an
identifier typed v2-0203 NNCHN is accepted as one too. A Patient's id here is its record number; its
institution's own id is the identifier typed MR. Doctors and hotline agents see names and ID numbers
masked; every read is audited.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.errors import BadRequest, Invalid, NotFound, RhipError
from rhip.identity import features as feat, service as svc
from rhip.identity.linker import Incoming, default_bands, rank
from rhip.identity.models import PatientRecord
from rhip.identity.schemas import PersonRead, RecordRead
from rhip.security.deps import SessionDep, audit_read, require
from rhip.security.masking import Masker
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter()
FHIR_JSON = "application/fhir+json"
ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"  # WS/T 500: 居民身份证号
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
INSTITUTION_SYSTEM = "urn:rhip:institution"
MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
SEE_ALL = (Role.manager, Role.auditor, Role.admin)
Readers = Annotated[Principal, Depends(require(*SEE_ALL, Role.doctor, Role.agent))]
GENDER = {"1": "male", "2": "female"}
SEX_OF = {"male": "1", "female": "2"}
ASSURANCE = {"auto": "level3", "review": "level2", "new": "level1"}
MAX_COUNT = 50


def fhir(body: dict[str, Any], status: int = 200) -> JSONResponse:
    """A FHIR JSON response."""
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def outcome(exc: RhipError) -> JSONResponse:
    """An OperationOutcome for a refused request (Chinese diagnostics, the rule's code)."""
    code = {404: "not-found", 403: "forbidden", 401: "login", 409: "conflict"}.get(exc.status, "invalid")
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": code,
                "details": {"coding": [{"system": "urn:rhip:identity-rule", "code": exc.code}]},
                "diagnostics": exc.detail,
            }
        ],
    }
    return fhir(body, exc.status)


def shown(who: Principal, body: dict[str, Any], status: int = 200) -> JSONResponse:
    """A FHIR answer with its people masked for this caller (security.masking's "linkage" view)."""
    return fhir(Masker(who, "linkage").fhir(body), status)


def _identifier(
    system: str, value: str, type_code: str, text: str, assigner: str | None = None
) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "use": "official",
        "type": {"coding": [{"system": V2_0203, "code": type_code}], "text": text},
        "system": system,
        "value": value,
    }
    if assigner:
        ident["assigner"] = {"identifier": {"system": INSTITUTION_SYSTEM, "value": assigner}}
    return ident


def patient_resource(r: RecordRead) -> dict[str, Any]:
    """A stored patient record as a FHIR Patient, with the institution's id (MR) and the ID number
    (whole: the answer is masked by role as a whole, `shown`)."""
    name = r.name
    idents = [
        _identifier(
            f"{INSTITUTION_SYSTEM}:{r.institution_code}:patient",
            r.local_id,
            "MR",
            "病案号/患者ID",
            r.institution_code,
        )
    ]
    number = r.id_number if r.id_number and len(r.id_number) == 18 else None
    if number:
        idents.append(_identifier(ID_SYSTEM, number, "NNCHN", "居民身份证号"))
    res: dict[str, Any] = {"resourceType": "Patient", "id": str(r.id), "identifier": idents, "active": True}
    if name:
        res["name"] = [{"text": name, "family": name[:1]}]
    if r.sex in GENDER:
        res["gender"] = GENDER[r.sex or ""]
    if r.birth_date:
        res["birthDate"] = r.birth_date.isoformat()
    if r.phone:
        res["telecom"] = [{"system": "phone", "value": r.phone}]
    if r.district:
        res["address"] = [{"district": r.district}]
    res["managingOrganization"] = {"identifier": {"system": INSTITUTION_SYSTEM, "value": r.institution_code}}
    return res


def person_resource(p: PersonRead) -> dict[str, Any]:
    """A person as a FHIR Person linking each of its Patients (assurance from the band; a steward's
    decision is level4); a merged person links the person it was merged into."""
    res: dict[str, Any] = {"resourceType": "Person", "id": p.id, "active": p.status == "active"}
    if p.id_number:
        res["identifier"] = [_identifier(ID_SYSTEM, p.id_number, "NNCHN", "居民身份证号")]
    if p.name:
        res["name"] = [{"text": p.name}]
    if p.sex in GENDER:
        res["gender"] = GENDER[p.sex or ""]
    if p.birth_date:
        res["birthDate"] = p.birth_date.isoformat()
    links = [
        {
            "target": {"reference": f"Patient/{r.id}"},
            "assurance": "level4" if r.pinned else ASSURANCE.get(r.band, "level1"),
        }
        for r in p.records
    ]
    if p.merged_into:
        links.append({"target": {"reference": f"Person/{p.merged_into}"}, "assurance": "level4"})
    if links:
        res["link"] = links
    return res


def searchset(request: Request, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A searchset Bundle of entries (each with resource and search)."""
    base = str(request.base_url).rstrip("/") + "/fhir/r4"
    for e in entries:
        r = e["resource"]
        e.setdefault("fullUrl", f"{base}/{r['resourceType']}/{r['id']}")
        e.setdefault("search", {"mode": "match"})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": entries,
    }


def _record(session: Session, patient_id: str) -> PatientRecord:
    rec = session.get(PatientRecord, int(patient_id)) if patient_id.isdigit() else None
    if rec is None:
        raise NotFound(f"没有这个 Patient：{patient_id[:40]}", code="patient-not-found")
    return rec


# ------------------------------------------------------------------ Person


@router.get("/Person/{person_id}")
def read_person(person_id: str, request: Request, session: SessionDep, who: Readers) -> JSONResponse:
    """One Person with a link to every Patient linked to it."""
    try:
        with session.begin():
            p = svc.get_person(session, person_id=person_id)
            audit_read(session, request, who, what="identity.fhir.person", target=person_id)
        return shown(who, person_resource(p))
    except RhipError as exc:
        return outcome(exc)


@router.get("/Person")
def search_person(request: Request, session: SessionDep, who: Readers) -> JSONResponse:
    """Person?link=Patient/{id} (the person a Patient is linked to), or Person?identifier=system|value."""
    q = request.query_params
    try:
        with session.begin():
            link, ident = q.get("link"), q.get("identifier")
            if link:
                pid = link.removeprefix("Patient/")
                ids = [_record(session, pid).person_id] if pid.isdigit() else []
            elif ident:
                ids = svc.find_persons(session, id_number=_id_number_of_token(ident))
            else:
                raise BadRequest(
                    "请提供 link=Patient/{id} 或 identifier=system|value", code="search-param-missing"
                )
            persons = [svc.get_person(session, person_id=i) for i in ids]
            audit_read(session, request, who, what="identity.fhir.person.search", results=len(persons))
        return shown(who, searchset(request, [{"resource": person_resource(p)} for p in persons]))
    except RhipError as exc:
        return outcome(exc)


# ------------------------------------------------------------------ Patient


def _id_number_of_token(token: str) -> str:
    """The ID number of an identifier search token system|value (the ID number's system, or none)."""
    system, sep, value = token.partition("|")
    if not sep:
        system, value = "", token
    if system not in ("", ID_SYSTEM):
        raise Invalid(f"不支持的标识系统：{system[:80]}（身份证号用 {ID_SYSTEM}）", code="identifier-system")
    return value


@router.get("/Patient")
def search_patient(request: Request, session: SessionDep, who: Readers) -> JSONResponse:
    """Patient?identifier=system|value: by ID number (urn:oid:2.16.156.10011.1.3) or by an institution's
    own id (urn:rhip:institution:{code}:patient|{id})."""
    token = request.query_params.get("identifier")
    try:
        if not token:
            raise BadRequest("请提供 identifier=system|value", code="search-param-missing")
        system, _, value = token.partition("|")
        with session.begin():
            if system.startswith(f"{INSTITUTION_SYSTEM}:") and system.endswith(":patient"):
                inst = system.removeprefix(f"{INSTITUTION_SYSTEM}:").removesuffix(":patient")
                cond: Any = (PatientRecord.institution_code == inst) & (PatientRecord.local_id == value)
            else:
                number = feat.parse_id(_id_number_of_token(token)).number
                if number is None:
                    raise Invalid("身份证号码格式不正确", code="id-format")
                cond = PatientRecord.id_number == number
            recs = list(
                session.scalars(select(PatientRecord).where(cond).order_by(PatientRecord.id).limit(100))
            )
            audit_read(session, request, who, what="identity.fhir.patient.search", results=len(recs))
        return shown(
            who, searchset(request, [{"resource": patient_resource(svc.record_read(r))} for r in recs])
        )
    except RhipError as exc:
        return outcome(exc)


@router.get("/Patient/{patient_id}")
def read_patient(patient_id: str, request: Request, session: SessionDep, who: Readers) -> JSONResponse:
    """One stored patient record as a Patient."""
    try:
        with session.begin():
            rec = _record(session, patient_id)
            audit_read(session, request, who, what="identity.fhir.patient", target=rec.person_id)
            return shown(who, patient_resource(svc.record_read(rec)))
    except RhipError as exc:
        return outcome(exc)


def _match_input(body: Any) -> tuple[dict[str, Any], bool, int]:
    """The Patient, onlyCertainMatches and count of a $match request (Parameters, or a bare Patient)."""
    if not isinstance(body, dict):
        raise BadRequest("请求体必须是 FHIR Parameters 或 Patient", code="match-body")
    if body.get("resourceType") == "Patient":
        return body, False, 10
    if body.get("resourceType") != "Parameters":
        raise BadRequest("请求体必须是 FHIR Parameters 或 Patient", code="match-body")
    patient, certain, count = None, False, 10
    for p in body.get("parameter") or []:
        if not isinstance(p, dict):
            continue
        if p.get("name") == "resource":
            patient = p.get("resource")
        elif p.get("name") == "onlyCertainMatches":
            certain = bool(p.get("valueBoolean"))
        elif p.get("name") == "count":
            value = p.get("valueInteger")
            count = value if isinstance(value, int) else 10
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise Invalid("Parameters 中缺少 resource（Patient）", code="match-no-patient")
    if not 1 <= count <= MAX_COUNT:
        raise Invalid(f"count 应在 1 到 {MAX_COUNT} 之间", code="match-count")
    return patient, certain, count


def incoming_of(patient: dict[str, Any]) -> Incoming:
    """A FHIR Patient as a record to match: ID number (system 10011.1.3 or type NNCHN), name, gender,
    birth date, phone, district."""
    number = None
    for ident in patient.get("identifier") or []:
        if not isinstance(ident, dict):
            continue
        codes = {c.get("code") for c in (ident.get("type") or {}).get("coding") or [] if isinstance(c, dict)}
        if ident.get("system") == ID_SYSTEM or "NNCHN" in codes:
            number = str(ident.get("value") or "") or None
            break
    names = patient.get("name") or [{}]
    n0 = names[0] if isinstance(names, list) and names and isinstance(names[0], dict) else {}
    name = n0.get("text") or ((n0.get("family") or "") + "".join(n0.get("given") or [])) or None
    born = None
    if patient.get("birthDate"):
        try:
            born = date.fromisoformat(str(patient["birthDate"]))
        except ValueError:
            raise Invalid("birthDate 应为 YYYY-MM-DD", code="bad-date") from None
    phone = next(
        (
            t.get("value")
            for t in patient.get("telecom") or []
            if isinstance(t, dict) and t.get("system") == "phone"
        ),
        None,
    )
    addr = patient.get("address") or [{}]
    district = (
        addr[0].get("district") if isinstance(addr, list) and addr and isinstance(addr[0], dict) else None
    )
    return Incoming(
        institution_code="$match",
        local_id="$match",
        source="fhir-match",
        id_number=number,
        name=str(name) if name else None,
        birth_date=born,
        sex=SEX_OF.get(str(patient.get("gender"))),
        phone=str(phone) if phone else None,
        district=str(district) if district else None,
    )


def grade(probability: float) -> str:
    """The match-grade of a probability: certain (auto band), probable (review), possible, certainly-not."""
    bands = default_bands()
    if probability >= bands.auto:
        return "certain"
    if probability >= bands.review:
        return "probable"
    if probability >= 0.01:
        return "possible"
    return "certainly-not"


@router.post("/Patient/$match")
async def match_patient(request: Request, session: SessionDep, who: Readers) -> JSONResponse:
    """FHIR R4 Patient/$match: candidates (each person's closest Patient) with search.score and the
    match-grade extension; onlyCertainMatches and count honoured."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return outcome(BadRequest("请求体不是有效的 JSON", code="bad-json"))
    return await run_in_threadpool(_match, request, session, who, body)


def _match(request: Request, session: Session, who: Principal, body: Any) -> JSONResponse:
    try:
        patient, certain, count = _match_input(body)
        item = incoming_of(patient)
        with session.begin():
            ranked = [c for c in rank(session, item) if c.score.probability >= 0.01]
            if certain:
                ranked = [c for c in ranked if grade(c.score.probability) == "certain"]
            ranked = ranked[:count]
            wanted = [c.record_id for c in ranked]
            records = {
                r.id: r for r in session.scalars(select(PatientRecord).where(PatientRecord.id.in_(wanted)))
            }
            audit_read(session, request, who, what="identity.fhir.match", results=len(ranked))
        entries = [
            {
                "resource": patient_resource(svc.record_read(records[c.record_id])),
                "search": {
                    "mode": "match",
                    "score": round(c.score.probability, 6),
                    "extension": [{"url": MATCH_GRADE, "valueCode": grade(c.score.probability)}],
                },
            }
            for c in ranked
            if c.record_id in records
        ]
        return shown(who, searchset(request, entries))
    except RhipError as exc:
        return outcome(exc)


# this module's part of the CapabilityStatement (rhip.fhir.capability merges every module's FHIR_REST)
FHIR_REST: dict[str, Any] = {
    "resource": [
        {
            "type": "Person",
            "documentation": "主索引（EMPI）人员：link 指向各机构的 Patient；保障级别来自关联区间",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": "link", "type": "reference", "documentation": "Patient/<id>"},
                {
                    "name": "identifier",
                    "type": "token",
                    "documentation": "urn:oid:2.16.156.10011.1.3|身份证号",
                },
            ],
        },
        {
            "type": "Patient",
            "documentation": "各机构的患者记录（保留机构自己的标识；医生与热线坐席看到脱敏信息）",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": "identifier", "type": "token", "documentation": "system|value；身份证号或机构 MR 号"}
            ],
            "operation": [
                {"name": "match", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match"}
            ],
        },
    ]
}
