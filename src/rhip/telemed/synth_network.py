# ruff: noqa: E501
"""The synthetic centres' network: connections shaped like the seeds' (totals by category, districts not
covered, metro cities) and the centres' experts and doctors."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip.registry import data as reg
from rhip.telemed import service as svc
from rhip.telemed.calibration import NANJING_DISTRICTS, figures_for
from rhip.telemed.models import Connection, Member
from rhip.telemed.synth_rows import _name, month_bounds

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
