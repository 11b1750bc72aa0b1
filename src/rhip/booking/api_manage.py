"""Booking JSON API for the people who run it: family doctors, hospital staff (schedules, 停诊, rules,
jobs, figures), waitlists, referrals and appeals; included by api.py under /api/v1/booking."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from rhip.booking import (
    common,
    jobs as booking_jobs,
    referrals as booking_referrals,
    schedules as rota,
    service as svc,
    stats,
)
from rhip.booking.api_common import Managers, Staff
from rhip.booking.rules import RULE_FIELDS
from rhip.booking.schemas import (
    AppealCreate,
    AppealDecision,
    AppealRead,
    AppointmentRead,
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
from rhip.errors import Forbidden, Invalid
from rhip.security.deps import SessionDep, audit_read, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter()
SessionDep = SessionDep


# ------------------------------------------------------------------ family doctors


@router.get("/priority/schedules/{schedule_id}", response_model=ScheduleRead)
def priority_slots(
    schedule_id: int,
    session: SessionDep,
    _p: Annotated[Principal, Depends(require(Role.family_doctor))],
) -> ScheduleRead:
    """A schedule's slots with the family-doctor priority places (signed family doctors only)."""
    with session.begin():
        sched = rota.get_schedule(session, schedule_id=schedule_id)
        slots = [SlotRead.of(s, family=True) for s in rota.get_slots(session, schedule_id=schedule_id)]
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
    rota.check_staff(principal, body.hospital_code)
    spec = rota.ScheduleSpec(
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
        sched = rota.create_schedule(session, spec=spec, actor=principal, allow_holiday=body.allow_holiday)
        slots = [
            SlotRead.of(s, family=True, clinic=True) for s in rota.get_slots(session, schedule_id=sched.id)
        ]
    return ScheduleRead.of(sched, slots=slots)


@router.post("/schedules/batch", response_model=list[ScheduleRead], status_code=201)
def create_schedules(body: ScheduleBatch, session: SessionDep, principal: Staff) -> list[ScheduleRead]:
    """Publish a doctor's sessions on every working day of a date range (holidays and 调休 respected)."""
    rota.check_staff(principal, body.hospital_code)
    if (body.date_to - body.date_from).days > 62:
        raise Invalid("一次最多发布 62 天的排班", code="range-too-long")
    template = rota.ScheduleSpec(
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
        items = rota.create_schedules(
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
        affected = rota.stop_schedule(session, schedule_id=schedule_id, reason=body.reason, actor=principal)
        return [AppointmentRead.of(a, principal) for a in affected]


@router.get("/schedules/{schedule_id}/appointments", response_model=list[AppointmentRead])
def schedule_appointments(
    request: Request, schedule_id: int, session: SessionDep, principal: Staff
) -> list[AppointmentRead]:
    """The day's list for one session (the hospital's own staff and managers); ID numbers masked."""
    with session.begin():
        sched = rota.get_schedule(session, schedule_id=schedule_id)
        rota.check_staff(principal, sched.hospital_code)
        items = svc.get_all_appointments(session, actor=principal, schedule_id=schedule_id, limit=1000)
        audit_read(session, request, principal, what="schedule.appointments", target=str(schedule_id))
        return [AppointmentRead.of(a, principal) for a in sorted(items, key=lambda a: (a.starts_at, a.id))]


@router.put("/rules/{hospital_code}")
def put_rules(
    hospital_code: str, body: dict[str, Any], session: SessionDep, principal: Managers
) -> dict[str, Any]:
    """Set a hospital's rule overrides ('*' for the platform defaults); null clears one."""
    values = {k: v for k, v in body.items() if k in RULE_FIELDS}
    if set(body) - set(RULE_FIELDS):
        raise Invalid(f"未知规则项：{', '.join(sorted(set(body) - set(RULE_FIELDS)))}", code="bad-rule")
    with session.begin():
        rules = common.set_rules(session, hospital_code=hospital_code, values=values, actor=principal)
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
    request: Request,
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
        rows = booking_referrals.get_all_referrals(session, actor=principal, person=person)
        audit_read(session, request, principal, what="referrals", results=len(rows))
        return [ReferralRead.of(r, principal) for r in rows]


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


# ------------------------------------------------------------------ appeals


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
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.resident, Role.manager, Role.admin))],
    status: str | None = None,
) -> list[AppealRead]:
    """Appeals: a resident's own, or all of them for managers."""
    with session.begin():
        rows = booking_jobs.get_all_appeals(session, actor=principal, status=status)
        audit_read(session, request, principal, what="appeals", results=len(rows))
        return [AppealRead.of(a, principal) for a in rows]


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
