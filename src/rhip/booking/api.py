"""Booking JSON API, mounted at /api/v1/booking: find, cancel, register, notifications; the booking
write itself is api_book.py; the staff, family-doctor, waitlist, referral and appeal routes come from
api_manage.py."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from rhip.booking import (
    accounts,
    api_manage,
    calendar as cal,
    common,
    notify,
    referrals as booking_referrals,
    schedules as rota,
    service as svc,
)
from rhip.booking.api_common import STAFF, Bookers, Viewers, window as _window
from rhip.booking.schemas import (
    AppointmentRead,
    CalendarDayRead,
    CancelRequest,
    DepartmentRead,
    HospitalRead,
    InPersonVerify,
    NotificationRead,
    ResidentCreate,
    ResidentRead,
    ScheduleRead,
    SignupAccepted,
    SignupResend,
    SignupVerify,
    SlotRead,
)
from rhip.clock import SHANGHAI
from rhip.errors import Forbidden, Invalid
from rhip.registry import data as reg_data
from rhip.security import masking, realname, throttle
from rhip.security.deps import SessionDep, audit_read, client_context, public, require
from rhip.security.masking import mask_text
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter()
SessionDep = SessionDep


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
        common.hospital(code)
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
        items = rota.get_all_schedules(
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
        sched = rota.get_schedule(session, schedule_id=schedule_id)
        slots = [SlotRead.of(s) for s in rota.get_slots(session, schedule_id=schedule_id)]
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
            common.hospital(hospital_code)
        rules = common.get_rules(session, hospital_code=hospital_code)
        own = common.get_rule_overrides(session, hospital_code=hospital_code)
    return {"hospital_code": hospital_code, "rules": rules.__dict__, "overrides": own}


# ------------------------------------------------------------------ booking


@router.get("/appointments", response_model=list[AppointmentRead])
def list_appointments(
    request: Request,
    session: SessionDep,
    principal: Viewers,
    person: Annotated[str | None, Query(max_length=32)] = None,
    hospital: Annotated[str | None, Query(max_length=32)] = None,
    service_date: date | None = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
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
        if principal.role is not Role.resident and items:
            audit_read(
                session, request, principal, what="appointments", target=mask_text(person or hospital or "")
            )
        return [AppointmentRead.of(a, principal) for a in items]


@router.get("/appointments/{appointment_id}", response_model=AppointmentRead)
def get_appointment(
    request: Request, appointment_id: int, session: SessionDep, principal: Viewers
) -> AppointmentRead:
    """One appointment."""
    with session.begin():
        appt = svc.get_appointment(session, appointment_id=appointment_id)
        svc.check_access(principal, appt)
        if principal.role is not Role.resident:
            audit_read(session, request, principal, what="appointment", target=str(appointment_id))
        return AppointmentRead.of(appt, principal)


@router.post("/appointments/{appointment_id}/cancel", response_model=AppointmentRead)
def cancel_appointment(
    appointment_id: int, session: SessionDep, principal: Viewers, body: CancelRequest | None = None
) -> AppointmentRead:
    """Cancel (until 12:00 the day before for residents and channels; the hospital side any time)."""
    with session.begin():
        appt = svc.cancel(
            session, appointment_id=appointment_id, actor=principal, reason=body.reason if body else None
        )
        return AppointmentRead.of(appt, principal)


@router.post("/appointments/{appointment_id}/pay", response_model=AppointmentRead)
def pay_appointment(appointment_id: int, session: SessionDep, principal: Bookers) -> AppointmentRead:
    """Confirm a held booking by paying within the hold time (15 minutes by default)."""
    with session.begin():
        return AppointmentRead.of(svc.pay(session, appointment_id=appointment_id, actor=principal), principal)


@router.post("/appointments/{appointment_id}/check-in", response_model=AppointmentRead)
def check_in(
    appointment_id: int,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.resident, *STAFF))],
) -> AppointmentRead:
    """取号/签到 on the day, until the slot's end plus the grace period."""
    with session.begin():
        return AppointmentRead.of(
            svc.check_in(session, appointment_id=appointment_id, actor=principal), principal
        )


# ------------------------------------------------------------------ residents


@router.post("/residents", response_model=SignupAccepted, status_code=202, dependencies=[Depends(public())])
def register_resident(request: Request, body: ResidentCreate, session: SessionDep) -> SignupAccepted:
    """Real-name sign-up, step 1: answers the same whether or not the ID number is known; a code is
    texted only to a phone the platform holds for that person (429 past the phone's or address's limit)."""
    secret = request.app.state.settings.resolved_secret_key
    addr = client_context(request)["client_addr"] or "-"
    with session.begin():
        throttle.check(session, throttle.SIGNUP_ADDRESS, addr)
    with session.begin():
        throttle.fail(session, throttle.SIGNUP_ADDRESS, addr)
        signup = accounts.register_resident(
            session,
            id_number=body.id_number,
            name=body.name,
            phone=body.phone,
            password=body.password,
            secret=secret,
        )
    return SignupAccepted(signup_id=signup.id, message=realname.ACCEPTED)


@router.post(
    "/residents/verify", response_model=ResidentRead, status_code=201, dependencies=[Depends(public())]
)
def verify_resident(request: Request, body: SignupVerify, session: SessionDep) -> ResidentRead:
    """Step 2: the one-time code; 201 with the (masked) account, or 422 bad-code for any failure."""
    secret = request.app.state.settings.resolved_secret_key
    with session.begin():
        user = accounts.confirm_resident(session, signup_id=body.signup_id, code=body.code, secret=secret)
        phone = accounts.phone_of(session, person=user.username) if user else None
    if user is None:
        raise Invalid(realname.REFUSED, code="bad-code")
    return ResidentRead(
        person_id=masking.mask_id(user.username) or "",
        name=user.display_name,
        phone=accounts.mask(phone or ""),
    )


@router.post(
    "/residents/resend", response_model=SignupAccepted, status_code=202, dependencies=[Depends(public())]
)
def resend_code(request: Request, body: SignupResend, session: SessionDep) -> SignupAccepted:
    """A new code for a pending sign-up (once a minute, five in all); the same answer always."""
    secret = request.app.state.settings.resolved_secret_key
    with session.begin():
        realname.resend_code(session, signup_id=body.signup_id, secret=secret)
    return SignupAccepted(signup_id=body.signup_id, message=realname.ACCEPTED)


@router.post("/residents/verify-in-person", response_model=ResidentRead, status_code=201)
def verify_in_person(
    request: Request,
    body: InPersonVerify,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.doctor, Role.agent, Role.manager, Role.admin))],
) -> ResidentRead:
    """Counter staff checked the resident's ID card: their pending sign-up becomes a verified account."""
    with session.begin():
        user = accounts.verify_in_person(
            session,
            id_number=body.id_number,
            actor=principal.subject,
            institution_code=principal.institution_code,
        )
        phone = accounts.phone_of(session, person=user.username)
    return ResidentRead(
        person_id=masking.mask_id(user.username) or "",
        name=user.display_name,
        phone=accounts.mask(phone or ""),
    )


@router.get("/notifications", response_model=list[NotificationRead])
def list_notifications(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.resident, Role.agent, Role.manager, Role.admin))],
    person: str | None = None,
) -> list[NotificationRead]:
    """A resident's own notifications (停诊 and others), newest first; agents and managers name the person."""
    if principal.role is Role.resident:
        pid = principal.subject.strip().upper()
        if person and common.person_id(person) != pid:
            raise Forbidden("居民只能查看本人的通知", code="not-self")
    elif person:
        pid = common.person_id(person)
    else:
        raise Invalid("请提供就诊人身份证号码 person", code="person-required")
    with session.begin():
        rows = notify.get_all(session, person=pid)
        audit_read(session, request, principal, what="notifications", target=mask_text(pid))
        return [
            NotificationRead(
                id=n.id,
                appointment_id=n.appointment_id,
                kind=n.kind,
                channel=n.channel,
                channel_label=notify.CHANNEL_LABELS.get(n.channel, n.channel),
                message=n.message,
                status=n.status,
                status_label=notify.STATUS_LABELS.get(n.status, n.status),
                created_at=n.created_at.astimezone(SHANGHAI),
                sent_at=n.sent_at.astimezone(SHANGHAI) if n.sent_at else None,
            )
            for n in rows
        ]


# the routes of the people who run the platform (schedules, rules, jobs, referrals, appeals, ...)
router.include_router(api_manage.router)
