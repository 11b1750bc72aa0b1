"""The national MCH indicators over a report year (1 October–30 September, named by its end) and the WHO
SMART ANC indicators that map onto the same records. docs/metrics.md (## mch) defines each one.

Three SQL builders (SQLAlchemy Core: bound parameters, the same text on SQLite and PostgreSQL) count
everything per (district, institution) in one pass each over the maternal and the child tables; every
figure is a count, so city, district and institution rows are sums of the same groups.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from rhip.mch import rules
from rhip.mch.models import (
    EXAM,
    NEWBORN,
    PP_VISIT,
    AntenatalVisit,
    Child,
    ChildVisit,
    ChildYear,
    PostpartumVisit,
    Pregnancy,
)
from rhip.registry import data as reg_data, idnumber

COUNTS = (
    "women",
    "live_births",
    "hospital_births",
    "early",
    "anc1",
    "anc4",
    "anc8",
    "first_trimester_who",
    "system",
    "postpartum",
    "maternal_deaths",
    "newborns",
    "newborn_visited",
    "under3",
    "under3_managed",
    "under7",
    "under7_managed",
    "infant_deaths",
    "u5_deaths",
)


def _one(cond: Any, value: Any = 1) -> Any:
    return func.sum(case((cond, value), else_=0))


def maternal_recount_sql(start: date, end: date) -> Select[*tuple[Any, ...]]:
    """The maternal counts recounted from the visit tables (checks the rollups `maternal_sql` reads)."""
    in_year = Pregnancy.delivered_on.between(start, end)
    av = (
        select(
            AntenatalVisit.pregnancy_id.label("pid"),
            func.count().label("n"),
            func.min(AntenatalVisit.gestational_week).label("first_week"),
        )
        .join(Pregnancy, Pregnancy.id == AntenatalVisit.pregnancy_id)
        .where(in_year)
        .group_by(AntenatalVisit.pregnancy_id)
        .subquery()
    )
    pp = (
        select(PostpartumVisit.pregnancy_id.label("pid"), func.count().label("n"))
        .join(Pregnancy, Pregnancy.id == PostpartumVisit.pregnancy_id)
        .where(
            in_year,
            PostpartumVisit.kind == PP_VISIT,
            PostpartumVisit.days_after <= rules.POSTPARTUM_VISIT_DAYS,
        )
        .group_by(PostpartumVisit.pregnancy_id)
        .subquery()
    )
    n_visits = func.coalesce(av.c.n, 0)
    early = and_(Pregnancy.registration_week < rules.EARLY_WEEKS, av.c.first_week < rules.EARLY_WEEKS)
    visited = func.coalesce(pp.c.n, 0) > 0
    return (
        select(
            Pregnancy.district_code,
            Pregnancy.institution_code,
            func.count().label("women"),
            func.sum(Pregnancy.live_births).label("live_births"),
            _one(Pregnancy.delivery_place == "institution", Pregnancy.live_births).label("hospital_births"),
            _one(early).label("early"),
            _one(n_visits >= 1).label("anc1"),
            _one(n_visits >= 4).label("anc4"),
            _one(n_visits >= 8).label("anc8"),
            _one(av.c.first_week < rules.WHO_FIRST_TRIMESTER_WEEKS).label("first_trimester_who"),
            _one(and_(early, n_visits >= 5, visited)).label("system"),
            _one(visited).label("postpartum"),
        )
        .select_from(Pregnancy)
        .outerjoin(av, av.c.pid == Pregnancy.id)
        .outerjoin(pp, pp.c.pid == Pregnancy.id)
        .where(in_year)
        .group_by(Pregnancy.district_code, Pregnancy.institution_code)
    )


def maternal_deaths_sql(start: date, end: date) -> Select[*tuple[Any, ...]]:
    """孕产妇死亡数 per managing (district, institution): deaths dated in [start, end]."""
    return (
        select(Pregnancy.district_code, Pregnancy.institution_code, func.count().label("maternal_deaths"))
        .where(Pregnancy.maternal_death_on.between(start, end))
        .group_by(Pregnancy.district_code, Pregnancy.institution_code)
    )


def child_recount_sql(start: date, end: date) -> Select[*tuple[Any, ...]]:
    """The child counts recounted from the visits table (checks the rollups `child_sql` reads)."""
    cv = (
        select(
            ChildVisit.child_id.label("cid"),
            _one(and_(ChildVisit.kind == NEWBORN, ChildVisit.age_days <= rules.NEWBORN_VISIT_DAYS)).label(
                "nb"
            ),
            _one(and_(ChildVisit.kind == EXAM, ChildVisit.visit_date <= end)).label("exams"),
        )
        .where(ChildVisit.visit_date.between(start, end + timedelta(days=rules.NEWBORN_VISIT_DAYS)))
        .group_by(ChildVisit.child_id)
        .subquery()
    )
    base = select().select_from(Child).outerjoin(cv, cv.c.cid == Child.id)
    return _child_counts(base, start, end, func.coalesce(cv.c.nb, 0), func.coalesce(cv.c.exams, 0))


def maternal_sql(start: date, end: date) -> Select[*tuple[Any, ...]]:
    """Women delivered in [start, end] per managing (district, institution): the maternal counts, from the
    episode's rollups (visit count, week of the first visit, postpartum visits within 28 days)."""
    n_visits = Pregnancy.anc_visits
    early = and_(
        Pregnancy.registration_week < rules.EARLY_WEEKS, Pregnancy.first_visit_week < rules.EARLY_WEEKS
    )
    visited = Pregnancy.pp_visits_28 > 0
    return (
        select(
            Pregnancy.district_code,
            Pregnancy.institution_code,
            func.count().label("women"),
            func.sum(Pregnancy.live_births).label("live_births"),
            _one(Pregnancy.delivery_place == "institution", Pregnancy.live_births).label("hospital_births"),
            _one(early).label("early"),
            _one(n_visits >= 1).label("anc1"),
            _one(n_visits >= 4).label("anc4"),
            _one(n_visits >= 8).label("anc8"),
            _one(Pregnancy.first_visit_week < rules.WHO_FIRST_TRIMESTER_WEEKS).label("first_trimester_who"),
            _one(and_(early, n_visits >= 5, visited)).label("system"),
            _one(visited).label("postpartum"),
        )
        .where(Pregnancy.delivered_on.between(start, end))
        .group_by(Pregnancy.district_code, Pregnancy.institution_code)
    )


def child_sql(start: date, end: date) -> Select[*tuple[Any, ...]]:
    """Children under 7 at the year's end per (district, institution): denominators, newborn visits, deaths
    and the managed children who needed no examination, from the children table alone (rollup
    `newborn_visit_age`); the examination-based numerators come from `child_exams_sql`."""
    lo7 = idnumber.years_before(end, 7) + timedelta(days=1)
    lo3 = idnumber.years_before(end, 3) + timedelta(days=1)
    nb = Child.newborn_visit_age.is_not(None)
    alive = or_(Child.died_on.is_(None), Child.died_on > end)
    born = Child.birth_date.between(start, end)
    under3 = and_(Child.birth_date >= lo3, alive)
    # the schedule's windows (m = 1 … 36 months) cover every birth date from start − 36 months to end − 1
    # month, so an under-3 child has no examination due in the year only when born in the year's last month
    nothing_due = Child.birth_date > rules.add_months(end, -rules.UNDER3_SCHEDULE[0])
    died = Child.died_on.between(start, end)
    return (
        select(
            Child.district_code,
            Child.institution_code,
            _one(born).label("newborns"),
            _one(and_(born, nb)).label("newborn_visited"),
            _one(under3).label("under3"),
            _one(and_(under3, nothing_due, nb)).label("under3_managed"),
            _one(alive).label("under7"),
            _one(and_(died, Child.death_age_months < 12)).label("infant_deaths"),
            _one(and_(died, Child.death_age_months < 60)).label("u5_deaths"),
        )
        .where(Child.birth_date.between(lo7, end))
        .group_by(Child.institution_code, Child.district_code)
    )


def child_exams_sql(start: date, end: date) -> Select[*tuple[Any, ...]]:
    """The examination-based numerators (3岁以下 managed with examinations due, 7岁以下 examined) from the
    per-child, per-year rollup alone: a row exists only for a child examined in the year."""
    lo7 = idnumber.years_before(end, 7) + timedelta(days=1)
    lo3 = idnumber.years_before(end, 3) + timedelta(days=1)
    y = ChildYear
    expected = y.expected  # kept with the row (`rules.expected_exams`), not nine date tests a row
    alive = or_(y.died_on.is_(None), y.died_on > end)
    # the age limit is tested in the sums, not the WHERE: a range on birth_date there led SQLite to a
    # skip-scan of the index plus a sort, where the year's rows read in group order need neither
    # (a row's birth date is never after the year's end: it has an examination in the year)
    return (
        select(
            y.district_code,
            y.institution_code,
            _one(and_(y.birth_date >= lo3, alive, expected > 0, y.exams >= expected)).label("under3_managed"),
            _one(and_(y.birth_date >= lo7, alive)).label("under7_managed"),
        )
        .where(y.year == rules.year_of(end))
        .group_by(y.institution_code, y.district_code)
    )


def _expected(birth: Any, start: date, end: date) -> Any:
    """Examinations due in the year: scheduled age m falls in [start, end] when birth is m months before."""
    return sum(
        (
            case((birth.between(rules.add_months(start, -m), rules.add_months(end, -m)), 1), else_=0)
            for m in rules.UNDER3_SCHEDULE
        ),
        literal(0),
    )


def _child_counts(base: Select[Any], start: date, end: date, nb: Any, exams: Any) -> Select[*tuple[Any, ...]]:
    lo7 = idnumber.years_before(end, 7) + timedelta(days=1)
    lo3 = idnumber.years_before(end, 3) + timedelta(days=1)
    expected = _expected(Child.birth_date, start, end)
    alive = or_(Child.died_on.is_(None), Child.died_on > end)
    born = Child.birth_date.between(start, end)
    under3 = and_(Child.birth_date >= lo3, alive)
    managed3 = or_(and_(expected > 0, exams >= expected), and_(expected == 0, nb > 0))
    died = Child.died_on.between(start, end)
    return (
        base.add_columns(
            Child.district_code,
            Child.institution_code,
            _one(born).label("newborns"),
            _one(and_(born, nb > 0)).label("newborn_visited"),
            _one(under3).label("under3"),
            _one(and_(under3, managed3)).label("under3_managed"),
            _one(alive).label("under7"),
            _one(and_(alive, exams > 0)).label("under7_managed"),
            _one(and_(died, Child.death_age_months < 12)).label("infant_deaths"),
            _one(and_(died, Child.death_age_months < 60)).label("u5_deaths"),
        )
        .where(Child.birth_date.between(lo7, end))
        .group_by(Child.institution_code, Child.district_code)
    )


Groups = dict[tuple[str, str], dict[str, int]]


def group_counts(session: Session, *, year: int, recount: bool = False) -> Groups:
    """Every count of the report year per (district code, institution code): from the rollups, or (recount)
    from the visit tables themselves."""
    start, end = rules.report_year(year)
    out: Groups = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    stmts = (
        (maternal_recount_sql(start, end), maternal_deaths_sql(start, end), child_recount_sql(start, end))
        if recount
        else (
            maternal_sql(start, end),
            maternal_deaths_sql(start, end),
            child_sql(start, end),
            child_exams_sql(start, end),
        )
    )
    for stmt in stmts:
        for row in session.execute(stmt).mappings():
            target = out[(row["district_code"], row["institution_code"])]
            for k, v in row.items():
                if k in target:
                    target[k] += int(v or 0)
    return dict(out)


@dataclass(frozen=True)
class Definition:
    """One indicator: Chinese name, numerator and denominator counts, scale (100 = %, 1000 = ‰ …)."""

    key: str
    name: str
    numerator: str
    denominator: str
    per: int = 100
    source: str = "national"


DEFINITIONS: tuple[Definition, ...] = (
    Definition("early_registration", "早孕建册率", "early", "live_births"),
    Definition("antenatal_care", "产前检查率", "anc1", "live_births"),
    Definition("maternal_system_management", "孕产妇系统管理率", "system", "live_births"),
    Definition("postpartum_visit", "产后访视率", "postpartum", "live_births"),
    Definition("hospital_delivery", "住院分娩率", "hospital_births", "live_births"),
    Definition("newborn_visit", "新生儿访视率", "newborn_visited", "live_births"),
    Definition("under3_system_management", "3岁以下儿童系统管理率", "under3_managed", "under3"),
    Definition("under7_health_management", "7岁以下儿童健康管理率", "under7_managed", "under7"),
    Definition("maternal_mortality", "孕产妇死亡率（/10万）", "maternal_deaths", "live_births", 100_000),
    Definition("infant_mortality", "婴儿死亡率（‰）", "infant_deaths", "live_births", 1000),
    Definition("under5_mortality", "5岁以下儿童死亡率（‰）", "u5_deaths", "live_births", 1000),
    Definition(
        "ANC.IND.01",
        "ANC.IND.01 孕早期（<12 周）首次产前检查比例",
        "first_trimester_who",
        "women",
        100,
        "who",
    ),
    Definition("ANC.IND.04", "ANC.IND.04 至少 4 次产前检查比例", "anc4", "women", 100, "who"),
    Definition("ANC.IND.05", "ANC.IND.05 至少 8 次产前检查比例", "anc8", "women", 100, "who"),
)
# at an institution, newborns are counted where the child is registered: the denominator is its newborns
INSTITUTION_DENOMINATOR = {"newborn_visit": "newborns"}


@dataclass
class Row:
    """The counts and indicator values of one unit (city, district or institution)."""

    code: str
    name: str
    counts: dict[str, int]
    institution: bool = False

    def value(self, d: Definition) -> float | None:
        """The indicator's value (None when the denominator is zero), rounded to 2 decimals."""
        den_key = INSTITUTION_DENOMINATOR.get(d.key, d.denominator) if self.institution else d.denominator
        den = self.counts.get(den_key, 0)
        return round(self.counts.get(d.numerator, 0) * d.per / den, 2) if den else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: counts and values by indicator key."""
        return {
            "code": self.code,
            "name": self.name,
            "counts": self.counts,
            "indicators": {d.key: self.value(d) for d in DEFINITIONS},
        }


@dataclass
class Report:
    """A report year's indicators: the total, its districts and its institutions."""

    year: int
    start: date
    end: date
    district: str | None
    total: Row
    districts: list[Row] = field(default_factory=list)
    institutions: list[Row] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "year": self.year,
            "period": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "district": self.district,
            "definitions": [
                {
                    "key": d.key,
                    "name": d.name,
                    "numerator": d.numerator,
                    "denominator": d.denominator,
                    "per": d.per,
                    "source": d.source,
                }
                for d in DEFINITIONS
            ],
            "total": self.total.as_dict(),
            "districts": [r.as_dict() for r in self.districts],
            "institutions": [r.as_dict() for r in self.institutions],
        }


def _sum(groups: list[dict[str, int]]) -> dict[str, int]:
    out = dict.fromkeys(COUNTS, 0)
    for g in groups:
        for k, v in g.items():
            out[k] += v
    return out


def _district_name(code: str) -> str:
    d = reg_data.district_by(code)
    return d.name if d else code


def _institution_name(code: str) -> str:
    inst = reg_data.get(code)
    return inst.name if inst else code


def report(session: Session, *, year: int, district: str | None = None) -> Report:
    """The report year's indicators for the city (or one district), with district and institution rows."""
    start, end = rules.report_year(year)
    groups = group_counts(session, year=year)
    if district:
        if reg_data.district_by(district) is None:
            from rhip.errors import Invalid

            raise Invalid(f"未知的行政区代码：{district}", code="unknown-district")
        groups = {k: v for k, v in groups.items() if k[0] == district}
    by_district: dict[str, list[dict[str, int]]] = defaultdict(list)
    by_inst: dict[str, list[dict[str, int]]] = defaultdict(list)
    for (d, inst), counts in groups.items():
        by_district[d].append(counts)
        by_inst[inst].append(counts)
    order = {d.code: i for i, d in enumerate(reg_data.districts())}
    total_code, total_name = (district, _district_name(district)) if district else ("320100", "南京市")
    return Report(
        year=year,
        start=start,
        end=end,
        district=district,
        total=Row(total_code, total_name, _sum(list(groups.values()))),
        districts=[
            Row(d, _district_name(d), _sum(v))
            for d, v in sorted(by_district.items(), key=lambda kv: order.get(kv[0], 99))
        ],
        institutions=[
            Row(i, _institution_name(i), _sum(v), institution=True) for i, v in sorted(by_inst.items())
        ],
    )
