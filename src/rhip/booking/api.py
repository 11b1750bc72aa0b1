"""Booking JSON API, mounted at /api/v1/booking: find, book, cancel, manage schedules, rules, referrals."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from rhip.booking import (
    calendar as cal,
    jobs as booking_jobs,
    referrals as booking_referrals,
    service as svc,
    stats,
)
from rhip.booking.rules import RULE_FIELDS
from rhip.booking.schemas import (
    AppealCreate,
    AppealDecision,
    AppealRead,
    AppointmentCreate,
    AppointmentRead,
    CalendarDayRead,
    CancelRequest,
    DepartmentRead,
    HospitalRead,
    ReferralDown,
    ReferralRead,
    ReferralStatus,
    ReferralUp,
    ScheduleBatch,
    ScheduleCreate,
    ScheduleRead,
    SigningCreate,
    SlotRead,
    StopRequest,
    WaitlistCreate,
    WaitlistRead,
)
from rhip.clock import local_now
from rhip.db.engine import Database
from rhip.errors import Forbidden, Invalid
from rhip.registry import data as reg_data
from rhip.security.deps import SessionDep, public, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter()

SessionDep = SessionDep
BOOKERS = (Role.resident, Role.agent, Role.doctor, Role.family_doctor, Role.uploader)
STAFF = (Role.doctor, Role.manager, Role.admin)
Bookers = Annotated[Principal, Depends(require(*BOOKERS))]
Viewers = Annotated[Principal, Depends(require(*BOOKERS, Role.manager, Role.admin))]
Staff = Annotated[Principal, Depends(require(*STAFF))]
Managers = Annotated[Principal, Depends(require(Role.manager, Role.admin))]


def _window(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    start = date_from or local_now().date()
    return start, date_to or start + timedelta(days=14)


# ------------------------------------------------------------------ finding (public)


@router.get("/hospitals", response_model=list[HospitalRead], dependencies=[Depends(public())])
def list_hospitals(
    session: SessionDep, date_from: date | None = None, date_to: date | None = None
) -> list[HospitalRead]:
    """Hospitals with published schedules in a window (default the next two weeks) and places left."""
    start, end = _window(date_from, date_to)
    with session.begin():
        rows = booking_referrals.hospitals_with_schedules(session, date_from=start, date_to=end)
    out = []
    for code, left in rows:
        inst = reg_data.get(code)
        if inst is not None:
            out.append(
                HospitalRead(
                    code=code,
                    name=inst.name,
                    level=inst.level,
                    tertiary=inst.tertiary,
                    district=inst.district,
                    city=inst.city,
                    public_left=left,
                )
            )
    return sorted(out, key=lambda h: (not h.tertiary, h.code))


@router.get(
    "/hospitals/{code}/departments", response_model=list[DepartmentRead], dependencies=[Depends(public())]
)
def list_departments(
    code: str, session: SessionDep, date_from: date | None = None, date_to: date | None = None
) -> list[DepartmentRead]:
    """A hospital's departments with schedules in the window."""
    start, end = _window(date_from, date_to)
    with session.begin():
        svc.hospital(code)
        rows = booking_referrals.departments_of(session, hospital_code=code, date_from=start, date_to=end)
    return [DepartmentRead(code=c, name=n, public_left=left) for c, n, left in rows]


@router.get("/schedules", response_model=list[ScheduleRead], dependencies=[Depends(public())])
def list_schedules(
    session: SessionDep,
    hospital: str | None = None,
    department: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ScheduleRead]:
    """Published schedules with the public places left in each."""
    start, end = _window(date_from, date_to)
    with session.begin():
        items = svc.get_all_schedules(
            session,
            hospital_code=hospital,
            department_code=department,
            date_from=start,
            date_to=end,
            limit=limit,
            offset=offset,
        )
        totals = booking_referrals.slot_totals(session, schedule_ids=[s.id for s in items])
    return [ScheduleRead.of(s, totals=totals.get(s.id)) for s in items]


@router.get("/schedules/{schedule_id}", response_model=ScheduleRead, dependencies=[Depends(public())])
def get_schedule(schedule_id: int, session: SessionDep) -> ScheduleRead:
    """One schedule and its time slots with the public places left in each."""
    with session.begin():
        sched = svc.get_schedule(session, schedule_id=schedule_id)
        slots = [SlotRead.of(s) for s in svc.get_slots(session, schedule_id=schedule_id)]
    return ScheduleRead.of(sched, slots=slots)


@router.get("/calendar", response_model=list[CalendarDayRead], dependencies=[Depends(public())])
def holiday_calendar(year: Annotated[int, Query(ge=2000, le=2100)] = 2025) -> list[CalendarDayRead]:
    """The built-in holidays and 调休 working days of a year."""
    return [CalendarDayRead(day=d.day, kind=d.kind, name=d.name) for d in cal.BUILTIN if d.day.year == year]


@router.get("/rules/{hospital_code}", dependencies=[Depends(public())])
def get_rules(hospital_code: str, session: SessionDep) -> dict[str, Any]:
    """A hospital's effective booking rules (platform defaults where it sets none); '*' is the platform."""
    with session.begin():
        if hospital_code != "*":
            svc.hospital(hospital_code)
        rules = svc.get_rules(session, hospital_code=hospital_code)
        own = svc.get_rule_overrides(session, hospital_code=hospital_code)
    return {"hospital_code": hospital_code, "rules": rules.__dict__, "overrides": own}


# ------------------------------------------------------------------ family doctors


@router.get("/priority/schedules/{schedule_id}", response_model=ScheduleRead)
def priority_slots(
    schedule_id: int,
    session: SessionDep,
    _p: Annotated[Principal, Depends(require(Role.family_doctor))],
) -> ScheduleRead:
    """A schedule's slots with the family-doctor priority places (signed family doctors only)."""
    with session.begin():
        sched = svc.get_schedule(session, schedule_id=schedule_id)
        slots = [SlotRead.of(s, family=True) for s in svc.get_slots(session, schedule_id=schedule_id)]
    return ScheduleRead.of(sched, slots=slots)


@router.post("/signings", status_code=201)
def sign(
    body: SigningCreate,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.family_doctor))],
) -> dict[str, str]:
    """Sign a resident with the calling family doctor's institution."""
    with session.begin():
        row = svc.sign(session, person=body.person_id, actor=principal)
        return {"person_id": row.person_id, "institution_code": row.institution_code}


# ------------------------------------------------------------------ hospital staff


@router.post("/schedules", response_model=ScheduleRead, status_code=201)
def create_schedule(body: ScheduleCreate, session: SessionDep, principal: Staff) -> ScheduleRead:
    """Publish one session (hospital staff for their own hospital, managers for any)."""
    svc.check_staff(principal, body.hospital_code)
    spec = svc.ScheduleSpec(
        hospital_code=body.hospital_code,
        department_code=body.department_code,
        doctor_name=body.doctor_name,
        doctor_title=body.doctor_title,
        service_date=body.service_date,
        session=body.session,
        slot_minutes=body.slot_minutes,
        capacity_per_slot=body.capacity_per_slot,
        start=body.start,
        end=body.end,
        service_type=body.service_type,
    )
    with session.begin():
        sched = svc.create_schedule(session, spec=spec, actor=principal, allow_holiday=body.allow_holiday)
        slots = [
            SlotRead.of(s, family=True, clinic=True) for s in svc.get_slots(session, schedule_id=sched.id)
        ]
    return ScheduleRead.of(sched, slots=slots)


@router.post("/schedules/batch", response_model=list[ScheduleRead], status_code=201)
def create_schedules(body: ScheduleBatch, session: SessionDep, principal: Staff) -> list[ScheduleRead]:
    """Publish a doctor's sessions on every working day of a date range (holidays and 调休 respected)."""
    svc.check_staff(principal, body.hospital_code)
    if (body.date_to - body.date_from).days > 62:
        raise Invalid("一次最多发布 62 天的排班", code="range-too-long")
    template = svc.ScheduleSpec(
        hospital_code=body.hospital_code,
        department_code=body.department_code,
        doctor_name=body.doctor_name,
        doctor_title=body.doctor_title,
        service_date=body.date_from,
        session=body.sessions[0] if body.sessions else "am",
        slot_minutes=body.slot_minutes,
        capacity_per_slot=body.capacity_per_slot,
        service_type=body.service_type,
    )
    with session.begin():
        items = svc.create_schedules(
            session,
            template=template,
            start=body.date_from,
            end=body.date_to,
            sessions=tuple(body.sessions),
            actor=principal,
        )
        return [ScheduleRead.of(s) for s in items]


@router.post("/schedules/{schedule_id}/stop", response_model=list[AppointmentRead])
def stop_schedule(
    schedule_id: int, body: StopRequest, session: SessionDep, principal: Staff
) -> list[AppointmentRead]:
    """停诊: close a session; its bookings are cancelled hospital-side and the patients notified."""
    with session.begin():
        affected = svc.stop_schedule(session, schedule_id=schedule_id, reason=body.reason, actor=principal)
        return [AppointmentRead.of(a) for a in affected]


@router.get("/schedules/{schedule_id}/appointments", response_model=list[AppointmentRead])
def schedule_appointments(schedule_id: int, session: SessionDep, principal: Staff) -> list[AppointmentRead]:
    """The day's list for one session (the hospital's own staff and managers)."""
    with session.begin():
        sched = svc.get_schedule(session, schedule_id=schedule_id)
        svc.check_staff(principal, sched.hospital_code)
        items = svc.get_all_appointments(session, actor=principal, schedule_id=schedule_id, limit=1000)
        return [AppointmentRead.of(a) for a in sorted(items, key=lambda a: (a.starts_at, a.id))]


@router.put("/rules/{hospital_code}")
def put_rules(
    hospital_code: str, body: dict[str, Any], session: SessionDep, principal: Managers
) -> dict[str, Any]:
    """Set a hospital's rule overrides ('*' for the platform defaults); null clears one."""
    values = {k: v for k, v in body.items() if k in RULE_FIELDS}
    if set(body) - set(RULE_FIELDS):
        raise Invalid(f"未知规则项：{', '.join(sorted(set(body) - set(RULE_FIELDS)))}", code="bad-rule")
    with session.begin():
        rules = svc.set_rules(session, hospital_code=hospital_code, values=values, actor=principal)
    return {"hospital_code": hospital_code, "rules": rules.__dict__}


@router.post("/jobs/run")
def run_jobs(session: SessionDep, _p: Managers) -> dict[str, int]:
    """Run every time-driven job for now: reflow at release, hold expiry, delayed returns, no-shows."""
    with session.begin():
        return booking_jobs.run_jobs(session)


@router.get("/stats/{month}")
def month_stats(
    month: str, session: SessionDep, _p: Annotated[Principal, Depends(require(Role.manager, Role.admin))]
) -> dict[str, Any]:
    """The bulletin's booking tables for a month (YYYY-MM)."""
    with session.begin():
        return stats.all_tables(session, month=month)


# ------------------------------------------------------------------ booking


@router.post("/appointments", response_model=AppointmentRead, status_code=201)
def create_appointment(
    body: AppointmentCreate,
    request: Request,
    response: Response,
    principal: Bookers,
    idempotency_key: Annotated[str | None, Header(max_length=120)] = None,
) -> AppointmentRead:
    """Book a place (real name). Residents book for themselves; agents, channels and doctors on behalf.

    409 names the rule that refuses it (slot-full, limit-daily, suspended, ...); a retried request with
    the same Idempotency-Key answers 200 with the first booking.
    """
    person = body.person_id or (principal.subject if principal.role is Role.resident else None)
    if person is None:
        raise Invalid("代他人预约时必须提供就诊人身份证号码 person_id", code="person-required")
    # the hot path: a session held only for the transaction itself, released before the response
    db: Database = request.app.state.db
    with db.session() as session, session.begin():
        done = svc.book(
            session,
            slot_id=body.slot_id,
            person=person,
            person_name=body.person_name or (principal.name if principal.role is Role.resident else None),
            actor=principal,
            channel=body.channel,
            tranche=body.tranche,
            idempotency_key=body.idempotency_key or idempotency_key,
        )
        out = AppointmentRead.of(done.appointment)
    if not done.created:
        response.status_code = 200
    return out


@router.get("/appointments", response_model=list[AppointmentRead])
def list_appointments(
    session: SessionDep,
    principal: Viewers,
    person: str | None = None,
    hospital: str | None = None,
    service_date: date | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AppointmentRead]:
    """Appointments the caller may see: a resident's own, a hospital's, a channel's, or any (managers)."""
    with session.begin():
        items = svc.get_all_appointments(
            session,
            actor=principal,
            person=person,
            hospital_code=hospital,
            service_date=service_date,
            status=status,
            limit=limit,
            offset=offset,
        )
        return [AppointmentRead.of(a) for a in items]


@router.get("/appointments/{appointment_id}", response_model=AppointmentRead)
def get_appointment(appointment_id: int, session: SessionDep, principal: Viewers) -> AppointmentRead:
    """One appointment."""
    with session.begin():
        appt = svc.get_appointment(session, appointment_id=appointment_id)
        svc.check_access(principal, appt)
        return AppointmentRead.of(appt)


@router.post("/appointments/{appointment_id}/cancel", response_model=AppointmentRead)
def cancel_appointment(
    appointment_id: int, session: SessionDep, principal: Viewers, body: CancelRequest | None = None
) -> AppointmentRead:
    """Cancel (until 12:00 the day before for residents and channels; the hospital side any time)."""
    with session.begin():
        appt = svc.cancel(
            session, appointment_id=appointment_id, actor=principal, reason=body.reason if body else None
        )
        return AppointmentRead.of(appt)


@router.post("/appointments/{appointment_id}/pay", response_model=AppointmentRead)
def pay_appointment(appointment_id: int, session: SessionDep, principal: Bookers) -> AppointmentRead:
    """Confirm a held booking by paying within the hold time (15 minutes by default)."""
    with session.begin():
        return AppointmentRead.of(svc.pay(session, appointment_id=appointment_id, actor=principal))


@router.post("/appointments/{appointment_id}/check-in", response_model=AppointmentRead)
def check_in(
    appointment_id: int,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.resident, *STAFF))],
) -> AppointmentRead:
    """取号/签到 on the day, until the slot's end plus the grace period."""
    with session.begin():
        return AppointmentRead.of(svc.check_in(session, appointment_id=appointment_id, actor=principal))


@router.post("/appointments/{appointment_id}/appeal", response_model=AppealRead, status_code=201)
def appeal(
    appointment_id: int,
    body: AppealCreate,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.resident, Role.agent))],
) -> AppealRead:
    """Appeal a recorded no-show."""
    with session.begin():
        return AppealRead.of(
            booking_jobs.appeal(session, appointment_id=appointment_id, reason=body.reason, actor=principal)
        )


@router.get("/appeals", response_model=list[AppealRead])
def list_appeals(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.resident, Role.manager, Role.admin))],
    status: str | None = None,
) -> list[AppealRead]:
    """Appeals: a resident's own, or all of them for managers."""
    with session.begin():
        return [
            AppealRead.of(a) for a in booking_jobs.get_all_appeals(session, actor=principal, status=status)
        ]


@router.post("/appeals/{appeal_id}/decision", response_model=AppealRead)
def decide_appeal(
    appeal_id: int, body: AppealDecision, session: SessionDep, principal: Managers
) -> AppealRead:
    """Accept (strike the no-show out, lift its suspension) or reject an appeal."""
    with session.begin():
        return AppealRead.of(
            booking_jobs.decide_appeal(
                session, appeal_id=appeal_id, accept=body.accept, note=body.note, actor=principal
            )
        )


# ------------------------------------------------------------------ waitlist


@router.post("/waitlist", response_model=WaitlistRead, status_code=201)
def join_waitlist(
    body: WaitlistCreate,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.resident, Role.agent, Role.uploader))],
) -> WaitlistRead:
    """Queue for a schedule (候补): a cancelled place is booked for the first in line automatically."""
    person = body.person_id or (principal.subject if principal.role is Role.resident else None)
    if person is None:
        raise Invalid("候补必须提供就诊人身份证号码 person_id", code="person-required")
    with session.begin():
        entry = svc.join_waitlist(
            session,
            schedule_id=body.schedule_id,
            person=person,
            person_name=body.person_name,
            actor=principal,
            channel=body.channel,
        )
        return WaitlistRead.of(entry)


@router.get("/waitlist", response_model=list[WaitlistRead])
def my_waitlist(
    session: SessionDep, principal: Annotated[Principal, Depends(require(Role.resident))]
) -> list[WaitlistRead]:
    """The calling resident's waitlist entries."""
    with session.begin():
        return [WaitlistRead.of(e) for e in svc.get_waitlist(session, person=principal.subject.upper())]


@router.delete("/waitlist/{entry_id}", response_model=WaitlistRead)
def leave_waitlist(
    entry_id: int,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.resident, Role.agent))],
) -> WaitlistRead:
    """Leave the queue."""
    with session.begin():
        return WaitlistRead.of(svc.leave_waitlist(session, entry_id=entry_id, actor=principal))


# ------------------------------------------------------------------ referrals


@router.post("/referrals/up", response_model=ReferralRead, status_code=201)
def refer_up(
    body: ReferralUp,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.family_doctor))],
) -> ReferralRead:
    """上转 with a booked place from the family-doctor priority tranche."""
    with session.begin():
        ref = booking_referrals.refer_up(
            session,
            person=body.person_id,
            person_name=body.person_name,
            slot_id=body.slot_id,
            reason=body.reason,
            actor=principal,
            idempotency_key=body.idempotency_key,
        )
        return ReferralRead.of(ref)


@router.post("/referrals/down", response_model=ReferralRead, status_code=201)
def refer_down(
    body: ReferralDown,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.doctor))],
) -> ReferralRead:
    """下转 to a community health centre."""
    with session.begin():
        ref = booking_referrals.refer_down(
            session,
            person=body.person_id,
            person_name=body.person_name,
            to_institution=body.to_institution,
            reason=body.reason,
            parent_id=body.parent_id,
            actor=principal,
        )
        return ReferralRead.of(ref)


@router.get("/referrals", response_model=list[ReferralRead])
def list_referrals(
    session: SessionDep,
    principal: Annotated[
        Principal, Depends(require(Role.doctor, Role.family_doctor, Role.manager, Role.admin))
    ],
    person: str | None = None,
) -> list[ReferralRead]:
    """Referrals sent from or received by the caller's institution (both ends see the status)."""
    if principal.role in (Role.doctor, Role.family_doctor) and not principal.institution_code:
        raise Forbidden("未绑定机构的医生不能查看转诊单", code="institution-required")
    with session.begin():
        return [
            ReferralRead.of(r)
            for r in booking_referrals.get_all_referrals(session, actor=principal, person=person)
        ]


@router.post("/referrals/{referral_id}/status", response_model=ReferralRead)
def referral_status(
    referral_id: int,
    body: ReferralStatus,
    session: SessionDep,
    principal: Annotated[
        Principal, Depends(require(Role.doctor, Role.family_doctor, Role.manager, Role.admin))
    ],
) -> ReferralRead:
    """The receiving end accepts or completes; the sender may cancel."""
    with session.begin():
        ref = booking_referrals.update_referral(
            session, referral_id=referral_id, status=body.status, note=body.note, actor=principal
        )
        return ReferralRead.of(ref)
