"""The synthetic city's maternal and child health.

- `month_plan` / `generate_month`: one month's activity calibrated to the 2018-03 bulletin's district table
  (南京市妇幼保健信息系统各区使用情况) at a scale s, each cell round-half-up(s × seed), districts at zero
  included, written through the real services (so every rule is checked): women registered with realistic
  gestational weeks and colour grading, first visits, return visits of women registered earlier, deliveries
  of women registered months before, first and second postpartum visits of women delivered the month before,
  children's records opened.
- `generate_year`: the cohorts of a report year for the indicators (about 80,000 × s births and 500,000 × s
  children under 7), calibrated to recent national values; written in bulk (Core inserts) for speed.

Every synthetic record's local id starts with "SYN", so the demo can be run again (`clear`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from rhip.mch import rules, service as svc
from rhip.mch.models import (
    EXAM,
    FIRST,
    NEWBORN,
    PP_CHECK42,
    PP_VISIT,
    RETURN,
    AntenatalVisit,
    CaseFollowUp,
    Child,
    ChildVisit,
    ChildYear,
    PostpartumVisit,
    Pregnancy,
    RiskAssessment,
    Transfer,
)
from rhip.mch.stats import DISTRICT_ORDER, KEYS
from rhip.registry import data as reg_data, idnumber

PREFIX = "SYN"
# 2018 年 3 月南京市妇幼保健信息系统各区使用情况表 (妇女登记, 初诊, 复诊, 访视一次, 访视两次, 分娩, 儿童登记)
SEED_2018_03: dict[str, tuple[int, ...]] = {
    "玄武区": (326, 325, 302, 32, 11, 82, 331),
    "秦淮区": (492, 460, 679, 121, 45, 147, 627),
    "建邺区": (0, 0, 0, 0, 0, 0, 0),
    "鼓楼区": (622, 588, 772, 278, 131, 0, 636),
    "雨花台区": (495, 477, 726, 252, 82, 0, 532),
    "栖霞区": (669, 659, 605, 312, 92, 69, 797),
    "江宁区": (0, 0, 0, 0, 0, 0, 0),
    "浦口区": (1026, 990, 1053, 321, 105, 0, 1133),
    "六合区": (0, 0, 0, 0, 0, 0, 0),
    "溧水区": (475, 434, 507, 13, 26, 328, 398),
    "高淳区": (0, 0, 0, 0, 0, 0, 0),
    "江北新区": (196, 186, 304, 118, 52, 121, 287),
}
SEED_TOTAL_2018_03 = (4301, 4119, 4948, 1447, 544, 747, 4741)
SEED_CUMULATIVE_2018_03 = 563103  # （截止 3 月底，总登记建卡数为 563103）
# colour shares at registration (Jiangsu reports: most women green or yellow, ~1 in 6 orange or above)
COLOUR_SHARES = (("green", 0.42), ("yellow", 0.40), ("orange", 0.15), ("red", 0.03))
PURPLE_SHARE = 0.02
OWNERS = ("王医生", "李医生", "张医生", "刘医生", "陈医生", "杨医生")
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "芳娜秀英敏静丽艳娟霞桂兰玉梅燕红华欣怡梓萱子涵雨婷思琪"
# national values the year's cohorts aim at (China, 2022–2023)
TARGETS = {
    "early": 0.955,  # women registered and first seen before 13 weeks
    "no_visit": 0.02,  # women with no antenatal visit (registered at delivery)
    "five_visits_if_early": 0.995,
    "postpartum": 0.975,
    "hospital": 0.999,
    "twins": 0.012,
    "newborn_visit": 0.968,
    "under3_compliant": 0.935,
    "under7_examined": 0.948,
    "maternal_mortality": 15.7e-5,
    "infant_mortality": 4.9e-3,
    "under5_mortality": 6.8e-3,
}
CITY_BIRTHS = 80_000
CITY_UNDER7 = 500_000


def scaled(n: int, scale: float) -> int:
    """s × n rounded half up (the calibration's rounding rule: 0.5 goes up), on exact decimals."""
    return int((Decimal(str(scale)) * n).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def month_plan(scale: float) -> dict[str, dict[str, int]]:
    """district code -> column key -> the month's count: round-half-up(s × the 2018-03 cell)."""
    codes = {d.name: d.code for d in reg_data.districts()}
    return {
        codes[name]: dict(zip(KEYS, (scaled(n, scale) for n in SEED_2018_03[name]), strict=True))
        for name in DISTRICT_ORDER
    }


@dataclass(frozen=True)
class Units:
    """Where a district's MCH work is recorded: its MCH institute (or a community centre) and hospitals."""

    mch: str
    hospitals: tuple[str, ...]


@cache
def district_units() -> dict[str, Units]:
    """Recording units per district code."""
    out: dict[str, Units] = {}
    for d in reg_data.districts():
        insts = [i for i in reg_data.institutions() if i.district_code == d.code]
        mch = [i.code for i in insts if i.code.startswith("F")] or [
            i.code for i in insts if i.kind == "community_health_centre"
        ]
        hospitals = tuple(i.code for i in insts if i.kind in ("hospital", "mch") and i.upload_route != "none")
        out[d.code] = Units(mch=mch[0], hospitals=hospitals or ("H025",))
    return out


class _People:
    """Synthetic women and children: names and valid ID numbers, never twice the same."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def name(self) -> str:
        return self.rng.choice(SURNAMES) + "".join(self.rng.choices(GIVEN, k=self.rng.choice((1, 2))))

    def woman(self, around: date) -> tuple[str, date]:
        while True:
            born = around - timedelta(days=self.rng.randint(20 * 365, 40 * 365))
            number = idnumber.make_id("320102", born, self.rng.randrange(2, 999, 2))
            if number not in self.used:
                self.used.add(number)
                return number, born


def _colour(rng: random.Random) -> tuple[str, bool]:
    x, acc = rng.random(), 0.0
    for colour, share in COLOUR_SHARES:
        acc += share
        if x < acc:
            return colour, rng.random() < PURPLE_SHARE
    return "green", rng.random() < PURPLE_SHARE


def _registration_week(rng: random.Random) -> int:
    return rng.randint(6, 12) if rng.random() < 0.93 else rng.randint(13, 27)


class MonthWriter:
    """Writes one district's month through the services."""

    def __init__(self, session: Session, month: str, rng: random.Random) -> None:
        self.s, self.rng = session, rng
        y, m = (int(x) for x in month.split("-"))
        self.first = date(y, m, 1)
        self.next = date(y + (m == 12), m % 12 + 1, 1)
        self.people = _People(rng)
        self.seq = 0
        self.actor = svc.Actor(name="synth", role="doctor")

    def day_in_month(self) -> date:
        return self.first + timedelta(days=self.rng.randrange((self.next - self.first).days))

    def local_id(self, kind: str) -> str:
        self.seq += 1
        return f"{PREFIX}-{kind}-{self.first:%Y%m}-{self.seq:07d}"

    def register(self, inst: str, on: date, week: int) -> Pregnancy:
        colour, purple = _colour(self.rng)
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
        reg_week = _registration_week(self.rng)
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
        reg_week = _registration_week(self.rng)
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
        p = w.register(inst, on, _registration_week(rng))
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


def _insert_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """One driver-level executemany of plain rows: each column's bind processor applied once per value and
    the NOT NULL columns the rows leave out filled from their defaults (the ORM's bulk path spent ~2/3 of the
    time building parameters). Table and column names come from the models, never from data."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    keys = list(rows[0])
    extra = [
        c
        for c in table.c
        if c.name not in keys and not c.primary_key and not c.nullable and c.default is not None
    ]
    fixed = tuple(c.default.arg(None) if callable(c.default.arg) else c.default.arg for c in extra)
    fixed = tuple(
        (proc(v) if (proc := c.type._cached_bind_processor(dialect)) else v)
        for c, v in zip(extra, fixed, strict=True)
    )
    procs = [table.c[k].type._cached_bind_processor(dialect) for k in keys]
    names = [*keys, *(c.name for c in extra)]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
    data = [
        (*(p(r[k]) if p and r[k] is not None else r[k] for p, k in zip(procs, keys, strict=True)), *fixed)
        for r in rows
    ]
    conn.exec_driver_sql(sql, data)


class _Bulk:
    """Rows for Core bulk inserts, with ids assigned here (the tables are written in one go)."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.next_p = (
            int(session.scalar(select(Pregnancy.id).order_by(Pregnancy.id.desc()).limit(1)) or 0) + 1
        )
        self.next_c = int(session.scalar(select(Child.id).order_by(Child.id.desc()).limit(1)) or 0) + 1
        self.rows: dict[Any, list[dict[str, Any]]] = {
            t: [] for t in (Pregnancy, AntenatalVisit, PostpartumVisit, Child, ChildVisit, ChildYear)
        }
        self.years: dict[tuple[int, int], int] = {}

    def flush(self) -> None:
        kids = {r["id"]: r for r in self.rows[Child]}
        self.rows[ChildYear].extend(
            {
                "year": y,
                "child_id": c,
                "exams": n,
                "district_code": kids[c]["district_code"],
                "institution_code": kids[c]["institution_code"],
                "birth_date": kids[c]["birth_date"],
                "died_on": kids[c]["died_on"],
            }
            for (c, y), n in self.years.items()
        )
        self.years.clear()
        for model, rows in self.rows.items():
            for i in range(0, len(rows), 20_000):
                _insert_rows(self.s, model.__table__, rows[i : i + 20_000])
            rows.clear()


def _pregnancy_rows(
    b: _Bulk, rng: random.Random, year: int, n: int, units: dict[str, Units], weights: list[int]
) -> list[tuple[int, date, str, str, int, bool]]:
    """The year's deliveries and visits: (pregnancy, birth date, district, institution, live, hospital)."""
    start, end = rules.report_year(year)
    people = _People(rng)
    codes = list(units)
    births = []
    days = (end - start).days + 1
    t = TARGETS
    for i in range(n):
        code = rng.choices(codes, weights)[0]
        u = units[code]
        delivered = start + timedelta(days=rng.randrange(days))
        weeks = rng.choices((34, 36, 37, 38, 39, 40, 41), (2, 3, 10, 25, 30, 25, 5))[0]
        lmp = delivered - timedelta(weeks=weeks, days=rng.randint(0, 6))
        no_visit = rng.random() < t["no_visit"]
        early = not no_visit and rng.random() < t["early"] / (1 - t["no_visit"])
        reg_week = rng.randint(6, 12) if early else (weeks if no_visit else rng.randint(13, 30))
        registered = lmp + timedelta(weeks=reg_week)
        live = 2 if rng.random() < t["twins"] else 1
        hospital = rng.random() < t["hospital"]
        colour, purple = _colour(rng)
        pid = b.next_p
        b.next_p += 1
        number, born = people.woman(registered)
        b.rows[Pregnancy].append(
            {
                "id": pid,
                "institution_code": u.mch,
                "district_code": code,
                "registered_institution_code": u.mch,
                "registered_district_code": code,
                "local_id": f"{PREFIX}-Y{year}-P{i:07d}",
                "id_number": number,
                "name": people.name(),
                "birth_date": born,
                "registered_on": registered,
                "registration_week": reg_week,
                "lmp": lmp,
                "edd": rules.edd_from(lmp),
                "gravidity": 1,
                "parity": 0,
                "status": "delivered",
                "colour": colour,
                "purple": purple,
                "case_owner": rng.choice(OWNERS) if svc.is_case(colour, purple) else None,
                "delivered_on": delivered,
                "delivery_week": weeks,
                "delivery_place": "institution" if hospital else "home",
                "delivery_institution_code": rng.choice(u.hospitals) if hospital else None,
                "delivery_district_code": code,
                "delivery_method": rng.choice(("vaginal", "vaginal", "caesarean")),
                "live_births": live,
                "stillbirths": 0,
                "outcome": "live",
                "maternal_death_on": None,
            }
        )
        row = b.rows[Pregnancy][-1]
        row["anc_visits"], row["first_visit_week"], row["pp_visits_28"] = 0, None, 0
        if not no_visit:
            n_visits = (
                rng.randint(5, 13)
                if early and rng.random() < t["five_visits_if_early"]
                else rng.randint(1, 7)
            )
            day, step = registered, max(7, ((delivered - registered).days - 1) // n_visits)
            for k in range(n_visits):
                if day >= delivered:
                    break
                b.rows[AntenatalVisit].append(
                    {
                        "pregnancy_id": pid,
                        "visit_date": day,
                        "kind": FIRST if k == 0 else RETURN,
                        "gestational_week": (week := rules.gestational_week(lmp, day)),
                        "institution_code": u.mch,
                        "district_code": code,
                        "note": "",
                        "recorded_by": "synth",
                    }
                )
                row["anc_visits"] += 1
                if row["first_visit_week"] is None:
                    row["first_visit_week"] = week
                day += timedelta(days=step)
        if rng.random() < t["postpartum"]:
            row["pp_visits_28"] = 2
            for seq, after in enumerate((rng.randint(3, 7), rng.randint(14, 28)), 1):
                b.rows[PostpartumVisit].append(
                    {
                        "pregnancy_id": pid,
                        "visit_date": delivered + timedelta(days=after),
                        "kind": PP_VISIT,
                        "seq": seq,
                        "days_after": after,
                        "institution_code": u.mch,
                        "district_code": code,
                        "note": "",
                        "recorded_by": "synth",
                    }
                )
            b.rows[PostpartumVisit].append(
                {
                    "pregnancy_id": pid,
                    "visit_date": delivered + timedelta(days=42),
                    "kind": PP_CHECK42,
                    "seq": 1,
                    "days_after": 42,
                    "institution_code": u.mch,
                    "district_code": code,
                    "note": "",
                    "recorded_by": "synth",
                }
            )
        births.append((pid, delivered, code, u.mch, live, hospital))
    return births


def _child_row(
    b: _Bulk,
    rng: random.Random,
    born: date,
    code: str,
    inst: str,
    mother: str,
    pid: int | None,
    tag: str,
    died: date | None = None,
) -> int:
    cid = b.next_c
    b.next_c += 1
    b.rows[Child].append(
        {
            "id": cid,
            "institution_code": inst,
            "district_code": code,
            "local_id": f"{PREFIX}-{tag}-C{cid:08d}",
            "pregnancy_id": pid,
            "birth_order": 1,
            "mother_id_number": mother,
            "name": "合成儿童",
            "sex": rng.choice("12"),
            "birth_date": born,
            "registered_on": born,
            "died_on": died,
            "death_age_months": rules.months_between(born, died) if died else None,
            "newborn_visit_age": None,
        }
    )
    return cid


def _child_visit(b: _Bulk, cid: int, born: date, day: date, kind: str, code: str, inst: str) -> None:
    age = (day - born).days
    if kind == NEWBORN:
        child = b.rows[Child][-1]
        assert child["id"] == cid
        child["newborn_visit_age"] = age
    else:
        key = (cid, rules.year_of(day))
        b.years[key] = b.years.get(key, 0) + 1
    b.rows[ChildVisit].append(
        {
            "child_id": cid,
            "visit_date": day,
            "kind": kind,
            "age_days": age,
            "institution_code": inst,
            "district_code": code,
            "weight_kg": round(3.3 + age / 365 * 2.5, 2),
            "length_cm": round(50 + min(age, 2555) / 365 * 10, 1),
            "note": "",
            "recorded_by": "synth",
        }
    )


_add_months = cache(
    rules.add_months
)  # birth dates repeat across a cohort: the schedule is computed once per day
HISTORY_DAYS = 180  # examinations before the report year are written this far back only


def _child_history(
    b: _Bulk, rng: random.Random, cid: int, born: date, code: str, inst: str, year: int, died: date | None
) -> None:
    """Examinations on schedule up to the year's end; a compliant child keeps every one due in the year."""
    start, end = rules.report_year(year)
    stop = min(end, died) if died else end
    compliant = rng.random() < TARGETS["under3_compliant"]
    examined_at_all = compliant or rng.random() < (
        TARGETS["under7_examined"] - TARGETS["under3_compliant"]
    ) / (1 - TARGETS["under3_compliant"])
    for m in rules.SCHEDULE_MONTHS:
        due = _add_months(born, m) + timedelta(days=int(rng.random() * 11))
        if due > stop:
            break
        if due < start - timedelta(days=HISTORY_DAYS):
            continue
        if due < start or compliant or (examined_at_all and (m > 36 or rng.random() < 0.5)):
            _child_visit(b, cid, born, due, EXAM, code, inst)


def generate_year(session: Session, *, year: int, scale: float, seed: int = 42) -> dict[str, int]:
    """The report year's cohorts: deliveries and visits, newborns, children under 7 (bulk-written)."""
    rng = random.Random(f"mch-year-{year}-{seed}")
    start, end = rules.report_year(year)
    units = district_units()
    plan = month_plan(1.0)
    weights = [
        plan[c]["registrations"] + 200 for c in units
    ]  # every district has births, more where more register
    b = _Bulk(session)
    counts = dict.fromkeys(
        ("pregnancies", "antenatal_visits", "postpartum_visits", "children", "child_visits"), 0
    )

    def tally() -> None:
        for key, model in (
            ("pregnancies", Pregnancy),
            ("antenatal_visits", AntenatalVisit),
            ("postpartum_visits", PostpartumVisit),
            ("children", Child),
            ("child_visits", ChildVisit),
        ):
            counts[key] += len(b.rows[model])

    births = _pregnancy_rows(b, rng, year, max(1, round(CITY_BIRTHS * scale)), units, weights)
    for r in b.rows[Pregnancy]:
        if rng.random() < TARGETS["maternal_mortality"]:
            r["maternal_death_on"] = r["delivered_on"] + timedelta(days=rng.randint(0, 30))
    mothers = {r["id"]: r["id_number"] for r in b.rows[Pregnancy]}
    live_total = sum(x[4] for x in births)
    tally()
    b.flush()
    for pid, born, code, inst, live, _hospital in births:
        for _ in range(live):
            died = None
            if born < end and rng.random() < TARGETS["infant_mortality"]:
                died = born + timedelta(days=rng.randint(1, min(364, (end - born).days)))
            cid = _child_row(b, rng, born, code, inst, mothers[pid], pid, f"Y{year}", died)
            if rng.random() < TARGETS["newborn_visit"] and (died is None or (died - born).days > 21):
                _child_visit(b, cid, born, born + timedelta(days=rng.randint(3, 21)), NEWBORN, code, inst)
            _child_history(b, rng, cid, born, code, inst, year, died)
        if len(b.rows[ChildVisit]) > 50_000:
            tally()
            b.flush()
    # six older birth cohorts, to under 7 at the year's end; deaths at 1–4 years make up the under-5 rate
    people = _People(rng)
    older = max(0, round(CITY_UNDER7 * scale) - live_total)
    lo7 = idnumber.years_before(end, 7) + timedelta(days=1)
    span = (start - lo7).days
    p_u5 = (TARGETS["under5_mortality"] - TARGETS["infant_mortality"]) * live_total / max(1, older * 4 / 6)
    codes = list(units)
    for _ in range(older):
        born = lo7 + timedelta(days=rng.randrange(span))
        code = rng.choices(codes, weights)[0]
        inst = units[code].mch
        died = None
        if rules.months_between(born, start) < 48 and rng.random() < p_u5:
            first = max(start, rules.add_months(born, 12))
            died = first + timedelta(days=rng.randrange(max(1, (end - first).days)))
        cid = _child_row(b, rng, born, code, inst, people.woman(born)[0], None, f"Y{year}", died)
        _child_history(b, rng, cid, born, code, inst, year, died)
        if len(b.rows[ChildVisit]) > 50_000:
            tally()
            b.flush()
    tally()
    b.flush()
    _advance_sequences(session)
    return counts


def _advance_sequences(session: Session) -> None:
    """After rows written with their own ids, PostgreSQL's id sequences must move past them (SQLite takes
    the largest rowid + 1 by itself)."""
    if session.connection().dialect.name != "postgresql":
        return
    for name in (Pregnancy.__tablename__, Child.__tablename__):
        session.execute(
            text("SELECT setval(pg_get_serial_sequence(:t, 'id'), (SELECT max(id) FROM " + name + "))"),
            {"t": name},
        )


def clear(session: Session) -> None:
    """Remove every synthetic MCH record (local ids starting with SYN), so the demo can run again."""
    preg = select(Pregnancy.id).where(Pregnancy.local_id.like(f"{PREFIX}%")).scalar_subquery()
    kids = select(Child.id).where(Child.local_id.like(f"{PREFIX}%")).scalar_subquery()
    session.execute(delete(ChildVisit).where(ChildVisit.child_id.in_(kids)))
    session.execute(delete(ChildYear).where(ChildYear.child_id.in_(kids)))
    session.execute(delete(Child).where(Child.local_id.like(f"{PREFIX}%")))
    for model in (AntenatalVisit, PostpartumVisit, RiskAssessment, CaseFollowUp, Transfer):
        session.execute(delete(model).where(model.pregnancy_id.in_(preg)))
    session.execute(delete(Pregnancy).where(Pregnancy.local_id.like(f"{PREFIX}%")))
