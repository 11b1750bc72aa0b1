"""The report year's synthetic cohorts for the indicators (about 80,000 × s births and 500,000 × s children
under 7), calibrated to recent national values and written in bulk (Core inserts) for speed."""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import cache
from typing import Any

from sqlalchemy import select, text
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
    Child,
    ChildVisit,
    ChildYear,
    PostpartumVisit,
    Pregnancy,
)
from rhip.mch.synth_plan import (
    CITY_BIRTHS,
    CITY_UNDER7,
    OWNERS,
    PREFIX,
    TARGETS,
    People,
    Units,
    district_units,
    month_plan,
    pick_colour,
)
from rhip.registry import idnumber


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
                "expected": rules.expected_exams(kids[c]["birth_date"], y),
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
    people = People(rng)
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
        colour, purple = pick_colour(rng)
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
    people = People(rng)
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
