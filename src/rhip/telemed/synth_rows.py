# ruff: noqa: E501
"""Building blocks of the synthetic telemedicine month: names and ID numbers, the month's bounds, how a
total is split among uploaders, timelines through the Task state machine, and request rows queued in bulk."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from rhip import clock
from rhip.registry import data as reg
from rhip.registry.idnumber import make_id
from rhip.telemed import bulk, service as svc
from rhip.telemed.calibration import scaled

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
