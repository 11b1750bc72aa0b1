"""Booking rules through the service layer, with a frozen clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from rhip import clock
from rhip.booking import calendar as cal, jobs as booking_jobs, referrals as booking_referrals, service as svc
from rhip.booking.models import Appointment, Slot
from rhip.booking.rules import Rules, split_capacity
from rhip.errors import Conflict, Forbidden, Invalid
from rhip.security.roles import Role
from rhip.security.service import Principal
from tests.booking.conftest import SECONDARY, STAFF, T0, TERTIARY, new_person, resident, schedule

FAMILY = Principal(subject="fd-1", role=Role.family_doctor, institution_code="C32010201")
DOCTOR = Principal(subject="dr-1", role=Role.doctor, institution_code=TERTIARY)
AGENT = Principal(subject="agent-1", role=Role.agent)


def slots_of(s: Session, schedule_id: int) -> list[Slot]:
    with s.begin():
        slots = svc.get_slots(s, schedule_id=schedule_id)
    for slot in slots:  # detached snapshots: a later rollback must not expire them
        s.expunge(slot)
    return slots


def book(s: Session, slot_id: int, pid: str, **kw: object) -> Appointment:
    kw.setdefault("actor", resident(pid))
    with s.begin():
        appt = svc.book(s, slot_id=slot_id, person=pid, **kw).appointment  # type: ignore[arg-type]
    s.expunge(appt)
    return appt


def refused(s: Session, code: str, slot_id: int, pid: str, **kw: object) -> None:
    with pytest.raises((Conflict, Forbidden, Invalid)) as exc:
        book(s, slot_id, pid, **kw)
    assert exc.value.code == code, exc.value.detail


# ------------------------------------------------------------------ pure rules


def test_calendar_2025_holidays_and_swaps() -> None:
    assert not cal.is_working_day(date(2025, 1, 29))  # 春节
    assert cal.is_working_day(date(2025, 1, 26))  # Sunday, 调休上班
    assert not cal.is_working_day(date(2025, 4, 4))  # 清明
    assert cal.is_working_day(date(2025, 4, 27))  # Sunday before 劳动节
    assert not cal.is_working_day(date(2025, 10, 8))
    assert cal.is_working_day(date(2025, 10, 11))  # Saturday, 调休上班
    assert len(cal.working_days(date(2025, 9, 29), date(2025, 10, 12))) == 5  # 29, 30 Sep; 9, 10, 11 Oct
    assert not cal.is_working_day(date(2025, 3, 8))  # an ordinary Saturday


def test_rules_arithmetic() -> None:
    r = Rules(release_time="06:30")
    assert r.public_release(date(2025, 3, 10)) == datetime(2025, 3, 3, 6, 30, tzinfo=clock.SHANGHAI)
    assert r.family_release(date(2025, 3, 10)) == datetime(2025, 2, 24, 6, 30, tzinfo=clock.SHANGHAI)
    assert r.cancel_deadline(date(2025, 3, 10)) == datetime(2025, 3, 9, 12, 0, tzinfo=clock.SHANGHAI)
    assert r.family_share(tertiary=True) == 30 and r.family_share(tertiary=False) == 0
    caps = split_capacity(2, 8, family_pct=30, clinic_pct=10)
    assert sum(f for _p, f, _c in caps) == 5 and sum(c for _p, _f, c in caps) == 2
    assert all(p + f + c == 2 and min(p, f, c) >= 0 for p, f, c in caps)


# ------------------------------------------------------------------ schedules


def test_tertiary_schedule_reserves_family_share(bs: Session, frozen: datetime) -> None:
    sched = schedule(bs, day=date(2025, 3, 17), capacity=10)
    slots = slots_of(bs, sched.id)
    assert len(slots) == 8
    assert sum(s.cap_family for s in slots) == 24 and sum(s.cap_public for s in slots) == 56
    other = schedule(bs, day=date(2025, 3, 17), hospital_code=SECONDARY)
    assert sum(s.cap_family for s in slots_of(bs, other.id)) == 0


def test_holiday_refused_and_swapped_workday_allowed(bs: Session, frozen: datetime) -> None:
    with pytest.raises(Conflict) as exc:
        schedule(bs, day=date(2025, 4, 4))
    assert exc.value.code == "holiday"
    assert schedule(bs, day=date(2025, 4, 27)).id  # Sunday, 调休上班


# ------------------------------------------------------------------ release and tranches


def test_release_time_and_tranche_visibility(bs: Session, frozen: datetime) -> None:
    sched = schedule(bs, day=date(2025, 3, 17))  # public 10 Mar 08:00, family 3 Mar 08:00
    slot = slots_of(bs, sched.id)[0]
    pid = new_person()
    refused(bs, "not-released", slot.id, pid)
    refused(bs, "family-only", slot.id, pid, tranche="family")
    with bs.begin():
        svc.sign(bs, person=pid, actor=FAMILY)
    appt = book(bs, slot.id, pid, actor=FAMILY)
    assert appt.tranche == "family" and appt.channel == "community_12320"
    refused(bs, "not-signed", slot.id, new_person(), actor=FAMILY)
    with clock.frozen(T0 + timedelta(days=7)):
        assert book(bs, slot.id, new_person()).tranche == "public"


def test_unused_family_places_reflow_at_public_release(bs: Session, frozen: datetime) -> None:
    sched = schedule(bs, day=date(2025, 3, 17), capacity=10)
    slot = slots_of(bs, sched.id)[0]
    pid = new_person()
    with bs.begin():
        svc.sign(bs, person=pid, actor=FAMILY)
    book(bs, slot.id, pid, actor=FAMILY)
    release = datetime(2025, 3, 10, 8, 0, tzinfo=clock.SHANGHAI)
    with clock.frozen(release), bs.begin():
        booking_jobs.run_jobs(bs)
    with bs.begin():
        after = svc.get_slot(bs, slot_id=slot.id)
        assert (after.cap_public, after.cap_family, after.booked_family) == (9, 1, 1)
        assert after.reflowed
    # a family place cancelled after the reflow goes to the public pool
    with clock.frozen(release), bs.begin():
        appt = svc.get_all_appointments(bs, actor=FAMILY, person=pid)[0]
        svc.cancel(bs, appointment_id=appt.id, actor=FAMILY)
    with bs.begin():
        after = svc.get_slot(bs, slot_id=slot.id)
        assert (after.cap_public, after.cap_family, after.booked_family) == (10, 0, 0)


def test_in_clinic_booking_is_for_own_hospital_doctors(bs: Session, frozen: datetime) -> None:
    with bs.begin():
        svc.set_rules(bs, hospital_code="H024", values={"clinic_share_pct": 20}, actor=STAFF)
    sched = schedule(bs, day=date(2025, 3, 17), hospital_code="H024")
    slot = next(s for s in slots_of(bs, sched.id) if s.cap_clinic)
    pid = new_person()
    refused(bs, "other-hospital", slot.id, pid, actor=DOCTOR)
    own = Principal(subject="dr-2", role=Role.doctor, institution_code="H024")
    appt = book(bs, slot.id, pid, actor=own)
    assert (appt.tranche, appt.channel) == ("clinic", "in_clinic")


# ------------------------------------------------------------------ limits


def test_person_limits(bs: Session, frozen: datetime) -> None:
    day = date(2025, 3, 4)
    a = slots_of(bs, schedule(bs, day=day, department_code="03.04").id)
    b = slots_of(bs, schedule(bs, day=day, department_code="03.01").id)
    c = slots_of(bs, schedule(bs, day=day, department_code="03.02").id)
    pid = new_person()
    book(bs, a[0].id, pid)
    refused(bs, "limit-department", a[1].id, pid)
    book(bs, b[0].id, pid)
    refused(bs, "limit-daily", c[0].id, pid)
    d = slots_of(bs, schedule(bs, day=day + timedelta(days=1), department_code="03.04").id)
    book(bs, d[0].id, pid)
    e = slots_of(bs, schedule(bs, day=day + timedelta(days=2), department_code="03.04").id)
    refused(bs, "limit-weekly", e[0].id, pid)


def test_real_name_and_self_only(bs: Session, frozen: datetime) -> None:
    slot = slots_of(bs, schedule(bs).id)[0]
    pid = new_person()
    refused(bs, "bad-id-number", slot.id, pid[:-1] + ("0" if pid[-1] != "0" else "1"))
    refused(bs, "not-self", slot.id, pid, actor=resident(new_person()))
    assert book(bs, slot.id, pid, actor=AGENT).channel == "phone_12320"


def test_slot_full_and_idempotent_retry(bs: Session, frozen: datetime) -> None:
    slot = slots_of(bs, schedule(bs, capacity=1).id)[0]
    pid = new_person()
    first = book(bs, slot.id, pid, idempotency_key="retry-1")
    again = book(bs, slot.id, pid, idempotency_key="retry-1")
    assert again.id == first.id
    refused(bs, "slot-full", slot.id, new_person())
    refused(bs, "idempotency-key-reused", slot.id + 1, pid, idempotency_key="retry-1")
    with bs.begin():
        assert svc.get_slot(bs, slot_id=slot.id).booked_public == 1


def test_sold_out_answer_from_memory_keeps_retries_and_returns(bs: Session, frozen: datetime) -> None:
    slot = slots_of(bs, schedule(bs, capacity=1).id)[0]
    pid = new_person()
    first = book(bs, slot.id, pid, idempotency_key="mem-1")
    refused(bs, "slot-full", slot.id, new_person(), idempotency_key="mem-2")  # remembered as sold out
    assert svc.sold_out_in_memory(bs, slot_id=slot.id)
    again = book(bs, slot.id, pid, idempotency_key="mem-1")  # answered on the memory path
    assert again.id == first.id and again.status == "booked"
    refused(bs, "slot-full", slot.id, new_person(), idempotency_key="mem-3")
    with bs.begin():
        svc.cancel(bs, appointment_id=first.id, actor=resident(pid))
    assert not svc.sold_out_in_memory(bs, slot_id=slot.id)  # the returned place is bookable at once
    assert book(bs, slot.id, new_person(), idempotency_key="mem-4").status == "booked"


def test_a_booking_rolls_back_with_the_entry_points_transaction(bs: Session, frozen: datetime) -> None:
    slot = slots_of(bs, schedule(bs, capacity=1).id)[0]
    pid = new_person()
    with pytest.raises(RuntimeError), bs.begin():
        svc.book(bs, slot_id=slot.id, person=pid, actor=resident(pid), idempotency_key="rb-1")
        raise RuntimeError("the entry point fails after the booking")
    with bs.begin():
        assert svc.get_slot(bs, slot_id=slot.id).booked_public == 0
        assert svc.get_all_appointments(bs, actor=resident(pid)) == []
    assert book(bs, slot.id, pid, idempotency_key="rb-1").status == "booked"  # the key is free again


# ------------------------------------------------------------------ cancellation, stops


def test_cancellation_cutoff(bs: Session, frozen: datetime) -> None:
    slot = slots_of(bs, schedule(bs, day=date(2025, 3, 5)).id)[0]
    pid = new_person()
    appt = book(bs, slot.id, pid)
    with clock.frozen(datetime(2025, 3, 4, 12, 1, tzinfo=clock.SHANGHAI)):
        with pytest.raises(Conflict) as exc, bs.begin():
            svc.cancel(bs, appointment_id=appt.id, actor=resident(pid))
        assert exc.value.code == "cutoff-passed"
        with bs.begin():  # the hospital side may still cancel
            assert svc.cancel(bs, appointment_id=appt.id, actor=STAFF).status == "cancelled"
    with bs.begin():
        assert svc.get_slot(bs, slot_id=slot.id).booked_public == 0


def test_stop_cancels_and_never_counts(bs: Session, frozen: datetime) -> None:
    sched = schedule(bs, day=date(2025, 3, 6))
    slot = slots_of(bs, sched.id)[0]
    pid = new_person()
    book(bs, slot.id, pid)
    with bs.begin():
        affected = svc.stop_schedule(bs, schedule_id=sched.id, reason="专家外出会诊", actor=STAFF)
    assert [a.status for a in affected] == ["stopped"]
    refused(bs, "slot-stopped", slot.id, new_person())
    with clock.frozen(datetime(2025, 3, 7, 12, 0, tzinfo=clock.SHANGHAI)), bs.begin():
        booking_jobs.run_jobs(bs)
        assert svc.get_appointment(bs, appointment_id=affected[0].id).status == "stopped"
    with pytest.raises(Forbidden), bs.begin():
        svc.stop_schedule(bs, schedule_id=sched.id, reason="x", actor=Principal("d", Role.doctor, "H001"))


# ------------------------------------------------------------------ check-in, no-shows, appeal


def test_check_in_window(bs: Session, frozen: datetime) -> None:
    pid = new_person()
    appt = book(bs, slots_of(bs, schedule(bs, day=date(2025, 3, 4)).id)[0].id, pid)
    with pytest.raises(Conflict) as exc, bs.begin():
        svc.check_in(bs, appointment_id=appt.id, actor=DOCTOR)
    assert exc.value.code == "checkin-too-early"
    with clock.frozen(appt.starts_at + timedelta(minutes=5)), bs.begin():
        assert svc.check_in(bs, appointment_id=appt.id, actor=DOCTOR).status == "checked_in"
    with clock.frozen(datetime(2025, 3, 5, 9, 0, tzinfo=clock.SHANGHAI)), bs.begin():
        booking_jobs.run_jobs(bs)
        assert svc.get_appointment(bs, appointment_id=appt.id).status == "checked_in"


def test_no_show_ladder_and_appeal(bs: Session, frozen: datetime) -> None:
    pid = new_person()
    days = [date(2025, 3, 4), date(2025, 3, 5), date(2025, 3, 6)]
    appts = [book(bs, slots_of(bs, schedule(bs, day=d).id)[0].id, pid) for d in days]
    with clock.frozen(datetime(2025, 3, 6, 8, 45, tzinfo=clock.SHANGHAI)), bs.begin():
        booking_jobs.run_jobs(bs)
        assert svc.active_suspension(bs, person=pid) is None  # the third is within its grace period
    after = datetime(2025, 3, 8, 9, 0, tzinfo=clock.SHANGHAI)
    with clock.frozen(after), bs.begin():
        booking_jobs.run_jobs(bs)
        sus = svc.active_suspension(bs, person=pid)
        assert sus is not None and sus.noshows == 3
        assert sus.ends_at == after + timedelta(days=90)
    with clock.frozen(after):
        later = slots_of(bs, schedule(bs, day=date(2025, 3, 13)).id)[0]
        refused(bs, "suspended", later.id, pid)
        with pytest.raises(Conflict) as exc, bs.begin():
            svc.check_in(bs, appointment_id=appts[0].id, actor=DOCTOR)
        assert exc.value.code == "not-checkable"
        with bs.begin():
            appeal = booking_jobs.appeal(
                bs, appointment_id=appts[0].id, reason="当天急诊住院", actor=resident(pid)
            )
        with bs.begin():
            booking_jobs.decide_appeal(bs, appeal_id=appeal.id, accept=True, note="属实", actor=STAFF)
        with bs.begin():
            assert svc.active_suspension(bs, person=pid) is None
            assert svc.get_appointment(bs, appointment_id=appts[0].id).status == "excused"
        assert book(bs, later.id, pid).status == "booked"


# ------------------------------------------------------------------ waitlist, holds, delayed returns


def test_waitlist_fills_in_order(bs: Session, frozen: datetime) -> None:
    sched = schedule(bs, capacity=1, slot_minutes=60)
    slot = slots_of(bs, sched.id)[0]
    holder, first, second = new_person(), new_person(), new_person()
    appt = book(bs, slot.id, holder)
    with bs.begin():
        svc.join_waitlist(bs, schedule_id=sched.id, person=first, actor=resident(first))
        svc.join_waitlist(bs, schedule_id=sched.id, person=second, actor=AGENT)
    with bs.begin():
        svc.cancel(bs, appointment_id=appt.id, actor=resident(holder))
    with bs.begin():
        got = svc.get_all_appointments(bs, actor=resident(first))
        assert [(a.slot_id, a.status, a.channel) for a in got] == [(slot.id, "booked", "web_12320")]
        queue = svc.get_waitlist(bs, schedule_id=sched.id)
        assert [e.status for e in queue] == ["filled", "waiting"]
        assert svc.get_slot(bs, slot_id=slot.id).booked_public == 1


def test_prepayment_hold_expires(bs: Session, frozen: datetime) -> None:
    with bs.begin():
        svc.set_rules(bs, hospital_code="H021", values={"prepay_minutes": 15}, actor=STAFF)
    slot = slots_of(bs, schedule(bs, hospital_code="H021").id)[0]
    paid, unpaid = new_person(), new_person()
    a = book(bs, slot.id, paid)
    b = book(bs, slot.id, unpaid)
    assert a.status == b.status == "held"
    with clock.frozen(T0 + timedelta(minutes=10)), bs.begin():
        assert svc.pay(bs, appointment_id=a.id, actor=resident(paid)).status == "booked"
    with clock.frozen(T0 + timedelta(minutes=16)), bs.begin():
        assert booking_jobs.run_jobs(bs)["expired_holds"] == 1
        with pytest.raises(Conflict):
            svc.pay(bs, appointment_id=b.id, actor=resident(unpaid))
    with bs.begin():
        assert svc.get_slot(bs, slot_id=slot.id).booked_public == 1


def test_anti_scalping_delayed_return(bs: Session, frozen: datetime) -> None:
    with bs.begin():
        svc.set_rules(bs, hospital_code="H023", values={"return_delay_seconds": 120}, actor=STAFF)
    slot = slots_of(bs, schedule(bs, hospital_code="H023", capacity=1).id)[0]
    pid = new_person()
    appt = book(bs, slot.id, pid)
    with bs.begin():
        svc.cancel(bs, appointment_id=appt.id, actor=resident(pid))
    refused(bs, "slot-full", slot.id, new_person())
    with clock.frozen(T0 + timedelta(minutes=3)), bs.begin():
        assert booking_jobs.run_jobs(bs)["returned_places"] == 1
    with clock.frozen(T0 + timedelta(minutes=3)):
        assert book(bs, slot.id, new_person()).status == "booked"


# ------------------------------------------------------------------ referrals


def test_two_way_referral(bs: Session, frozen: datetime) -> None:
    slot = slots_of(bs, schedule(bs, day=date(2025, 3, 14)).id)[0]
    pid = new_person()
    with bs.begin():
        svc.sign(bs, person=pid, actor=FAMILY)
    with bs.begin():
        up = booking_referrals.refer_up(bs, person=pid, slot_id=slot.id, reason="胸痛待查", actor=FAMILY)
        assert up.status == "booked" and up.to_institution == TERTIARY
    with bs.begin():
        down = booking_referrals.refer_down(
            bs, person=pid, to_institution="C32010201", reason="术后康复", actor=DOCTOR, parent_id=up.id
        )
    receiver = Principal(subject="fd-2", role=Role.family_doctor, institution_code="C32010201")
    with bs.begin():
        assert {r.id for r in booking_referrals.get_all_referrals(bs, actor=receiver, person=pid)} == {
            up.id,
            down.id,
        }
        assert {r.id for r in booking_referrals.get_all_referrals(bs, actor=DOCTOR, person=pid)} == {
            up.id,
            down.id,
        }
    with pytest.raises(Forbidden), bs.begin():
        booking_referrals.update_referral(bs, referral_id=down.id, status="accepted", actor=DOCTOR)
    with bs.begin():
        assert (
            booking_referrals.update_referral(
                bs, referral_id=down.id, status="accepted", actor=receiver
            ).status
            == "accepted"
        )
