"""FHIR R4 read and search of the shared record under /fhir/r4, consent enforced and every read logged:
`Patient/{id}/$everything` (DiagnosticReports included), `Encounter`, `Condition`, `Observation`,
`MedicationRequest`, `AllergyIntolerance` searches by `patient` (with `date`, `category`, `_count`, `_offset`
and paging links), an `AllergyIntolerance` read by id, the resident's own vital signs posted as
`Observation`, `Consent?patient=` and `AuditEvent` (IHE BALP-style). The Patient id here is the EMPI person
id; refusals are OperationOutcomes. Each view is one logged transaction (`records.viewing`); the mapping to
FHIR resources is `fhir_resources`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.errors import Invalid, NotFound, RhipError
from rhip.records import audit, consent, service
from rhip.records.consent import Access
from rhip.records.fhir_resources import KINDS, allergy_intolerance, audit_event, consent_resource, resources
from rhip.records.models import AccessLog
from rhip.records.viewing import view
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(tags=["fhir"])
Readers = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor, Role.resident))]
Auditor = Annotated[Principal, Depends(require(Role.auditor, Role.admin))]
Resident = Annotated[Principal, Depends(require(Role.resident))]
FHIR_JSON = "application/fhir+json"
T = TypeVar("T")
MAX_COUNT = 1000
DEFAULT_COUNT = 100


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON)


def outcome(status: int, code: str, text: str, expression: str | None = None) -> Response:
    """An OperationOutcome answer."""
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": text}
    if expression:
        issue["expression"] = [expression]
    return _json({"resourceType": "OperationOutcome", "issue": [issue]}, status)


ISSUE_CODES = {
    401: "login",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    429: "throttled",
    503: "transient",
}


def _guard(fn: Callable[[], Response]) -> Response:
    try:
        return fn()
    except RhipError as exc:
        return outcome(exc.status, ISSUE_CODES.get(exc.status, "invalid"), exc.detail)


def _view(
    session: Session,
    principal: Principal,
    person_id: str,
    action: str,
    read: Callable[[Access], T],
    detail: str = "",
) -> tuple[Access, T]:
    """One logged view (records.viewing): a resident's `me` (or no patient) is their own record."""
    pid = None if principal.role == Role.resident and person_id in ("me", "") else person_id[:40]
    return view(session, principal=principal, person_id=pid, action=action, read=read, detail=detail)


def _count(request: Request) -> tuple[int, int]:
    q = request.query_params
    try:
        count = int(q.get("_count", DEFAULT_COUNT))
        offset = int(q.get("_offset", 0))
    except ValueError:
        raise Invalid("_count 和 _offset 必须是整数", code="fhir-bad-count") from None
    if not 0 <= offset <= 10**6:
        raise Invalid("_offset 应在 0–1000000 之间", code="fhir-bad-offset")
    return min(max(count, 1), MAX_COUNT), offset


def _dates(values: list[str]) -> tuple[datetime | None, datetime | None]:
    lo = hi = None
    for v in values:
        prefix, text = (v[:2], v[2:]) if v[:2] in ("ge", "gt", "le", "lt", "eq") else ("eq", v)
        try:
            t = datetime.fromisoformat(text if "T" in text else text + "T00:00:00+08:00")
        except ValueError:
            raise Invalid(f"date 参数格式错误：{v}", code="fhir-bad-date") from None
        if not 1900 <= t.year <= 2100:
            raise Invalid(f"date 超出范围：{v}", code="fhir-bad-date")
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        if prefix in ("ge", "gt", "eq"):
            lo = t
        if prefix in ("le", "lt"):
            hi = t
    return lo, hi


def _bundle(
    request: Request, res: list[dict[str, Any]], total: int, count: int, offset: int
) -> dict[str, Any]:
    base = str(request.url).split("?")[0]
    params = dict(request.query_params)
    links = [{"relation": "self", "url": f"{base}?{urlencode(params)}"}]
    if offset + count < total:
        links.append(
            {"relation": "next", "url": f"{base}?{urlencode({**params, '_offset': offset + count})}"}
        )
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in res
        ],
    }


def _search(request: Request, session: Session, principal: Principal, rtype: str) -> Response:
    q = request.query_params
    patient = (q.get("patient") or q.get("subject") or "").removeprefix("Patient/")
    if not patient and principal.role != Role.resident:
        raise Invalid("必须给出 patient 参数", code="fhir-patient-required")
    count, offset = _count(request)
    lo, hi = _dates(q.getlist("date"))

    def read(access: Access) -> list[dict[str, Any]]:
        entries = service.timeline(
            session, access=access, kinds=list(KINDS[rtype]), start=lo, end=hi, limit=2000
        )
        return [r for e in entries for r in resources(e, access.person_id) if r["resourceType"] == rtype]

    _a, found = _view(session, principal, patient or "me", f"fhir-{rtype}", read)
    cat = q.get("category")
    if cat:
        found = [r for r in found if cat in orjson.dumps(r.get("category", [])).decode()]
    return _json(_bundle(request, found[offset : offset + count], len(found), count, offset))


def _searcher(rtype: str) -> Callable[..., Response]:
    def search(request: Request, session: SessionDep, principal: Readers) -> Response:
        return _guard(lambda: _search(request, session, principal, rtype))

    search.__doc__ = f"Search {rtype} of one patient (consent enforced; every search logged)."
    search.__name__ = f"search_{rtype.lower()}"
    return search


# DiagnosticReport search is the telemedicine centres' (their reports); a patient's reports come with
# $everything and as Observations here
SEARCHED = [t for t in KINDS if t != "DiagnosticReport"]
for _t in SEARCHED:
    router.add_api_route(f"/{_t}", _searcher(_t), methods=["GET"], response_class=Response)


@router.get("/Patient/{person_id}/$everything", response_class=Response)
def everything(person_id: str, request: Request, session: SessionDep, principal: Readers) -> Response:
    """Everything the caller may see of one patient, as a searchset Bundle."""

    def run() -> Response:
        count, offset = _count(request)
        _a, found = _view(
            session,
            principal,
            person_id,
            "everything",
            lambda access: [
                r
                for e in service.timeline(session, access=access, limit=2000)
                for r in resources(e, access.person_id)
            ],
        )
        return _json(_bundle(request, found[offset : offset + count], len(found), count, offset))

    return _guard(run)


@router.get("/AllergyIntolerance/{rid}", response_class=Response)
def read_allergy(rid: str, session: SessionDep, principal: Readers) -> Response:
    """One recorded allergy (过敏史) by id: its person is found through the EMPI, then the read is decided
    and logged like any view of that person's record (403 without consent)."""

    def run() -> Response:
        entry_id = _entry_id(rid)
        kinds = KINDS["AllergyIntolerance"]
        if principal.role == Role.resident:
            person = "me"
        else:
            with session.begin():
                person = service.person_of_entry(session, entry_id=entry_id, kinds=kinds)
        access, e = _view(
            session,
            principal,
            person,
            "fhir-AllergyIntolerance",
            lambda a: service.entry(session, access=a, entry_id=entry_id, kinds=kinds),
            detail=f"entry {entry_id}",
        )
        return _json(allergy_intolerance(e, access.person_id))

    return _guard(run)


def _entry_id(rid: str) -> int:
    """The entry behind a resource id `rhip-N` (NotFound for any other id)."""
    n = rid.removeprefix("rhip-")
    if not (rid.startswith("rhip-") and n.isdigit() and len(n) <= 18):
        raise NotFound(f"没有这个资源：{rid[:64]}", code="fhir-not-found")
    return int(n)


@router.post("/Observation", response_class=Response, status_code=201)
async def post_observation(request: Request, session: SessionDep, principal: Resident) -> Response:
    """A resident's own vital sign (blood pressure, glucose, weight …) as an Observation."""
    raw = await request.body()
    if len(raw) > 64 * 1024:
        return outcome(413, "too-costly", "Observation 过大")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return outcome(400, "structure", "请求体不是合法的 JSON")
    return _guard(lambda: _store_observation(session, principal, body))


def _store_observation(session: Session, principal: Principal, body: Any) -> Response:
    if not isinstance(body, dict) or body.get("resourceType") != "Observation":
        raise Invalid("需要 Observation 资源", code="fhir-not-observation")
    codes = [c.get("code") for c in ((body.get("code") or {}).get("coding") or []) if isinstance(c, dict)]
    kind = next((service.LOINC[c] for c in codes if c in service.LOINC), None)
    if kind is None:
        raise Invalid(
            f"不支持的 LOINC 编码：{codes}（可用：{', '.join(service.LOINC)}）", code="fhir-bad-code"
        )
    vq = body.get("valueQuantity") or {}
    value = vq.get("value") if isinstance(vq, dict) else None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise Invalid("valueQuantity.value 必须是数值", code="fhir-bad-value")
    unit = str(vq.get("code") or vq.get("unit") or "")
    expected = service.MEASURES[kind].unit
    if unit != expected:
        raise Invalid(
            f"{service.MEASURES[kind].label}的单位应为 {expected}，收到 {unit or '（空）'}",
            code="fhir-bad-unit",
        )
    when = None
    if body.get("effectiveDateTime"):
        try:
            when = datetime.fromisoformat(str(body["effectiveDateTime"]).replace("Z", "+00:00"))
        except ValueError:
            raise Invalid("effectiveDateTime 格式错误", code="fhir-bad-date") from None
        if when.tzinfo is None:
            raise Invalid("effectiveDateTime 必须带时区", code="fhir-bad-date")
    with session.begin():
        pid = consent.resident_person(session, principal)
        e = service.add_measurement(session, person_id=pid, kind=kind, value=float(value), measured_at=when)
        res = next(resources(e, pid))
    return _json(res, 201)


@router.get("/Consent", response_class=Response)
def consents(request: Request, session: SessionDep, principal: Readers) -> Response:
    """A patient's consents (the resident's own; a clinician's view is itself consent-checked)."""

    def run() -> Response:
        patient = (request.query_params.get("patient") or "").removeprefix("Patient/")
        _a, rows = _view(
            session,
            principal,
            patient or "me",
            "fhir-Consent",
            lambda access: consent.consents_of(session, person_id=access.person_id),
        )
        now_ = datetime.now(UTC)
        res = [consent_resource(c, now_) for c in rows]
        return _json(_bundle(request, res, len(res), len(res) or 1, 0))

    return _guard(run)


@router.get("/AuditEvent", response_class=Response)
def audit_events(request: Request, session: SessionDep, principal: Auditor) -> Response:
    """The record-access log as AuditEvents (IHE BALP-style: who, what patient, outcome, basis)."""

    def run() -> Response:
        count, offset = _count(request)
        q = select(AccessLog)
        patient = (request.query_params.get("patient") or "").removeprefix("Patient/")
        if patient:
            q = q.where(AccessLog.person_id == patient[:40])
        lo, hi = _dates(request.query_params.getlist("date"))
        if lo:
            q = q.where(AccessLog.at >= lo)
        if hi:
            q = q.where(AccessLog.at < hi)
        with session.begin():
            audit.auditor_read(
                session, principal=principal, person_id=patient[:40] or None, action="fhir-AuditEvent"
            )
            rows = session.scalars(q.order_by(AccessLog.id.desc()).offset(offset).limit(count + 1)).all()
        res = [audit_event(r) for r in rows[:count]]
        return _json(_bundle(request, res, offset + len(rows), count, offset))

    return _guard(run)


_PATIENT = {"name": "patient", "type": "reference", "documentation": "Patient/<主索引号>（须经患者授权）"}
_DATE = {"name": "date", "type": "date"}
_PAGING = [{"name": "_count", "type": "number"}, {"name": "_offset", "type": "number"}]
# this module's part of the CapabilityStatement (rhip.fhir.capability merges every module's FHIR_REST)
FHIR_REST: dict[str, Any] = {
    "resource": [
        *(
            {
                "type": t,
                "documentation": "共享健康档案（经患者授权；每次调阅记入审计日志）",
                "interaction": [{"code": "search-type"}],
                "searchParam": [_PATIENT, _DATE, {"name": "category", "type": "token"}, *_PAGING],
            }
            for t in SEARCHED
            if t not in ("Observation", "AllergyIntolerance")
        ),
        {
            "type": "AllergyIntolerance",
            "documentation": "过敏史（WS 445；经患者授权；每次调阅记入审计日志）",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [_PATIENT, _DATE, *_PAGING],
        },
        {
            "type": "Observation",
            "documentation": "检验结果与居民自测数据；居民可 create 自己的体征（vital-signs，LOINC，UCUM）",
            "interaction": [{"code": "search-type"}, {"code": "create"}],
            "searchParam": [_PATIENT, _DATE, {"name": "category", "type": "token"}, *_PAGING],
        },
        {
            "type": "Patient",
            "operation": [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ],
        },
        {
            "type": "Consent",
            "documentation": "居民的授权、一次性授权码与紧急调阅",
            "interaction": [{"code": "search-type"}],
            "searchParam": [_PATIENT],
        },
        {
            "type": "AuditEvent",
            "documentation": "健康档案调阅审计（IHE BALP 风格；审计员）",
            "interaction": [{"code": "search-type"}],
            "searchParam": [_PATIENT, _DATE, *_PAGING],
        },
    ]
}
