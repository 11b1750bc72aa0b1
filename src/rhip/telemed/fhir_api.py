"""FHIR R4 read and search of the telemedicine workflow under /fhir/r4: ServiceRequest (the request), Task
(its fulfilment and state) and DiagnosticReport (the report). Resources are validated with fhir.resources
(R4B models); errors are OperationOutcomes. A clinician sees their own institution's (requested or performed,
audited); managers see every one with the patient identifier masked."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request as HttpRequest
from fastapi.responses import JSONResponse
from fhir.resources.R4B.diagnosticreport import DiagnosticReport as FhirReport
from fhir.resources.R4B.servicerequest import ServiceRequest as FhirServiceRequest
from fhir.resources.R4B.task import Task as FhirTask
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.errors import Invalid, RhipError
from rhip.security import masking
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.telemed import service as svc
from rhip.telemed.models import Report, Request, Study
from rhip.telemed.workflow import FHIR_STATUS

router = APIRouter()
SessionDep = SessionDep
Viewers = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor, Role.manager, Role.admin))]
FHIR_JSON = "application/fhir+json"
ID_NUMBER = "urn:oid:2.16.156.10011.1.3"  # 居民身份证号码 (WS/T 500)
INSTITUTION = "urn:rhip:institution"
CENTRE = "urn:rhip:telemed-centre"
SERVICE = "urn:rhip:telemed-service-type"
SR_STATUS = {
    "requested": "active",
    "accepted": "active",
    "in_progress": "active",
    "completed": "completed",
    "rejected": "revoked",
    "cancelled": "revoked",
}


def _fhir(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def _outcome(exc: RhipError) -> JSONResponse:
    code = {409: "conflict", 404: "not-found", 403: "forbidden", 401: "login"}.get(exc.status, "invalid")
    issue = {
        "severity": "error",
        "code": code,
        "details": {"coding": [{"system": "urn:rhip:telemed-rule", "code": exc.code}], "text": exc.detail},
    }
    return _fhir({"resourceType": "OperationOutcome", "issue": [issue]}, exc.status)


def _dump(model: Any) -> dict[str, Any]:
    return json.loads(model.model_dump_json(exclude_none=True))  # type: ignore[no-any-return]


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _org(code: str) -> dict[str, Any]:
    return {"reference": f"Organization/{code}", "identifier": {"system": INSTITUTION, "value": code}}


def _subject(req: Request, full: bool) -> dict[str, Any]:
    ident = req.patient_id_number if full else masking.mask_id(req.patient_id_number)
    name = req.patient_name if full else masking.mask_name(req.patient_name)
    out: dict[str, Any] = {"display": name or "患者"}
    if ident:
        out["identifier"] = {
            "system": ID_NUMBER,
            "value": ident,
            "type": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]
            },
        }
    return out


def _code(req: Request) -> dict[str, Any]:
    return {
        "coding": [{"system": SERVICE, "code": f"{req.centre_code}/{req.service_type}"}],
        "text": req.service_type,
    }


def service_request(req: Request, full: bool) -> dict[str, Any]:
    """A request as a FHIR ServiceRequest."""
    body: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(req.id),
        "status": SR_STATUS[req.status],
        "intent": "order",
        "category": [
            {
                "coding": [
                    {"system": CENTRE, "code": req.centre_code, "display": svc.centre(req.centre_code).name}
                ]
            }
        ],
        "priority": req.priority,
        "code": _code(req),
        "subject": _subject(req, full),
        "authoredOn": _iso(req.requested_at),
        "requester": _org(req.requester_code),
        "performer": [_org(req.performer_code)],
    }
    if req.scheduled_at:
        body["occurrenceDateTime"] = _iso(req.scheduled_at)
    if full and req.reason:
        body["reasonCode"] = [{"text": req.reason}]
    return _dump(FhirServiceRequest.model_validate(body))


def task(req: Request, full: bool) -> dict[str, Any]:
    """A request's fulfilment as a FHIR Task."""
    body: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(req.id),
        "status": FHIR_STATUS[req.status],
        "intent": "order",
        "priority": req.priority,
        "code": _code(req),
        "focus": {"reference": f"ServiceRequest/{req.id}"},
        "basedOn": [{"reference": f"ServiceRequest/{req.id}"}],
        "for": _subject(req, full),
        "authoredOn": _iso(req.requested_at),
        "lastModified": _iso(req.ended_at or req.started_at or req.accepted_at or req.requested_at),
        "requester": _org(req.requester_code),
        "owner": _org(req.performer_code),
    }
    if req.status_reason:
        body["statusReason"] = {"text": req.status_reason}
    if req.started_at or req.accepted_at:
        period = {"start": _iso(req.started_at or req.accepted_at)}
        if req.ended_at:
            period["end"] = _iso(req.ended_at)
        body["executionPeriod"] = period
    return _dump(FhirTask.model_validate(body))


def diagnostic_report(rep: Report, req: Request, full: bool, study: Study | None) -> dict[str, Any]:
    """A report as a FHIR DiagnosticReport."""
    body: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(rep.id),
        "meta": {"versionId": str(rep.version)},
        "status": rep.status,  # final, then amended after a correction
        "category": [{"coding": [{"system": CENTRE, "code": req.centre_code}]}],
        "code": _code(req),
        "subject": _subject(req, full),
        "basedOn": [{"reference": f"ServiceRequest/{req.id}"}],
        "issued": _iso(rep.amended_at or rep.issued_at),
        "effectiveDateTime": _iso(req.requested_at),
        "performer": [_org(req.performer_code), {"display": rep.author}],
    }
    if full:  # the clinical text only for the care team; staff see that a report exists and when
        body["conclusion"] = rep.conclusion
        body["presentedForm"] = [
            {"contentType": "text/plain; charset=utf-8", "title": "所见", "data": _b64(rep.findings)}
        ]
    if study is not None:
        body["imagingStudy"] = [
            {
                "reference": f"ImagingStudy/{study.id}",
                "identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{study.study_uid}"},
            }
        ]
    return _dump(FhirReport.model_validate(body))


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _bundle(request: HttpRequest, resources: list[dict[str, Any]]) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/") + "/fhir/r4"
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


def _id(value: str, kind: str) -> int:
    raw = value.rsplit("/", 1)[-1]
    if not raw.isdigit():
        raise Invalid(f"{kind} 的 id 无效：{value}", code="bad-reference")
    return int(raw)


def _ref_code(value: str | None) -> str | None:
    return value.rsplit("/", 1)[-1] if value else None


def _search(session: Session, request: HttpRequest, who: Principal) -> tuple[list[Request], bool]:
    """Requests matching the search parameters the caller may see; whether the patient is shown in full."""
    q = request.query_params
    status = q.get("status")
    ours = [k for k, v in FHIR_STATUS.items() if status and v in status.split(",")] if status else None
    if status and not ours:
        raise Invalid(f"未知的状态：{status}", code="bad-status")
    count = min(int(q.get("_count", "100")) if q.get("_count", "100").isdigit() else 100, 500)
    common: dict[str, Any] = {
        "centre_code": _ref_code(q.get("category")),
        "statuses": ours,
        "requester_code": _ref_code(q.get("requester")),
        "performer_code": _ref_code(q.get("performer") or q.get("owner")),
        "limit": count,
    }
    ident = q.get("patient.identifier") or q.get("subject:identifier")
    if ident:
        common["patient_id_number"] = ident.split("|")[-1]
    staff = who.role in (Role.manager, Role.admin)
    if staff:
        found = svc.search_requests(session, **common)
        if ident and found:  # a person looked up by ID number: masked, but still a read about them
            svc.audit_read(
                session, who=who, action="telemed.fhir.search", target=f"{len(found)} requests (masked)"
            )
        return found, svc.sees_patient(who)
    inst = who.institution_code or "-"
    rows: dict[int, Request] = {}
    for side in ("requester_code", "performer_code"):
        if common[side] and common[side] != inst:
            continue
        for r in svc.search_requests(session, **{**common, side: inst}):
            rows[r.id] = r
    out = sorted(rows.values(), key=lambda r: (r.requested_at, r.id), reverse=True)[:count]
    if out:
        svc.audit_read(session, who=who, action="telemed.fhir.search", target=f"{len(out)} requests")
    return out, svc.sees_patient(who)


@router.get("/ServiceRequest/{request_id}")
def read_service_request(session: SessionDep, who: Viewers, request_id: str) -> JSONResponse:
    """One ServiceRequest."""
    try:
        with session.begin():
            req, full = svc.visible_request(session, request_id=_id(request_id, "ServiceRequest"), who=who)
            return _fhir(service_request(req, full))
    except RhipError as exc:
        return _outcome(exc)


@router.get("/ServiceRequest")
def search_service_requests(request: HttpRequest, session: SessionDep, who: Viewers) -> JSONResponse:
    """Search by status, category (centre), requester, performer, patient.identifier."""
    try:
        with session.begin():
            rows, full = _search(session, request, who)
            return _fhir(_bundle(request, [service_request(r, full) for r in rows]))
    except RhipError as exc:
        return _outcome(exc)


@router.get("/Task/{task_id}")
def read_task(session: SessionDep, who: Viewers, task_id: str) -> JSONResponse:
    """One Task."""
    try:
        with session.begin():
            req, full = svc.visible_request(session, request_id=_id(task_id, "Task"), who=who)
            return _fhir(task(req, full))
    except RhipError as exc:
        return _outcome(exc)


@router.get("/Task")
def search_tasks(request: HttpRequest, session: SessionDep, who: Viewers) -> JSONResponse:
    """Search by status, owner, requester, category, patient.identifier."""
    try:
        with session.begin():
            rows, full = _search(session, request, who)
            return _fhir(_bundle(request, [task(r, full) for r in rows]))
    except RhipError as exc:
        return _outcome(exc)


def _report_for(session: Session, rep: Report, full: bool) -> dict[str, Any]:
    req = svc.get_request(session, request_id=rep.request_id)
    study = session.scalar(select(Study).where(Study.request_id == req.id))
    return diagnostic_report(rep, req, full, study)


@router.get("/DiagnosticReport/{report_id}")
def read_report(session: SessionDep, who: Viewers, report_id: str) -> JSONResponse:
    """One DiagnosticReport."""
    try:
        with session.begin():
            rep = svc.get_report_by_id(session, report_id=_id(report_id, "DiagnosticReport"))
            _req, full = svc.visible_request(session, request_id=rep.request_id, who=who)
            return _fhir(_report_for(session, rep, full))
    except RhipError as exc:
        return _outcome(exc)


@router.get("/DiagnosticReport")
def search_reports(request: HttpRequest, session: SessionDep, who: Viewers) -> JSONResponse:
    """Search by based-on (ServiceRequest/<id>), category, performer, patient.identifier."""
    try:
        with session.begin():
            based = request.query_params.get("based-on")
            if based:
                req, full = svc.visible_request(session, request_id=_id(based, "ServiceRequest"), who=who)
                rep = svc.get_report(session, request_id=req.id)
                found = [_report_for(session, rep, full)] if rep else []
                return _fhir(_bundle(request, found))
            rows, full = _search(session, request, who)
            reps = (
                {
                    r.request_id: r
                    for r in session.scalars(
                        select(Report).where(Report.request_id.in_([x.id for x in rows]))
                    )
                }
                if rows
                else {}
            )
            return _fhir(
                _bundle(request, [_report_for(session, reps[r.id], full) for r in rows if r.id in reps])
            )
    except RhipError as exc:
        return _outcome(exc)


_SEARCH = [
    {"name": "status", "type": "token"},
    {"name": "category", "type": "token", "documentation": "远程医疗中心代码"},
    {"name": "requester", "type": "reference"},
    {"name": "performer", "type": "reference"},
    {"name": "patient.identifier", "type": "token"},
    {"name": "_count", "type": "number"},
]
# this module's part of the CapabilityStatement (rhip.fhir.capability merges every module's FHIR_REST)
FHIR_REST: dict[str, Any] = {
    "resource": [
        {
            "type": t,
            "documentation": doc,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [*_SEARCH, *extra],
        }
        for t, doc, extra in (
            ("ServiceRequest", "远程医疗申请（会诊、影像、心电、临检、病理）", []),
            (
                "Task",
                "远程医疗任务（申请 → 接收 → 处理中 → 完成 / 拒绝 / 取消）",
                [{"name": "owner", "type": "reference"}],
            ),
            ("DiagnosticReport", "远程医疗中心出具的报告", [{"name": "based-on", "type": "reference"}]),
        )
    ]
}
