# ruff: noqa: E501
"""The synthetic month per centre: consultation sources, imaging studies (some through the real PACS),
lab specimens routed, pathology cases with meetings and lectures."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.telemed import bulk, service as svc
from rhip.telemed.calibration import scaled
from rhip.telemed.models import Specimen, Study
from rhip.telemed.synth_rows import MODALITIES, _moment, _patient, _queue, _request_row, _spread


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
