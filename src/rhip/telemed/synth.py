"""The synthetic city's telemedicine: connections shaped like the seeds' (totals by category, districts
not covered, metro cities), the centres' members, and a month of activity at scale s — requests that go
through the workflow with realistic turnaround, imaging studies, lab reports collected and specimens
routed, pathology cases, meetings and lectures — calibrated to the 2022-08 figures (2020-05 for itself).

Counts are `calibration.scaled(figure, s)` exactly; the named top-3 uploaders get their own scaled figures
and every other connected institution stays below the third. The pieces: `synth_rows` (names, timelines,
rows in bulk), `synth_network` (connections, members), `synth_centres` (each centre's month)."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip.telemed import service as svc
from rhip.telemed.calibration import figures_for, scaled
from rhip.telemed.models import Collected, Request
from rhip.telemed.synth_centres import _consult_sources, _imaging, _pathology, _specimens
from rhip.telemed.synth_network import build_connections, build_members
from rhip.telemed.synth_rows import (
    Plan,
    _file_many,
    _spread,
    _uploaders,
    month_bounds,
    split_top,
)

__all__ = ["Plan", "build_connections", "build_members", "generate", "month_bounds", "split_top"]


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
