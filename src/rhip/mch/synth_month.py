"""One synthetic month of MCH activity written through the real services (every rule checked), calibrated
to the 2018-03 district table at a scale s (`synth_plan.month_plan`)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy.orm import Session

from rhip.mch import rules, service as svc
from rhip.mch.models import (
    NEWBORN,
    Pregnancy,
)
from rhip.mch.synth_plan import (
    OWNERS,
    PREFIX,
    People,
    Units,
    district_units,
    month_plan,
    pick_colour,
    registration_week,
)


class MonthWriter:
    """Writes one district's month through the services."""

    def __init__(self, session: Session, month: str, rng: random.Random) -> None:
        self.s, self.rng = session, rng
        y, m = (int(x) for x in month.split("-"))
        self.first = date(y, m, 1)
        self.next = date(y + (m == 12), m % 12 + 1, 1)
        self.people = People(rng)
        self.seq = 0
        self.actor = svc.Actor(name="synth", role="doctor")

    def day_in_month(self) -> date:
        return self.first + timedelta(days=self.rng.randrange((self.next - self.first).days))

    def local_id(self, kind: str) -> str:
        self.seq += 1
        return f"{PREFIX}-{kind}-{self.first:%Y%m}-{self.seq:07d}"

    def register(self, inst: str, on: date, week: int) -> Pregnancy:
        colour, purple = pick_colour(self.rng)
        number, _born = self.people.woman(on)
        return svc.register_pregnancy(
            self.s,
            actor=self.actor,
            institution_code=inst,
            local_id=self.local_id("P"),
            id_number=number,
            name=self.people.name(),
            registered_on=on,
            gestational_week=week,
            gestational_days=self.rng.randint(0, 6),
            gravidity=(g := self.rng.choice((1, 1, 2, 2, 3))),
            parity=self.rng.randint(0, g - 1),
            colour=colour,
            purple=purple,
            factors="" if colour == "green" else "孕期风险因素（合成）",
            case_owner=self.rng.choice(OWNERS),
        )

    def visit(self, p: Pregnancy, inst: str, day: date) -> None:
        svc.record_antenatal_visit(
            self.s,
            actor=self.actor,
            pregnancy_id=p.id,
            visit_date=day,
            institution_code=inst,
            systolic=self.rng.randint(100, 135),
            diastolic=self.rng.randint(60, 85),
            weight_kg=round(self.rng.uniform(50, 80), 1),
            haemoglobin=self.rng.randint(100, 135),
        )

    def earlier(self, inst: str, weeks_now: int) -> Pregnancy:
        """A woman registered months before, with her earlier visits, at `weeks_now` weeks on day 1."""
        reg_week = registration_week(self.rng)
        reg_week = min(reg_week, weeks_now - 5)
        on = self.first - timedelta(weeks=weeks_now - reg_week)
        p = self.register(inst, on, reg_week)
        day = on
        while day < self.first - timedelta(days=1):
            self.visit(p, inst, day)
            day += timedelta(days=self.rng.choice((21, 28, 35)))
        return p

    def delivered_before(self, inst: str, hospital: str, delivered: date) -> Pregnancy:
        """A woman registered in `inst`'s district who delivered on a day before the month."""
        p = self.earlier_to(inst, delivered)
        svc.record_delivery(
            self.s,
            actor=self.actor,
            pregnancy_id=p.id,
            delivered_on=delivered,
            place="institution",
            institution_code=hospital,
            method=self.rng.choice(("vaginal", "vaginal", "caesarean", "assisted")),
            live_births=1,
        )
        return p

    def earlier_to(self, inst: str, delivery: date) -> Pregnancy:
        """A woman who will be at 37–41 weeks on `delivery`, registered early, visits before it."""
        weeks = self.rng.randint(37, 40)
        reg_week = registration_week(self.rng)
        lmp = delivery - timedelta(weeks=weeks, days=self.rng.randint(0, 6))
        on = lmp + timedelta(weeks=reg_week)
        p = self.register(inst, on, reg_week)
        day = on
        stop = min(delivery - timedelta(days=1), self.first - timedelta(days=1))
        while day <= stop:
            self.visit(p, inst, day)
            day += timedelta(days=self.rng.choice((21, 28)) if (day - lmp).days < 196 else 14)
        return p


def _month_district(w: MonthWriter, code: str, plan: dict[str, int], units: Units) -> None:
    rng, inst = w.rng, units.mch
    # 妇女登记 and 初诊: new women; the first `first_visits` of them are seen on the day they register
    for i in range(plan["registrations"]):
        on = w.day_in_month()
        p = w.register(inst, on, registration_week(rng))
        if i < plan["first_visits"]:
            w.visit(p, inst, on)
    # 复诊: women registered earlier, one return visit each this month
    for _ in range(plan["return_visits"]):
        p = w.earlier(inst, rng.randint(16, 34))
        day = w.day_in_month()
        if not svc.visits_of(w.s, pregnancy_id=p.id)["antenatal"]:
            w.visit(p, inst, w.first - timedelta(days=rng.randint(1, 20)))
        w.visit(p, inst, day)
    # 分娩: women registered months ago deliver at one of the district's hospitals this month
    for _ in range(plan["deliveries"]):
        day = w.day_in_month()
        p = w.earlier_to(inst, day)
        svc.record_delivery(
            w.s,
            actor=w.actor,
            pregnancy_id=p.id,
            delivered_on=day,
            place="institution",
            institution_code=rng.choice(units.hospitals),
            method=rng.choice(("vaginal", "vaginal", "caesarean", "assisted")),
            live_births=1,
        )
    mothers: list[Pregnancy] = []
    # 访视一次: delivered last month, first postpartum visit in the month's first weeks
    for _ in range(plan["postpartum_1"]):
        visit = w.first + timedelta(days=rng.randint(0, 13))
        delivered = min(w.first - timedelta(days=1), visit - timedelta(days=rng.randint(3, 10)))
        p = w.delivered_before(inst, rng.choice(units.hospitals), delivered)
        svc.record_postpartum_visit(
            w.s, actor=w.actor, pregnancy_id=p.id, visit_date=visit, institution_code=inst
        )
        mothers.append(p)
    # 访视两次: delivered last month, first visit last month, second this month
    for _ in range(plan["postpartum_2"]):
        delivered = w.first - timedelta(days=rng.randint(8, 20))
        p = w.delivered_before(inst, rng.choice(units.hospitals), delivered)
        for day in (
            delivered + timedelta(days=rng.randint(3, 7)),
            max(w.first, delivered + timedelta(days=14)),
        ):
            svc.record_postpartum_visit(
                w.s, actor=w.actor, pregnancy_id=p.id, visit_date=day, institution_code=inst
            )
        mothers.append(p)
    # 儿童登记: those mothers' newborns first (linked to the delivery), then others under the mother's ID
    for i in range(plan["children"]):
        mother = mothers[i] if i < len(mothers) else None
        born = mother.delivered_on if mother else w.first - timedelta(days=rng.randint(1, 25))
        assert born
        on = max(w.first, born) + timedelta(days=rng.randint(0, 5))
        on = min(on, w.next - timedelta(days=1))
        c = svc.register_child(
            w.s,
            actor=w.actor,
            institution_code=inst,
            local_id=w.local_id("C"),
            name=w.people.name(),
            sex=rng.choice("12"),
            birth_date=born,
            registered_on=on,
            pregnancy_id=mother.id if mother else None,
            mother_id_number=None if mother else w.people.woman(born)[0],
            birth_weight_g=rng.randint(2600, 4200),
            birth_certificate_no=f"Q{w.first:%y%m}{w.seq:05d}" if mother else None,
        )
        if (on - born).days <= rules.NEWBORN_VISIT_DAYS:
            svc.record_child_visit(
                w.s,
                actor=w.actor,
                child_id=c.id,
                visit_date=on,
                institution_code=inst,
                kind=NEWBORN,
                weight_kg=3.5,
            )


def generate_month(
    session: Session, *, month: str, scale: float, seed: int = 42
) -> dict[str, dict[str, int]]:
    """Write the month's calibrated activity through the services; returns the plan it followed."""
    rng = random.Random(f"mch-month-{month}-{seed}")
    plan = month_plan(scale)
    w = MonthWriter(session, month, rng)
    units = district_units()
    for code, counts in plan.items():
        _month_district(w, code, counts, units[code])
    return plan


# ---------------------------------------------------------------- report-year cohorts (bulk)
