"""Booking ↔ FHIR R4 mapping: Schedule, Slot and Appointment resources (validated with fhir.resources
R4B models), OperationOutcomes naming the refusing rule, search bundles and search-parameter parsing."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.location import Location as FhirLocation
from fhir.resources.R4B.schedule import Schedule as FhirSchedule
from fhir.resources.R4B.slot import Slot as FhirSlot

from rhip.booking import common, schedules as rota
from rhip.booking.models import Appointment, Schedule, Slot
from rhip.booking.rules import SESSIONS
from rhip.clock import SHANGHAI
from rhip.errors import Invalid, RhipError
from rhip.registry import data as reg_data
from rhip.registry.data import InstitutionRecord

FHIR_JSON = "application/fhir+json"
ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"  # WS/T 500 居民身份证号（…1.1 is a document's serial number)
DOC_SERIAL_SYSTEM = "urn:oid:2.16.156.10011.1.1"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
COUNT_MAX = 1000  # _count is clamped to 1..COUNT_MAX
FIRST_DAY = date(1900, 1, 1)  # date search bounds: outside them a parameter is refused, not overflowed
LAST_DAY = date(2999, 12, 31)
DEPT_SYSTEM = "urn:rhip:department"  # 诊疗科目代码
SERVICE_SYSTEM = "urn:rhip:service-type"
INSTITUTION_SYSTEM = "urn:rhip:institution"
CAPACITY_EXT = "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity"
PHONE_EXT = "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-phone"
APPT_STATUS = {
    "held": "pending",
    "booked": "booked",
    "checked_in": "arrived",
    "no_show": "noshow",
    "excused": "cancelled",
    "cancelled": "cancelled",
    "stopped": "cancelled",
    "expired": "cancelled",
}


def fhir(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    """A FHIR JSON response."""
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def _dump(model: Any) -> dict[str, Any]:
    return json.loads(model.model_dump_json(exclude_none=True))  # type: ignore[no-any-return]


def outcome(exc: RhipError) -> JSONResponse:
    """An OperationOutcome for a refused request; details.coding.code names the rule (e.g. slot-full)."""
    code = {409: "conflict", 404: "not-found", 403: "forbidden", 401: "login"}.get(exc.status, "invalid")
    if exc.status == 409 and exc.code not in ("slot-full", "idempotency-key-reused"):
        code = "business-rule"
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": code,
                "details": {
                    "coding": [{"system": "urn:rhip:booking-rule", "code": exc.code}],
                    "text": exc.detail,
                },
                "diagnostics": exc.detail,
            }
        ],
    }
    return fhir(body, exc.status)


def _iso(t: datetime) -> str:
    return t.astimezone(SHANGHAI).isoformat()


def _concepts(s: Schedule) -> dict[str, Any]:
    return {
        "serviceType": [
            {"coding": [{"system": SERVICE_SYSTEM, "code": s.service_type}], "text": s.service_type}
        ],
        "specialty": [
            {"coding": [{"system": DEPT_SYSTEM, "code": s.department_code, "display": s.department_name}]}
        ],
    }


def schedule_resource(s: Schedule) -> dict[str, Any]:
    """A schedule as a FHIR Schedule."""
    inst = reg_data.get(s.hospital_code)
    res = FhirSchedule(
        id=str(s.id),
        active=s.status == "open",
        actor=[
            {"reference": f"Location/{s.hospital_code}", "display": inst.name if inst else s.hospital_code},
            {"display": f"{s.doctor_name}（{s.doctor_title}）"},
        ],
        planningHorizon={"start": _iso(s.starts_at), "end": _iso(s.ends_at)},
        comment=f"{s.department_name} {SESSIONS[s.session][2]}"
        + (f"（停诊：{s.stop_reason}）" if s.stop_reason else ""),
        **_concepts(s),
    )
    return _dump(res)


def location_resource(code: str, inst: InstitutionRecord) -> dict[str, Any]:
    """A hospital (its code as booking holds it) as a FHIR Location; the booking phone is 12320."""
    loc = FhirLocation(
        id=code,
        name=inst.name,
        identifier=[{"system": INSTITUTION_SYSTEM, "value": code}],
        telecom=[{"system": "phone", "value": "12320"}],
        address={"city": inst.city, "district": inst.district, "state": "江苏省", "country": "CN"},
    )
    return _dump(loc)


def slot_status(slot: Slot, at: datetime | None = None) -> str:
    """free when the public can book it now; busy when full; busy-unavailable when stopped or unreleased."""
    a = rota.availability(slot, at=at)
    if slot.status != "open" or not a.public_open:
        return "busy-unavailable"
    return "free" if a.public_left > 0 else "busy"


def slot_resource(slot: Slot, sched: Schedule, at: datetime | None = None) -> dict[str, Any]:
    """A slot as a FHIR Slot (SMART Scheduling Links capacity extension = public places left)."""
    left = rota.availability(slot, at=at).public_left
    res = FhirSlot(
        id=str(slot.id),
        schedule={"reference": f"Schedule/{slot.schedule_id}"},
        status=slot_status(slot, at),
        start=_iso(slot.starts_at),
        end=_iso(slot.ends_at),
        extension=[
            {"url": CAPACITY_EXT, "valueInteger": left},
            {"url": PHONE_EXT, "valueString": "12320"},
        ],
        **_concepts(sched),
    )
    return _dump(res)


def appointment_resource(a: Appointment | Any) -> dict[str, Any]:
    """An appointment (or anything with its columns as attributes, e.g. a batched answer) as FHIR."""
    patient: dict[str, Any] = {
        "reference": f"Patient/{a.person_id}",
        "identifier": {"system": ID_SYSTEM, "value": a.person_id},
    }
    if a.person_name:
        patient["display"] = a.person_name
    res = FhirAppointment(
        id=str(a.id),
        status=APPT_STATUS.get(a.status, "booked"),
        slot=[{"reference": f"Slot/{a.slot_id}"}],
        start=_iso(a.starts_at),
        end=_iso(a.ends_at),
        created=_iso(a.created_at),
        description=common.STATUS_LABELS.get(a.status, a.status),
        cancelationReason={"text": a.cancel_reason} if a.cancel_reason else None,
        participant=[
            {"actor": patient, "status": "accepted"},
            {"actor": {"reference": f"Location/{a.hospital_code}"}, "status": "accepted"},
        ],
        identifier=[{"system": "urn:rhip:booking-channel", "value": a.channel}],
    )
    return _dump(res)


def fhir_base(request: Request) -> str:
    """The configured public base URL of the FHIR server (never the request's Host header)."""
    return str(request.app.state.settings.fhir_base_url).rstrip("/")


def self_link(request: Request) -> str:
    """The request's URL rebuilt on the configured base."""
    path = request.url.path
    tail = path.split("/fhir/r4", 1)[-1] if "/fhir/r4" in path else path
    query = request.url.query
    return fhir_base(request) + tail + (f"?{query}" if query else "")


def bundle(request: Request, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A searchset Bundle (links on the configured base URL)."""
    base = fhir_base(request)
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": self_link(request)}],
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


def _ref_id(value: str, kind: str) -> int:
    raw = value.rsplit("/", 1)[-1] if value.startswith(f"{kind}/") or "/" in value else value
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{kind} 引用无效：{value}", code="bad-reference") from None


def _date_bounds(values: list[str]) -> tuple[datetime | None, datetime | None]:
    """FHIR date search (eq, ge, gt, le, lt; a day or an instant) as a [from, to) window."""
    lo: datetime | None = None
    hi: datetime | None = None
    for raw in values:
        prefix, value = (raw[:2], raw[2:]) if raw[:2] in ("eq", "ge", "gt", "le", "lt") else ("eq", raw)
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                start = datetime.combine(day, datetime.min.time(), SHANGHAI)
                end = start + timedelta(days=1)
            else:
                start = datetime.fromisoformat(value.replace("Z", "+00:00"))
                if start.tzinfo is None:
                    start = start.replace(tzinfo=SHANGHAI)
                end = start + timedelta(seconds=1)
        except (ValueError, OverflowError):
            raise Invalid(f"日期参数无效：{raw[:40]}", code="bad-date") from None
        if not FIRST_DAY <= start.date() <= LAST_DAY:
            raise Invalid(
                f"日期参数超出范围（{FIRST_DAY.year}–{LAST_DAY.year} 年）：{raw[:40]}", code="bad-date"
            )
        if prefix in ("eq", "ge"):
            lo = max(lo, start) if lo else start
        if prefix == "gt":
            lo = max(lo, end) if lo else end
        if prefix in ("eq", "le"):
            hi = min(hi, end) if hi else end
        if prefix == "lt":
            hi = min(hi, start) if hi else start
    return lo, hi


def _token(value: str | None) -> str | None:
    return value.split("|")[-1] if value else None


def count_param(raw: str | None, default: int) -> int:
    """`_count` as an integer clamped to 1..COUNT_MAX (a non-integer is refused)."""
    if raw is None or raw == "":
        return min(default, COUNT_MAX)
    try:
        n = int(raw)
    except ValueError:
        raise Invalid(f"_count 应为整数：{raw[:20]}", code="bad-count") from None
    return max(1, min(n, COUNT_MAX))
