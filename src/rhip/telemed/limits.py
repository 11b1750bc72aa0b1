"""Telemedicine centres and their turnaround limits (shipped defaults in data/limits.yaml, edits in
telemed_tat_limits)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.errors import Invalid, NotFound
from rhip.registry import data as reg
from rhip.telemed.models import (
    TatLimit,
)

DATA = Path(__file__).parent / "data"
CENTRE_CODES = ("consult", "imaging", "ecg", "lab", "pathology")


def centre(code: str) -> reg.TelemedCentreRecord:
    """The registry's record of a centre, or NotFound."""
    for c in reg.telemed_centres():
        if c.code == code:
            return c
    raise NotFound(f"没有远程医疗中心“{code}”（可选：{'、'.join(CENTRE_CODES)}）", code="unknown-centre")


@lru_cache(maxsize=1)
def default_limits() -> dict[str, list[dict[str, Any]]]:
    """The shipped turnaround limits (data/limits.yaml)."""
    raw = yaml.safe_load((DATA / "limits.yaml").read_text(encoding="utf-8"))
    return {str(k): list(v) for k, v in raw.items()}


def default_limits_types(centre_code: str) -> set[str]:
    """The service types a centre offers by default."""
    return {str(r["type"]) for r in default_limits().get(centre_code, [])}


def ensure_limits(session: Session) -> None:
    """Insert the shipped limits that the table does not hold yet (edited ones are kept)."""
    have = {(t.centre_code, t.service_type) for t in session.scalars(select(TatLimit))}
    for code, rows in default_limits().items():
        for row in rows:
            if (code, row["type"]) not in have:
                session.add(
                    TatLimit(
                        centre_code=code,
                        service_type=row["type"],
                        label=row["label"],
                        limit_minutes=int(row["minutes"]),
                    )
                )
    session.flush()


def get_limits(session: Session, *, centre_code: str | None = None) -> list[TatLimit]:
    """The turnaround limits, per centre and service type (the shipped ones are added when missing)."""
    stmt = select(TatLimit).order_by(TatLimit.centre_code, TatLimit.service_type)
    if centre_code:
        centre(centre_code)
        stmt = stmt.where(TatLimit.centre_code == centre_code)
    rows = list(session.scalars(stmt))
    shipped = {
        (c, str(r["type"]))
        for c, rs in default_limits().items()
        for r in rs
        if c == centre_code or not centre_code
    }
    if not shipped <= {(x.centre_code, x.service_type) for x in rows}:
        ensure_limits(session)
        rows = list(session.scalars(stmt))
    return rows


def get_limit(session: Session, *, centre_code: str, service_type: str) -> TatLimit:
    """One service type's limit; Invalid when the centre does not offer that type."""
    found = session.get(TatLimit, (centre_code, service_type))
    if found is not None:
        return found
    for lim in get_limits(session, centre_code=centre_code):
        if lim.service_type == service_type:
            return lim
    types = "、".join(f"{x.service_type}（{x.label}）" for x in get_limits(session, centre_code=centre_code))
    raise Invalid(
        f"{centre(centre_code).name}中心没有服务类型“{service_type}”（可选：{types}）",
        code="unknown-service-type",
    )


def set_limit(
    session: Session, *, centre_code: str, service_type: str, label: str, limit_minutes: int
) -> TatLimit:
    """Create or change a service type's turnaround limit."""
    centre(centre_code)
    if limit_minutes < 1 or limit_minutes > 60 * 24 * 60:
        raise Invalid("时限应在 1 分钟到 60 天之间", code="bad-limit")
    ensure_limits(session)
    lim = session.get(TatLimit, (centre_code, service_type))
    if lim is None:
        lim = TatLimit(
            centre_code=centre_code, service_type=service_type, label=label, limit_minutes=limit_minutes
        )
        session.add(lim)
    else:
        lim.label, lim.limit_minutes = label or lim.label, limit_minutes
    session.flush()
    return lim
