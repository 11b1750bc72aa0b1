"""FHIR R4 booking resources under /fhir/r4: Schedule, Slot, Appointment, and the SMART Scheduling
Links `$bulk-publish` feed of free slots (manifest + NDJSON). Resources are built and validated with
fhir.resources (R4B models); refusals are OperationOutcomes naming the booking rule."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from sqlalchemy.orm import Session

from rhip import clock
from rhip.booking import bulkpub, entry, schedules as rota, service as svc
from rhip.booking.fhir_map import (
    APPT_STATUS,
    DOC_SERIAL_SYSTEM,
    ID_SYSTEM,
    V2_0203,
    _date_bounds,
    _ref_id,
    _token,
    appointment_resource,
    bundle,
    count_param,
    fhir,
    fhir_base,
    outcome,
    schedule_resource,
    slot_resource,
)
from rhip.clock import SHANGHAI
from rhip.errors import BadRequest, Invalid, NotFound, RhipError
from rhip.security.deps import SessionDep, audit_read, public, require
from rhip.security.masking import Masker
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter()
SessionDep = SessionDep
BOOKERS = (Role.resident, Role.agent, Role.doctor, Role.family_doctor, Role.uploader)
Bookers = Annotated[Principal, Depends(require(*BOOKERS))]
Viewers = Annotated[Principal, Depends(require(*BOOKERS, Role.manager, Role.admin))]
KEY_MAX = 120  # characters of an idempotency key (If-None-Exist or Idempotency-Key), as in the JSON API
_COUNT = {"name": "_count", "type": "number", "documentation": "每页条数，1–1000"}
_DEPT = {"name": "specialty", "type": "token", "documentation": "科室代码"}
_SERVICE = {"name": "service-type", "type": "token"}
BULK_PUBLISH = "https://github.com/smart-on-fhir/smart-scheduling-links/blob/master/specification.md"

# this module's part of the CapabilityStatement (rhip.fhir.capability merges every module's FHIR_REST)
FHIR_REST: dict[str, Any] = {
    "resource": [
        {
            "type": "Schedule",
            "documentation": "已发布的出诊排班（公开）",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": "actor", "type": "reference", "documentation": "Location/<医院机构代码>"},
                {"name": "date", "type": "date"},
                _DEPT,
                _SERVICE,
                _COUNT,
            ],
        },
        {
            "type": "Slot",
            "documentation": "号源（分钟级时段；capacity 扩展为公众余号）",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": "schedule", "type": "reference"},
                {"name": "start", "type": "date"},
                {"name": "status", "type": "token", "documentation": "free | busy | busy-unavailable"},
                _DEPT,
                _SERVICE,
                _COUNT,
            ],
        },
        {
            "type": "Appointment",
            "documentation": "预约挂号：create 即预约（If-None-Exist/Idempotency-Key 为幂等键）；"
            "update/patch 只接受 status=cancelled（取消）",
            "interaction": [
                {"code": "create"},
                {"code": "read"},
                {"code": "search-type"},
                {"code": "update"},
                {"code": "patch"},
            ],
            "searchParam": [
                {"name": "patient", "type": "reference", "documentation": "Patient/<身份证号> 或身份证号"},
                {"name": "actor", "type": "reference"},
                {"name": "date", "type": "date"},
                {"name": "status", "type": "token"},
            ],
        },
    ],
    "operation": [
        {
            "name": "bulk-publish",
            "definition": BULK_PUBLISH,
            "documentation": "SMART Scheduling Links：Location、Schedule、未来 14 天空闲 Slot 的 NDJSON",
        }
    ],
}


# ------------------------------------------------------------------ Schedule


@router.get("/Schedule", dependencies=[Depends(public())])
def search_schedules(request: Request, session: SessionDep) -> JSONResponse:
    """Search schedules by actor (Location/<hospital>), date, specialty, service-type."""
    q = request.query_params
    try:
        lo, hi = _date_bounds(q.getlist("date"))
        actor = q.get("actor")
        with session.begin():
            items = rota.get_all_schedules(
                session,
                hospital_code=actor.rsplit("/", 1)[-1] if actor else None,
                department_code=_token(q.get("specialty")),
                service_type=_token(q.get("service-type")),
                date_from=lo.astimezone(SHANGHAI).date() if lo else None,
                date_to=(hi - timedelta(microseconds=1)).astimezone(SHANGHAI).date() if hi else None,
                limit=min(count_param(q.get("_count"), 100), 500),
            )
            return fhir(bundle(request, [schedule_resource(s) for s in items]))
    except RhipError as exc:
        return outcome(exc)


@router.get("/Schedule/{schedule_id}", dependencies=[Depends(public())])
def read_schedule(schedule_id: str, session: SessionDep) -> JSONResponse:
    """One Schedule."""
    try:
        with session.begin():
            return fhir(
                schedule_resource(rota.get_schedule(session, schedule_id=_ref_id(schedule_id, "Schedule")))
            )
    except RhipError as exc:
        return outcome(exc)


# ------------------------------------------------------------------ Slot


@router.get("/Slot", dependencies=[Depends(public())])
def search_slots(request: Request, session: SessionDep) -> JSONResponse:
    """Search slots by schedule, start, status (free/busy/busy-unavailable), service-type, specialty."""
    q = request.query_params
    try:
        lo, hi = _date_bounds(q.getlist("start"))
        schedules = [_ref_id(v, "Schedule") for raw in q.getlist("schedule") for v in raw.split(",")]
        status = q.get("status")
        with session.begin():
            slots = rota.find_slots(
                session,
                schedule_ids=schedules or None,
                department_code=_token(q.get("specialty")),
                service_type=_token(q.get("service-type")),
                start_from=lo,
                start_to=hi,
                free_only=status == "free",
                limit=count_param(q.get("_count"), 200),
            )
            scheds = {
                s.id: s for s in rota.get_all_schedules_by_ids(session, ids={x.schedule_id for x in slots})
            }
            t = clock.now()
            out = [slot_resource(s, scheds[s.schedule_id], t) for s in slots]
        if status:
            wanted = set(status.split(","))
            out = [r for r in out if r["status"] in wanted]
        return fhir(bundle(request, out))
    except RhipError as exc:
        return outcome(exc)
    except ValueError:
        return outcome(Invalid("参数无效", code="bad-parameter"))


@router.get("/Slot/{slot_id}", dependencies=[Depends(public())])
def read_slot(slot_id: str, session: SessionDep) -> JSONResponse:
    """One Slot."""
    try:
        with session.begin():
            slot = rota.get_slot(session, slot_id=_ref_id(slot_id, "Slot"))
            return fhir(slot_resource(slot, rota.get_schedule(session, schedule_id=slot.schedule_id)))
    except RhipError as exc:
        return outcome(exc)


# ------------------------------------------------------------------ Appointment


def _national_id(ident: dict[str, Any]) -> bool:
    """An identifier is the national ID when its system is WS/T 500's 1.3 (or absent) or it is typed
    v2-0203 NNCHN; 1.1 is a document's serial number and any other system is some other number."""
    typed = ident.get("type")
    for c in typed.get("coding") or [] if isinstance(typed, dict) else []:
        if isinstance(c, dict) and c.get("code") == "NNCHN" and c.get("system") in (V2_0203, None):
            return True
    return ident.get("system") in (None, "", ID_SYSTEM)


def _patient_id(body: dict[str, Any]) -> tuple[str, str | None]:
    for p in body.get("participant") or []:
        actor = p.get("actor") if isinstance(p, dict) else None
        if not isinstance(actor, dict):
            continue
        got, ref, shown = actor.get("identifier"), actor.get("reference"), actor.get("display")
        ident: dict[str, Any] = got if isinstance(got, dict) else {}
        display = shown if isinstance(shown, str) else None
        if ident.get("value"):
            if not _national_id(ident):
                hint = "（…10011.1.1 是文档流水号）" if ident.get("system") == DOC_SERIAL_SYSTEM else ""
                raise Invalid(
                    f"患者标识应为身份证号：system 为 {ID_SYSTEM}，或类型为 v2-0203 NNCHN{hint}",
                    code="patient-identifier",
                )
            return str(ident["value"]), display
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref.split("/", 1)[1], display
    raise Invalid("Appointment.participant 中缺少 Patient（身份证号码）", code="patient-required")


async def _any_json(request: Request) -> Any:
    """The body as JSON; too deep, malformed or not UTF-8 is a 400 (orjson stops at 1,024 levels)."""
    try:
        return orjson.loads(await request.body())
    except (orjson.JSONDecodeError, RecursionError):
        raise BadRequest("请求体不是有效的 JSON", code="bad-json") from None


async def _json(request: Request) -> dict[str, Any]:
    body = await _any_json(request)
    if not isinstance(body, dict):
        raise BadRequest("请求体应为 JSON 对象", code="bad-json")
    return body


@router.post("/Appointment")
async def create_appointment(request: Request, principal: Bookers) -> Response:
    """Book with `slot` and a Patient participant → 201 booked, or 409 OperationOutcome naming the rule."""
    try:
        body = await _json(request)
        if body.get("resourceType") != "Appointment":
            raise Invalid("resourceType 应为 Appointment", code="bad-resource")
        FhirAppointment.model_validate({**body, "status": body.get("status") or "proposed"})
        slots = body.get("slot") or []
        if len(slots) != 1 or not slots[0].get("reference"):
            raise Invalid("Appointment.slot 应恰好引用一个 Slot", code="slot-required")
        slot_id = _ref_id(slots[0]["reference"], "Slot")
        person, name = _patient_id(body)
        key = request.headers.get("if-none-exist") or request.headers.get("idempotency-key")
        if key and len(key) > KEY_MAX:  # the JSON API's limit: a longer key would not fit its column
            raise Invalid(f"幂等键不能超过 {KEY_MAX} 个字符", code="bad-idempotency-key")
    except RhipError as exc:
        return outcome(exc)
    except ValueError as exc:
        return outcome(Invalid(f"Appointment 资源校验未通过：{str(exc)[:300]}", code="bad-resource"))
    db = request.app.state.db

    try:  # booking/entry.py: the batched call on PostgreSQL, the one-by-one write on SQLite
        answer, created = await entry.book(
            db, slot_id=slot_id, person=person, person_name=name, actor=principal, idempotency_key=key
        )
        res = Masker(principal).fhir(appointment_resource(answer))
    except RhipError as exc:
        return outcome(exc)
    return fhir(res, 201 if created else 200, headers={"Location": f"/fhir/r4/Appointment/{res['id']}"})


@router.get("/Appointment")
def search_appointments(request: Request, session: SessionDep, principal: Viewers) -> JSONResponse:
    """Search by patient (Patient/<ID number> or the number), date, status."""
    q = request.query_params
    try:
        patient = q.get("patient") or q.get("actor")
        person = patient.rsplit("/", 1)[-1].split("|")[-1] if patient else None
        lo, hi = _date_bounds(q.getlist("date"))
        status = q.get("status")
        wanted = set(status.split(",")) if status else None
        with session.begin():
            items = svc.get_all_appointments(session, actor=principal, person=person, limit=500)
            out = [
                appointment_resource(a)
                for a in items
                if (lo is None or a.starts_at >= lo) and (hi is None or a.starts_at < hi)
            ]
            if wanted:
                out = [r for r in out if r["status"] in wanted]
            if out:
                audit_read(session, request, principal, what="fhir.appointments", results=len(out))
        return fhir(Masker(principal).fhir(bundle(request, out)))
    except RhipError as exc:
        return outcome(exc)


@router.get("/Appointment/{appointment_id}")
def read_appointment(
    appointment_id: str, request: Request, session: SessionDep, principal: Viewers
) -> JSONResponse:
    """One Appointment (the patient masked by role: security.masking)."""
    try:
        with session.begin():
            appt = svc.get_appointment(session, appointment_id=_ref_id(appointment_id, "Appointment"))
            svc.check_access(principal, appt)
            audit_read(session, request, principal, what="fhir.appointment", target=str(appt.id))
            return fhir(Masker(principal).fhir(appointment_resource(appt)))
    except RhipError as exc:
        return outcome(exc)


def _cancel(session: Session, appointment_id: str, principal: Principal, reason: str | None) -> JSONResponse:
    with session.begin():
        appt = svc.get_appointment(session, appointment_id=_ref_id(appointment_id, "Appointment"))
        svc.check_access(principal, appt)
        if APPT_STATUS.get(appt.status) != "cancelled":
            appt = svc.cancel(session, appointment_id=appt.id, actor=principal, reason=reason)
        return fhir(Masker(principal).fhir(appointment_resource(appt)))


@router.put("/Appointment/{appointment_id}")
async def update_appointment(
    appointment_id: str, request: Request, session: SessionDep, principal: Viewers
) -> JSONResponse:
    """Update: setting `status` to `cancelled` cancels the booking (the only change accepted)."""
    try:
        body = await _json(request)
        if body.get("status") != "cancelled":
            raise Invalid("只支持把 status 改为 cancelled（取消预约）", code="unsupported-update")
        why = body.get("cancelationReason")
        if why is not None and not (isinstance(why, dict) and isinstance(why.get("text"), str | None)):
            raise Invalid("cancelationReason 应为 CodeableConcept（含 text）", code="bad-resource")
        reason = why.get("text") if why else None
        return await run_in_threadpool(_cancel, session, appointment_id, principal, reason)
    except RhipError as exc:
        return outcome(exc)


@router.patch("/Appointment/{appointment_id}")
async def patch_appointment(
    appointment_id: str, request: Request, session: SessionDep, principal: Viewers
) -> JSONResponse:
    """JSON Patch (`replace /status cancelled`) or merge patch (`{"status": "cancelled"}`) cancels."""
    try:
        raw = await _any_json(request)
        if not isinstance(raw, list | dict):
            raise BadRequest("PATCH 请求体应为 JSON Patch 数组或 JSON 对象", code="bad-json")
        ops = (
            raw
            if isinstance(raw, list)
            else [{"op": "replace", "path": "/status", "value": raw.get("status")}]
        )
        wanted = [o for o in ops if isinstance(o, dict) and o.get("path") == "/status"]
        if not wanted or wanted[-1].get("value") != "cancelled":
            raise Invalid("只支持把 status 改为 cancelled（取消预约）", code="unsupported-update")
        return await run_in_threadpool(_cancel, session, appointment_id, principal, None)
    except RhipError as exc:
        return outcome(exc)


# ------------------------------------------------------------------ SMART Scheduling Links bulk publish


@router.get("/$bulk-publish", dependencies=[Depends(public())])
def bulk_publish(request: Request) -> JSONResponse:
    """The SMART Scheduling Links manifest: NDJSON files of locations, schedules and free slots (nothing
    is read here; each file is built when it is asked for, bulkpub.py)."""
    base = fhir_base(request) + "/$bulk-publish"
    return JSONResponse(
        {
            "transactionTime": clock.now().astimezone(SHANGHAI).isoformat(),
            "request": base,
            "output": [{"type": t, "url": f"{base}/{t}.ndjson"} for t in bulkpub.KINDS],
            "error": [],
        }
    )


@router.get("/$bulk-publish/{kind}.ndjson", dependencies=[Depends(public())])
def bulk_file(kind: str, request: Request) -> Response:
    """One NDJSON file of the published feed, streamed a page of rows at a time."""
    if kind not in bulkpub.KINDS:
        return outcome(NotFound(f"没有这个文件：{kind}.ndjson", code="no-file"))
    lines = bulkpub.lines(request.app.state.db, kind, clock.now())
    return StreamingResponse(lines, media_type="application/fhir+ndjson")
