"""The city's month: which institutions upload, their calibrated activity (visits, stays) and patients."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rhip.registry import catalogue, data as registry, directories, icd10
from rhip.registry.data import InstitutionRecord
from rhip.synth import identities, lexicon, residents, vec, vocab
from rhip.synth.calibration import Target
from rhip.synth.defects import DefectRates

DAY = 86400
# Real-time tables an institution sends in real time, by priority (the bulletin's x/12 takes the first x
# that have data at that institution).
FORM_PRIORITY = (
    "outpatient_registration",
    "outpatient_visit",
    "fee_settlement",
    "diagnosis",
    "prescription",
    "prescription_item",
    "lab_report",
    "lab_result",
    "exam_report",
    "admission",
    "discharge_summary",
    "inpatient_order",
)
REALTIME_LAG = (30, 300)  # seconds from event to 数据采集时间 for rows sent in real time
BATCH_LAG = (3 * 3600, 20 * 3600)  # rows sent in the scheduled batch: not real time, not late (< 24 h)


@dataclass
class Plan:
    """One uploading unit (hospital or district platform) for the month."""

    code: str
    name: str  # as printed in the bulletin
    record: InstitutionRecord
    target: Target
    encoding: str
    upload_days: np.ndarray  # 0-based days of the month with real-time data
    forms: int  # real-time tables to send in real time
    departments: list[str]
    icd: np.ndarray  # indices into ICD table
    stats_visits: int  # the 卫统 report's (true) figures
    stats_discharges: int
    district_code: str | None


@dataclass
class Activity:
    """One unit's valid events and the patients behind them; times are seconds since 1970 (local)."""

    # patients (one per person seen this month)
    p_person: np.ndarray
    p_name: pa.Array
    p_id: pa.Array  # id number as recorded (may be null)
    p_phone: pa.Array
    p_variant: np.ndarray  # 0 none, 1 homophone, 2 missing id, 3 other phone, 4 n/l (loose pinyin) merger
    p_first: np.ndarray  # first event of the month
    # outpatient visits
    v_pat: np.ndarray
    v_time: np.ndarray
    v_type: np.ndarray
    v_dept: np.ndarray
    v_doc: np.ndarray
    v_fee: np.ndarray  # fen
    v_icd: np.ndarray
    # inpatient stays; the first n_valid are discharged this month, the rest are ghosts (extra records)
    s_pat: np.ndarray
    s_admit: np.ndarray
    s_dis: np.ndarray
    s_dept: np.ndarray
    s_doc: np.ndarray
    s_fee: np.ndarray
    s_icd: np.ndarray
    n_stays: int
    doctors: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    doctor_names: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))


@dataclass
class Month:
    """Calendar facts of the synthetic month."""

    month: str
    start_day: int  # days since 1970 of the 1st
    days: int

    @property
    def start(self) -> int:
        """First second of the month."""
        return self.start_day * DAY

    @property
    def end(self) -> int:
        """First second after the month."""
        return (self.start_day + self.days) * DAY

    @classmethod
    def of(cls, month: str) -> Month:
        """The month from YYYY-MM."""
        y, m = (int(x) for x in month.split("-"))
        first = date(y, m, 1)
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        return cls(month, residents.day_number(first), (nxt - first).days)


ICD_CODES: list[str] = []
ICD_NAMES: list[str] = []
ICD_CHAPTER: list[str] = []


def icd_tables() -> tuple[list[str], list[str], list[str]]:
    """The ICD-10 subset as parallel lists (code, name, chapter)."""
    if not ICD_CODES:
        for c in icd10.icd10().values():
            ICD_CODES.append(c.code)
            ICD_NAMES.append(c.name)
            ICD_CHAPTER.append(c.chapter)
    return ICD_CODES, ICD_NAMES, ICD_CHAPTER


def _departments(name: str, kind: str) -> list[str]:
    known = {d.code for d in directories.departments()}
    for keyword, depts in vocab.SPECIALTY_DEPARTMENTS:
        if keyword in name:
            return [d for d in depts if d in known]
    if kind == "district_platform":
        return [d for d in ["02", "01", "03", "50", "12", "09", "04", "07", "20"] if d in known]
    return [d for d in vocab.GENERAL_DEPARTMENTS if d in known]


def _icd_pool(name: str) -> np.ndarray:
    _, _, chapters = icd_tables()
    chap = np.array(chapters)
    for keyword, wanted in vocab.SPECIALTY_CHAPTERS:
        if keyword in name:
            pool = np.flatnonzero(np.isin(chap, wanted))
            if len(pool):
                return pool
    common = ["IX", "X", "XI", "IV", "XIII", "XIV", "XVIII", "XXI", "I", "XII", "VI", "VII", "VIII", "XIX"]
    return np.flatnonzero(np.isin(chap, common))


def plans(
    month: Month, targets: list[Target], *, seed: int, gbk_share: float, rates: DefectRates
) -> list[Plan]:
    """Every institution of the seed table that uploads something this month, in the table's order."""
    realtime = [d.name for d in catalogue.realtime_datasets()]
    n_forms = len(realtime)
    out: list[Plan] = []
    for t in targets:
        rec = registry.resolve_name(t.name)
        if rec is None:
            raise ValueError(f"seed institution not in the registry: {t.name}")
        if t.uploads <= 0 and t.visits <= 0 and t.discharges <= 0:
            continue
        gen = vec.rng(seed, "plan", rec.code)
        days = min(t.upload_days, month.days)
        upload_days = (
            np.sort(gen.choice(month.days, size=days, replace=False)) if days else np.zeros(0, np.int64)
        )
        if t.forms is None:
            forms = n_forms if days else 0
        else:
            forms = round(t.forms * n_forms / (t.forms_of or n_forms))
        if days == 0:
            forms = 0
        loss = gen.uniform(0, 2 * rates.data_loss) if rates.data_loss > 0 else 0.0
        district = registry.district_by(rec.district) if rec.district else None
        out.append(
            Plan(
                code=rec.code,
                name=t.name,
                record=rec,
                target=t,
                encoding="utf-8",
                upload_days=upload_days.astype(np.int64),
                forms=forms,
                departments=_departments(rec.name, rec.kind),
                icd=_icd_pool(rec.name),
                stats_visits=_statistics(t.visits, t.visit_upload_rate, loss),
                stats_discharges=_statistics(t.discharges, t.discharge_upload_rate, loss),
                district_code=district.code if district else None,
            )
        )
    n_gbk = round(gbk_share * len(out))
    order = vec.rng(seed, "gbk").permutation(len(out))
    for i in order[:n_gbk]:
        out[int(i)].encoding = "gbk"
    return out


def _statistics(uploaded: int, rate: float | None, loss: float) -> int:
    """The 卫统 figure behind an uploaded one: from the seed's upload rate where printed, else the loss."""
    if rate and rate > 0:
        return max(uploaded, round(uploaded * 100 / rate))
    return round(uploaded / (1 - loss))


# ------------------------------------------------------------------ who visits whom


def _person_weights(pop: residents.Residents, plan: Plan, month: Month) -> np.ndarray:
    """How likely each resident is to be a patient of this unit (home, age, sex, specialty)."""
    age = (month.start_day - pop.birth) / 365.2425
    w = np.where(age < 5, 1.5, np.where(age < 18, 0.7, np.where(age < 45, 0.8, np.where(age < 60, 1.0, 1.8))))
    home = pop.home
    name = plan.record.name
    districts = list(lexicon.DISTRICTS)
    own = districts.index(plan.record.district) if plan.record.district in districts else -1
    nanjing = home < residents.N_DISTRICTS
    if plan.record.kind == "district_platform":
        w = w * np.where(home == own, 1.0, np.where(nanjing, 0.003, 0.0))
        w = w * np.where(age >= 60, 1.5, 1.0)
    else:
        metro = 0.5 if plan.record.tertiary else 0.05
        w = w * np.where(home == own, 3.0, np.where(nanjing, 1.0, metro))
    if "儿童" in name:
        w = w * np.where(age < 14, 30.0, 0.02)
    elif "妇幼" in name or "妇产" in name:
        w = w * np.where((pop.sex == 2) & (age >= 18) & (age < 50), 15.0, np.where(age < 7, 6.0, 0.05))
    elif "肿瘤" in name or "胸科" in name:
        w = w * np.where(age >= 45, 3.0, 0.3)
    elif "口腔" in name or "眼科" in name or "皮肤" in name:
        w = w * 1.0
    return np.asarray(w, dtype=np.float64)


def _sample_pool(weights: np.ndarray, size: int, gen: np.random.Generator) -> np.ndarray:
    """Distinct residents drawn with probability proportional to weight (Efraimidis–Spirakis keys)."""
    ok = np.flatnonzero(weights > 0)
    size = min(size, len(ok))
    if size <= 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.log(gen.random(len(ok))) / weights[ok]
    pick = np.argpartition(-keys, size - 1)[:size]
    return np.sort(ok[pick])


def _days_weights(month: Month) -> np.ndarray:
    dow = (np.arange(month.days) + month.start_day + 3) % 7  # 1970-01-01 was a Thursday (3)
    return np.where(dow == 5, 0.6, np.where(dow == 6, 0.5, 1.0))


_OPD_HOURS = np.array(
    [0, 0, 0, 0, 0, 0, 0, 2, 9, 10, 9, 6, 2, 4, 7, 7, 5, 3, 1.5, 1, 0.6, 0.4, 0.2, 0], float
)


def _times(
    n: int, month: Month, gen: np.random.Generator, *, emergency: np.ndarray | None = None
) -> np.ndarray:
    """Event times in the month: weekday-heavy days, clinic hours (emergencies round the clock, to 23:30)."""
    dw = _days_weights(month)
    day = gen.choice(month.days, size=n, p=dw / dw.sum())
    hour = gen.choice(24, size=n, p=_OPD_HOURS / _OPD_HOURS.sum())
    if emergency is not None:
        hour = np.where(emergency, gen.integers(0, 24, size=n), hour)
    sec = hour * 3600 + gen.integers(0, 3600, size=n)
    sec = np.minimum(sec, 23 * 3600 + 1800)
    return np.asarray(month.start + day.astype(np.int64) * DAY + sec.astype(np.int64), dtype=np.int64)


def activity(
    plan: Plan, pop: residents.Residents, month: Month, *, seed: int, rates: DefectRates, ghosts: int
) -> Activity:
    """The unit's valid outpatient visits and discharged stays (calibrated), plus `ghosts` extra stays."""
    gen = vec.rng(seed, "activity", plan.code)
    t = plan.target
    n_v, n_s = t.visits, t.discharges
    weights = _person_weights(pop, plan, month)
    pool = _sample_pool(weights, max(1, round(0.75 * n_v + n_s)), gen)
    freq = gen.lognormal(0.0, 0.8, size=len(pool)) * weights[pool]
    p = freq / freq.sum() if len(pool) else freq

    # outpatient visits
    v_person = pool[gen.choice(len(pool), size=n_v, p=p)] if n_v and len(pool) else np.zeros(0, np.int64)
    emergency = gen.random(n_v) < (0.12 if plan.record.kind != "district_platform" else 0.03)
    v_time = _times(n_v, month, gen, emergency=emergency)
    # every real-time upload day gets at least one visit, early enough for its follow-ups to stay that day
    k = min(n_v, len(plan.upload_days))
    if k:
        v_time[:k] = month.start + plan.upload_days[:k] * DAY + gen.integers(8 * 3600, 10 * 3600, size=k)
        emergency[:k] = False
    fee_w = gen.lognormal(0.0, 0.9, size=n_v) * np.where(emergency, 1.6, 1.0)
    v_fee = vec.spread(t.visit_revenue, fee_w, gen) if n_v else np.zeros(0, np.int64)

    # inpatient stays: valid ones discharged this month, ghosts likewise (their records are extras)
    n_all = n_s + ghosts
    sw = weights[pool] * np.where((month.start_day - pop.birth[pool]) / 365.2425 > 50, 2.0, 1.0)
    s_person = (
        pool[gen.choice(len(pool), size=n_all, p=sw / sw.sum())]
        if n_all and len(pool)
        else np.zeros(0, np.int64)
    )
    s_dis = _times(n_all, month, gen)
    s_dis = (s_dis // DAY) * DAY + gen.integers(9 * 3600, 16 * 3600, size=n_all)
    los = np.clip(np.round(gen.lognormal(1.9, 0.6, size=n_all)), 1, 90).astype(np.int64)
    s_admit = s_dis - los * DAY + gen.integers(-5 * 3600, 5 * 3600, size=n_all)
    if n_s and len(plan.upload_days):
        first, last = plan.upload_days[0], plan.upload_days[-1]
        s_admit[0] = month.start + first * DAY + 8 * 3600 + int(gen.integers(0, 3600))
        s_dis[0] = month.start + last * DAY + 15 * 3600 + int(gen.integers(0, 3600))
    s_admit = np.minimum(s_admit, s_dis - 3600)
    dis_w = gen.lognormal(0.0, 0.6, size=n_s) * (1 + (s_dis[:n_s] - s_admit[:n_s]) / DAY / 10)
    s_fee = np.zeros(n_all, np.int64)
    if n_s:
        s_fee[:n_s] = vec.spread(t.inpatient_revenue, dis_w, gen)
    if ghosts:
        s_fee[n_s:] = np.round(gen.lognormal(9.5, 0.6, size=ghosts) * 100).astype(np.int64)

    # patients: each person seen here once, first-seen order
    persons = np.concatenate([v_person, s_person])
    first_time = np.concatenate([v_time, s_admit])
    uniq, inverse = np.unique(persons, return_inverse=True)
    first = np.full(len(uniq), np.iinfo(np.int64).max)
    np.minimum.at(first, inverse, first_time)
    v_pat, s_pat = inverse[:n_v], inverse[n_v:]

    n_p = len(uniq)
    u = gen.random(n_p)
    variant = np.zeros(n_p, np.int8)
    cut1 = rates.homophone
    cut2 = cut1 + rates.missing_id
    cut3 = cut2 + rates.other_phone
    variant[u < cut1] = 1
    variant[(u >= cut1) & (u < cut2)] = 2
    variant[(u >= cut2) & (u < cut3)] = 3
    name = pop.name.take(pa.array(uniq))
    # the local n/l, -n/-ng and z/zh mergers: drawn from a stream of their own, so every other draw of
    # the unit (and so every other table) stays as it was without them
    nl_gen = vec.rng(seed, "nl-merger", plan.code)
    nl = np.flatnonzero((variant == 0) & (nl_gen.random(n_p) < rates.nl_merger))
    if (variant == 1).any() or len(nl):
        names = name.to_pylist()
        for i in np.flatnonzero(variant == 1):
            names[i] = residents.homophone(names[i], gen)
        for i in nl:
            merged = identities.nl_merger(names[i], nl_gen)
            if merged != names[i]:
                names[i], variant[i] = merged, 4
        name = pa.array(names, pa.string())
    idn = pop.id_number.take(pa.array(uniq))
    idn = pc.if_else(pa.array(variant == 2), pa.scalar(None, pa.string()), idn)
    phone_num = pop.phone[uniq].copy()
    other = variant == 3
    prefixes = np.array(lexicon.PHONE_PREFIXES, np.int64)
    phone_num[other] = prefixes[gen.integers(0, len(prefixes), size=int(other.sum()))] * 10**8 + gen.integers(
        0, 10**8, size=int(other.sum())
    )

    n_dept = len(plan.departments)
    n_doc = int(np.clip((n_v + 30 * n_s) // 300, 5, 400))
    doc_gen = vec.rng(seed, "doctors", plan.code)
    sw2 = np.array([w for _, w in lexicon.SURNAMES])
    doc_names = residents.names(
        doc_gen.choice(len(sw2), size=n_doc, p=sw2 / sw2.sum()),
        doc_gen.integers(0, len(residents.GIVEN), size=n_doc),
        doc_gen.integers(-1, len(residents.GIVEN), size=n_doc),
    )
    icd = plan.icd
    return Activity(
        p_person=uniq.astype(np.int64),
        p_name=name,
        p_id=idn,
        p_phone=vec.text(phone_num),
        p_variant=variant,
        p_first=first,
        v_pat=v_pat.astype(np.int64),
        v_time=v_time,
        v_type=np.where(emergency, 2, 1).astype(np.int8),
        v_dept=gen.integers(0, n_dept, size=n_v),
        v_doc=gen.integers(0, n_doc, size=n_v),
        v_fee=v_fee,
        v_icd=icd[gen.integers(0, len(icd), size=n_v)],
        s_pat=s_pat.astype(np.int64),
        s_admit=s_admit,
        s_dis=s_dis,
        s_dept=gen.integers(0, n_dept, size=n_all),
        s_doc=gen.integers(0, n_doc, size=n_all),
        s_fee=s_fee,
        s_icd=icd[gen.integers(0, len(icd), size=n_all)],
        n_stays=n_s,
        doctors=vec.padded(np.arange(1, n_doc + 1), 4, "D"),
        doctor_names=doc_names,
    )


def timing(
    event: np.ndarray, *, realtime: bool, enabled: bool, plan: Plan, month: Month, gen: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(数据采集时间, 数据更新时间, sent in real time?) for rows with these event times.

    Real-time tables send rows in real time (30 s–5 min after the event, same day) when the table is one
    the unit sends in real time and the event falls on one of its upload days (or before the month:
    those rows were sent back then); every other row comes with the scheduled batch 3–20 hours later —
    not real time, but within the 24-hour limit, so never late.
    """
    n = len(event)
    if realtime and enabled:
        day = (event - month.start) // DAY
        rt = (day < 0) | np.isin(day, plan.upload_days)
    else:
        rt = np.zeros(n, dtype=bool)
    day_left = DAY - 1 - (event % DAY)  # a real-time row is collected the same day as its event
    lag = np.where(
        rt, np.minimum(gen.integers(*REALTIME_LAG, size=n), day_left), gen.integers(*BATCH_LAG, size=n)
    )
    updated = event + np.minimum(gen.integers(0, 30, size=n), lag)
    return event + lag, updated, rt
