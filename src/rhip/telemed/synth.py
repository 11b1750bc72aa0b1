# ruff: noqa: E501
"""The synthetic city's telemedicine: connections shaped like the seeds' (totals by category, districts
not covered, metro cities), the centres' members, and a month of activity at scale s — requests that go
through the workflow with realistic turnaround, imaging studies, lab reports collected and specimens
routed, pathology cases, meetings and lectures — calibrated to the 2022-08 figures (2020-05 for itself).

Counts are `calibration.scaled(figure, s)` exactly; the named top-3 uploaders get their own scaled figures
and every other connected institution stays below the third."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.registry import data as reg
from rhip.registry.idnumber import make_id
from rhip.telemed import bulk, service as svc
from rhip.telemed.calibration import NANJING_DISTRICTS, figures_for, scaled
from rhip.telemed.models import Collected, Connection, Member, Request, Specimen, Study

AREAS = (
    "320102",
    "320104",
    "320105",
    "320106",
    "320111",
    "320113",
    "320114",
    "320115",
    "320116",
    "320117",
    "320118",
)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
MODALITIES = (("CT", 0.45), ("DX", 0.3), ("MR", 0.15), ("US", 0.1))


@dataclass
class Plan:
    """What the generator made (for the demo summary and the tests)."""

    month: str
    calibrated_to: str
    scale: float
    connections: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    studies: list[dict[str, Any]] = field(default_factory=list)
    collected: int = 0
    specimens: int = 0


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """First instant of the month and of the next, in Nanjing time."""
    y, m = (int(x) for x in month.split("-"))
    first = datetime(y, m, 1, tzinfo=clock.SHANGHAI)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _patient(rng: random.Random) -> tuple[str, str, str]:
    born = date(rng.randint(1940, 2020), rng.randint(1, 12), rng.randint(1, 28))
    seq = rng.randint(0, 999)
    return make_id(rng.choice(AREAS), born, seq), _name(rng), "1" if seq % 2 else "2"


# ------------------------------------------------------------------ connections


def _pick(
    rng: random.Random, pool: list[reg.InstitutionRecord], n: int, taken: set[str]
) -> list[reg.InstitutionRecord]:
    free = [i for i in pool if i.code not in taken]
    rng.shuffle(free)
    out = free[:n]
    taken.update(i.code for i in out)
    return out


def build_connections(session: Session, *, month: str, seed: int = 7) -> int:
    """Connect institutions to the five centres as the calibration month's paragraphs describe (once)."""
    if session.scalar(select(func.count()).select_from(Connection)):
        return 0
    key, figs = figures_for(month)
    rng = random.Random(seed)
    insts = [i for i in reg.institutions() if i.left_on is None]
    since = date(int(key[:4]) - 1, 1, 1)
    made = 0
    for code, spec in figs.items():
        c = svc.centre(code)
        started = date(max(c.started_year, since.year), 1, 1)
        excluded = set(spec.get("not_covered") or ())
        allowed = [d for d in NANJING_DISTRICTS if d not in excluded]
        cats = dict(spec["cats"])
        taken: set[str] = set()
        chosen: list[tuple[reg.InstitutionRecord | None, dict[str, Any]]] = []

        def local(i: reg.InstitutionRecord) -> bool:
            return i.ownership == "区属" or i.kind in ("community_health_centre", "district_platform")

        def ok(i: reg.InstitutionRecord, excluded: set[str] = excluded) -> bool:
            return not (local(i) and i.district in excluded)

        # the named top uploaders are connected, and count in their categories
        for name, _v in spec.get("top", []):
            inst = reg.resolve_name(name)
            assert inst is not None, name
            taken.add(inst.code)
            chosen.append((inst, {}))
            cat = svc.category_of(inst)
            if cat in cats:
                cats[cat] -= 1
        upper = [
            i for i in insts
            if svc.category_of(i) == "二级以上" and ok(i) and (i.level == "三级" or not spec.get("tertiary_only"))
        ]  # fmt: skip
        chosen += [(i, {}) for i in _pick(rng, upper, cats.pop("二级以上", 0), taken)]
        metro_cities = spec.get("metro_cities")
        metro = [
            i
            for i in insts
            if svc.category_of(i) == "都市圈城市" and (not metro_cities or i.city in metro_cities)
        ]
        chosen += [(i, {}) for i in _pick(rng, metro, cats.pop("都市圈城市", 0), taken)]
        aid = [i for i in insts if svc.category_of(i) == "对外帮扶"]
        n_aid = cats.pop("对外帮扶", 0)
        got = _pick(rng, aid, n_aid, taken)
        chosen += [(i, {}) for i in got]
        chosen += [
            (
                None,
                {"site_name": f"对口帮扶地区医疗机构{k + 1}", "city": "对口支援地区", "category": "对外帮扶"},
            )
            for k in range(n_aid - len(got))
        ]
        chosen += [
            (None, {"site_name": f"{allowed[k % len(allowed)]}第三方医学服务机构{k + 1}", "district": allowed[k % len(allowed)], "category": "其他"})
            for k in range(cats.pop("其他", 0))
        ]  # fmt: skip
        # the rest are community centres (then 社区卫生服务站 sites), spread over every covered district
        community = [i for i in insts if svc.category_of(i) == "社区" and i.district in allowed]
        n_comm = cats.pop("社区", spec["total"] - len(chosen))
        by_d: dict[str, list[reg.InstitutionRecord]] = {d: [] for d in allowed}
        for i in community:
            by_d[str(i.district)].append(i)
        for lst in by_d.values():
            rng.shuffle(lst)
        picked: list[reg.InstitutionRecord] = []
        while len(picked) < n_comm and any(by_d.values()):
            for d in allowed:
                if by_d[d] and len(picked) < n_comm:
                    picked.append(by_d[d].pop())
        chosen += [(i, {}) for i in picked]
        chosen += [
            (None, {"site_name": f"{allowed[k % len(allowed)]}社区卫生服务站{k + 1}", "district": allowed[k % len(allowed)], "category": "社区"})
            for k in range(n_comm - len(picked))
        ]  # fmt: skip
        for inst, site in chosen:
            on = started + timedelta(days=rng.randint(0, 300))
            if inst is not None:
                svc.connect(session, centre_code=code, institution_code=inst.code, connected_on=on)
            else:
                svc.connect(session, centre_code=code, connected_on=on, **site)
            made += 1
    return made


def build_members(session: Session, *, month: str, seed: int = 8) -> int:
    """The pathology centre's experts and doctors (the seed's counts), from its connected hospitals."""
    _key, figs = figures_for(month)
    spec = figs.get("pathology")
    if not spec or session.scalar(select(func.count()).select_from(Member)):
        return 0
    rng = random.Random(seed)
    hospitals = [
        c.institution_code
        for c in svc.get_all_connections(
            session, centre_code="pathology", on=month_bounds(month)[1].date() - timedelta(days=1)
        )
        if c.institution_code
    ]
    hub = svc.centre("pathology").hub_code
    n = 0
    for role, count in (("expert", spec["experts"]), ("doctor", spec["doctors"])):
        for k in range(count):
            inst = hub if role == "expert" and k < count // 2 else rng.choice(hospitals or [hub])
            svc.add_member(
                session,
                centre_code="pathology",
                name=f"{_name(rng)}{k + 1:02d}",
                institution_code=inst,
                role=role,
                joined_on=date(2021, 3, 1),
                specialty="病理科",
            )
            n += 1
    return n


# ------------------------------------------------------------------ the month's activity


def split_top(total: int, top: list[int], others: int, rng: random.Random) -> list[int]:
    """Counts for the top 3 and `others` more uploaders summing to `total`, every other one below the third."""
    rest = total - sum(top)
    if rest < 0:
        raise ValueError("top uploaders exceed the total")
    cap = max(top[-1] - 1, 0) if top else rest
    if others * cap < rest:
        raise ValueError("too few other uploaders to stay below the third")
    shares = [0] * others
    weights = [rng.random() + 0.2 for _ in range(others)]
    wsum = sum(weights) or 1.0
    for i, w in enumerate(weights):
        shares[i] = min(cap, int(rest * w / wsum))
    left = rest - sum(shares)
    i = 0
    while left > 0:
        if shares[i % others] < cap:
            shares[i % others] += 1
            left -= 1
        i += 1
    return [*top, *shares]


def _uploaders(
    session: Session,
    centre_code: str,
    spec: dict[str, Any],
    total: int,
    scale: float,
    rng: random.Random,
    on: date,
) -> list[tuple[str, int]]:
    tops = []
    for name, value in spec.get("top", []):
        inst = reg.resolve_name(name)
        assert inst is not None
        tops.append((inst.code, scaled(value, scale)))
    top_codes = {c for c, _ in tops}
    others = [
        c.institution_code
        for c in svc.get_all_connections(session, centre_code=centre_code, on=on)
        if c.institution_code and c.institution_code not in top_codes
    ]
    counts = split_top(total, [n for _c, n in tops], len(others), rng)
    return list(zip([c for c, _ in tops] + others, counts, strict=True))


def _moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    span = (end - start).total_seconds()
    # working hours weigh more: draw a day, then a time of day around 08:00-18:00
    day = start + timedelta(days=rng.randrange(max(1, int(span // 86400))))
    minutes = int(rng.triangular(7 * 60, 21 * 60, 10 * 60))
    return day + timedelta(minutes=minutes, seconds=rng.randrange(60))


def _timeline(
    limit: int, rng: random.Random, when: datetime, end: datetime, expert: str
) -> tuple[list[bulk.Step], datetime | None]:
    """Accept, start and report (or reject) with a turnaround drawn around the limit; the report time."""
    if rng.random() < 0.02:
        return [
            ("rejected", when + timedelta(minutes=rng.randint(1, 30)), expert, "资料不全，请补充后重新申请")
        ], None
    took = max(2.0, rng.lognormvariate(0, 0.6) * limit * 0.35)
    done = when + timedelta(minutes=took)
    accepted = when + timedelta(minutes=min(took * 0.2, 60))
    if accepted >= end:
        return [], None  # still waiting at the month's end
    steps: list[bulk.Step] = [
        ("accepted", accepted, expert, None),
        ("in_progress", accepted + (done - accepted) / 2, expert, None),
    ]
    if done >= end:
        return steps, None
    return [*steps, ("completed", done, expert, None)], done


def _request_row(
    centre_code: str, stype: str, code: str, hub: str, rng: random.Random, when: datetime
) -> dict[str, Any]:
    pid, name, sex = _patient(rng)
    born = date(int(pid[6:10]), int(pid[10:12]), int(pid[12:14]))
    return {
        "centre_code": centre_code, "service_type": stype, "requester_code": code, "performer_code": hub,
        "patient_id_number": pid, "patient_name": name, "patient_sex": sex, "patient_birth_date": born,
        "requested_at": when, "source": "synth", "reason": "合成数据",
    }  # fmt: skip


def _queue(
    batch: bulk.Batch,
    *,
    centre_code: str,
    stype: str,
    code: str,
    limit: int,
    rng: random.Random,
    when: datetime,
    end: datetime,
    expert: str,
    texts: tuple[str, str],
) -> int:
    steps, done = _timeline(limit, rng, when, end, expert)
    report = (
        {"findings": texts[0], "conclusion": texts[1], "critical": False, "author": expert, "issued_at": done}
        if done
        else None
    )
    return batch.add(
        _request_row(centre_code, stype, code, svc.centre(centre_code).hub_code, rng, when), steps, report
    )


def _file_many(
    session: Session,
    *,
    centre_code: str,
    stype: str,
    counts: list[tuple[str, int]],
    rng: random.Random,
    start: datetime,
    end: datetime,
    texts: tuple[str, str],
) -> list[int]:
    limit = svc.get_limit(session, centre_code=centre_code, service_type=stype).limit_minutes
    expert = f"{svc.centre(centre_code).hub_code}-专家{rng.randint(1, 9)}"
    batch = bulk.Batch()
    for code, n in counts:
        for _ in range(n):
            _queue(
                batch,
                centre_code=centre_code,
                stype=stype,
                code=code,
                limit=limit,
                rng=rng,
                when=_moment(rng, start, end),
                end=end,
                expert=expert,
                texts=texts,
            )
    return batch.write(session)


def _spread(total: int, n: int, rng: random.Random) -> list[int]:
    """`total` split into n positive-ish random parts."""
    if n == 0:
        return []
    cuts = sorted(rng.randint(0, total) for _ in range(n - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


def generate(session: Session, *, month: str, scale: float, seed: int = 42, real_studies: int = 0) -> Plan:
    """Connections (once), members (once) and the month's activity at scale s; `real_studies` of the imaging
    studies are returned in plan.studies for the caller to send through the PACS as DICOM."""
    key, figs = figures_for(month)
    plan = Plan(month=month, calibrated_to=key, scale=scale)
    svc.ensure_limits(session)
    plan.connections = build_connections(session, month=month)
    build_members(session, month=month)
    rng = random.Random(seed)
    start, end = month_bounds(month)
    last = end.date() - timedelta(days=1)
    done = select(func.count()).where(
        Request.source == "synth", Request.requested_at >= start, Request.requested_at < end
    )
    if session.scalar(done):
        return plan  # the month was generated before: generate once

    ecg = figs["ecg"]
    counts = _uploaders(session, "ecg", ecg, scaled(ecg["cases"], scale), scale, rng, last)
    resting = [(c, n - n // 10) for c, n in counts]
    holter = [(c, n // 10) for c, n in counts]
    plan.requests["ecg"] = len(
        _file_many(
            session,
            centre_code="ecg",
            stype="resting",
            counts=resting,
            rng=rng,
            start=start,
            end=end,
            texts=("窦性心律，心率 72 次/分", "正常心电图"),
        )
    )
    plan.requests["ecg"] += len(
        _file_many(
            session,
            centre_code="ecg",
            stype="holter",
            counts=holter,
            rng=rng,
            start=start,
            end=end,
            texts=("24 小时动态心电：偶发房性早搏", "偶发房性早搏"),
        )
    )
    spread = _consult_sources(session, "ecg", scaled(ecg["consults"], scale), rng, last)
    plan.requests["ecg_consult"] = len(
        _file_many(
            session,
            centre_code="ecg",
            stype="consult",
            counts=spread,
            rng=rng,
            start=start,
            end=end,
            texts=("疑难心电会诊", "建议心内科随访"),
        )
    )

    img = figs["imaging"]
    counts = _uploaders(session, "imaging", img, scaled(img["reports"], scale), scale, rng, last)
    plan.studies = _imaging(session, counts, scaled(img["images"], scale), rng, start, end, real_studies)
    plan.requests["imaging"] = len(plan.studies)
    spread = _consult_sources(session, "imaging", scaled(img["consults"], scale), rng, last)
    plan.requests["imaging_consult"] = len(
        _file_many(
            session,
            centre_code="imaging",
            stype="consult",
            counts=spread,
            rng=rng,
            start=start,
            end=end,
            texts=("影像会诊", "考虑良性病变，建议随访"),
        )
    )

    lab = figs["lab"]
    counts = _uploaders(session, "lab", lab, scaled(lab["reports"], scale), scale, rng, last)
    days = (end - start).days
    for code, n in counts:
        for d, k in enumerate(_spread(n, days, rng)):
            if k:
                session.add(
                    Collected(
                        centre_code="lab",
                        institution_code=code,
                        day=start.date() + timedelta(days=d),
                        kind="lab_report",
                        count=k,
                    )
                )
                plan.collected += k
    plan.specimens = _specimens(session, scaled(lab["specimens"], scale), rng, start, end, last)

    consult = figs["consult"]
    if "to_date" in consult:
        spread = _consult_sources(session, "consult", scaled(consult["to_date"], scale), rng, last)
        plan.requests["consult"] = len(
            _file_many(
                session,
                centre_code="consult",
                stype="consult",
                counts=spread,
                rng=rng,
                start=start - timedelta(days=365),
                end=start,
                texts=("远程会诊意见", "建议转上级医院进一步诊治"),
            )
        )

    path = figs.get("pathology")
    if path:
        plan.requests["pathology"] = _pathology(session, path, scale, rng, start, end, last)
    session.flush()
    return plan


def _consult_sources(
    session: Session, centre_code: str, n: int, rng: random.Random, on: date
) -> list[tuple[str, int]]:
    codes = [
        c.institution_code
        for c in svc.get_all_connections(session, centre_code=centre_code, on=on)
        if c.institution_code
    ]
    out: dict[str, int] = {}
    for _ in range(n):
        code = rng.choice(codes)
        out[code] = out.get(code, 0) + 1
    return list(out.items())


def _imaging(
    session: Session,
    counts: list[tuple[str, int]],
    images: int,
    rng: random.Random,
    start: datetime,
    end: datetime,
    real: int,
) -> list[dict[str, Any]]:
    """Studies per uploader; `real` of them small (sent as DICOM), the rest reported by the hospitals' PACS."""
    n = sum(k for _c, k in counts)
    real = min(real, n)
    sizes = [2] * real + [0] * (n - real)
    rest = images - 2 * real
    if rest < n - real:
        raise ValueError("too few images for the studies")
    parts = _spread(rest - (n - real), n - real, rng)
    for i in range(real, n):
        sizes[i] = 1 + parts[i - real]
    studies = []
    order = [code for code, k in counts for _ in range(k)]
    rng.shuffle(order)
    limits = {x.service_type: x.limit_minutes for x in svc.get_limits(session, centre_code="imaging")}
    expert = f"{svc.centre('imaging').hub_code}-影像专家"
    batch = bulk.Batch()
    for i, code in enumerate(order):
        modality = rng.choices([m for m, _w in MODALITIES], [w for _m, w in MODALITIES])[0]
        when = _moment(rng, start, end)
        if i < real:
            pid, name, sex = _patient(rng)
            studies.append(
                {
                    "institution_code": code,
                    "modality": modality,
                    "instances": sizes[i],
                    "patient_id": pid,
                    "patient_name": name,
                    "sex": sex,
                    "at": when,
                    "real": True,
                }
            )
            continue
        idx = _queue(
            batch,
            centre_code="imaging",
            stype=modality,
            code=code,
            limit=limits[modality],
            rng=rng,
            when=when,
            end=end,
            expert=expert,
            texts=("所见未见明显异常", "未见明显异常"),
        )
        batch.child(
            idx,
            Study,
            {
                "study_uid": f"2.25.{rng.getrandbits(100)}",
                "institution_code": code,
                "modality": modality,
                "description": f"{modality} 检查",
                "series_count": min(sizes[i], rng.randint(1, 4)),
                "instance_count": sizes[i],
                "performed_at": when,
                "source": "manifest",
            },
        )
        studies.append(
            {"institution_code": code, "modality": modality, "instances": sizes[i], "at": when, "real": False}
        )
    batch.write(session)
    return studies


def _specimens(session: Session, n: int, rng: random.Random, start: datetime, end: datetime, on: date) -> int:
    """Lab requests from community centres, each with a labelled specimen scanned through its states."""
    from rhip.telemed import specimens

    conns = [
        c.institution_code
        for c in svc.get_all_connections(session, centre_code="lab", on=on)
        if c.institution_code and c.category == "社区"
    ]
    hub = svc.centre("lab").hub_code
    batch = bulk.Batch()
    per_day: dict[str, int] = {}
    for _ in range(n):
        code = rng.choice(conns or [hub])
        when = _moment(rng, start, end)
        times = {"collected": when}
        t = when
        for state in ("shipped", "received", "tested", "reported"):
            t += timedelta(minutes=rng.randint(20, 240))
            if t >= end:
                break
            times[state] = t
        # the lab request follows its specimen: received → accepted, tested → in progress, reported → completed
        steps: list[bulk.Step] = [
            (to, times[st], "synth", None)
            for st, to in (("received", "accepted"), ("tested", "in_progress"), ("reported", "completed"))
            if st in times
        ]
        report = (
            {
                "findings": "标本检测完成",
                "conclusion": "结果见检验报告单",
                "critical": False,
                "author": "synth",
                "issued_at": times["reported"],
            }
            if "reported" in times
            else None
        )
        idx = batch.add(
            _request_row("lab", rng.choice(("routine", "special")), code, hub, rng, when), steps, report
        )
        day = when.astimezone(clock.SHANGHAI).strftime("%y%m%d")
        if day not in per_day:
            per_day[day] = session.scalar(select(func.count()).where(Specimen.barcode.like(f"LB{day}%"))) or 0
        per_day[day] += 1
        body = f"{day}{per_day[day]:06d}"
        state = list(times)[-1]
        batch.child(
            idx,
            Specimen,
            {
                "barcode": f"LB{body}{specimens.check_digit(body)}",
                "specimen_type": rng.choice(("血清", "全血", "尿液")),
                "from_code": code,
                "to_code": hub,
                "state": state,
                **{f"{k}_at": v for k, v in times.items()},
            },
        )
    batch.write(session)
    return n


def _pathology(
    session: Session,
    spec: dict[str, Any],
    scale: float,
    rng: random.Random,
    start: datetime,
    end: datetime,
    on: date,
) -> int:
    hospitals = [
        (c.institution_code, 0)
        for c in svc.get_all_connections(session, centre_code="pathology", on=on)
        if c.institution_code
    ]
    n_cases, n_reports = scaled(spec["cases"], scale), scaled(spec["reports"], scale)
    expert = f"{svc.centre('pathology').hub_code}-病理专家"
    batch = bulk.Batch()
    for k in range(n_cases):
        code = rng.choice(hospitals)[0]
        when = start + timedelta(hours=rng.randint(0, 24 * 10))
        steps: list[bulk.Step] = []
        report = None
        if k < n_reports:
            done = min(end - timedelta(minutes=1), when + timedelta(days=rng.randint(1, 4)))
            steps = [
                ("accepted", when + timedelta(hours=2), expert, None),
                ("in_progress", when + timedelta(hours=3), expert, None),
                ("completed", done, expert, None),
            ]
            report = {
                "findings": "镜下见腺体增生",
                "conclusion": "慢性炎症伴腺体增生",
                "critical": False,
                "author": expert,
                "issued_at": done,
            }
        batch.add(
            _request_row("pathology", "histology", code, svc.centre("pathology").hub_code, rng, when),
            steps,
            report,
        )
    ids = batch.write(session)
    for kind, count, title in (
        ("meeting", scaled(spec["meetings"], scale), "疑难病例讨论会"),
        ("lecture", scaled(spec["lectures"], scale), "病理诊断视频讲座"),
    ):
        for k in range(count):
            svc.add_event(
                session,
                centre_code="pathology",
                kind=kind,
                title=f"{title}（第{k + 1}期）",
                held_at=start + timedelta(days=rng.randint(0, 27), hours=14),
                host=expert,
                attendees=rng.randint(10, 60),
                case_ids=ids[:2] if kind == "meeting" else None,
            )
    return n_cases
