"""Lab specimen routing (标本流转): barcodes and states collected → shipped → received → tested →
reported (or rejected on receipt, with the reason)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.errors import Conflict, Invalid, NotFound
from rhip.telemed import service as svc
from rhip.telemed.models import Specimen

NEXT = {
    "collected": ("shipped",),
    "shipped": ("received", "rejected"),
    "received": ("tested", "rejected"),
    "tested": ("reported",),
    "reported": (),
    "rejected": (),
}
LABELS = {
    "collected": "已采集",
    "shipped": "已送出",
    "received": "已签收",
    "tested": "已检测",
    "reported": "已报告",
    "rejected": "已拒收",
}


def check_digit(body: str) -> str:
    """The barcode's check digit (ISO 7064 MOD 11-10 over the digits)."""
    p = 10
    for ch in body:
        s = (p + int(ch)) % 10 or 10
        p = (2 * s) % 11
    return str((11 - p) % 10)


def make_barcode(session: Session, at: datetime) -> str:
    """A new barcode: LB + yymmdd + 6-digit sequence of the day + check digit."""
    day = at.astimezone(clock.SHANGHAI).strftime("%y%m%d")
    n = session.scalar(select(func.count()).where(Specimen.barcode.like(f"LB{day}%"))) or 0
    body = f"{day}{n + 1:06d}"
    return f"LB{body}{check_digit(body)}"


def valid_barcode(code: str) -> bool:
    """Whether a barcode has our shape and a correct check digit."""
    return (
        len(code) == 15
        and code.startswith("LB")
        and code[2:].isdigit()
        and check_digit(code[2:14]) == code[14]
    )


def collect(session: Session, *, request_id: int, specimen_type: str, at: datetime | None = None) -> Specimen:
    """Label a specimen for a lab request: it is collected at the requester, bound for the lab centre."""
    req = svc.get_request(session, request_id=request_id)
    if req.centre_code != "lab":
        raise Invalid("只有临检申请可以登记标本", code="not-lab")
    when = at or clock.now()
    sp = Specimen(
        barcode=make_barcode(session, when),
        request_id=req.id,
        specimen_type=specimen_type,
        from_code=req.requester_code,
        to_code=req.performer_code,
        state="collected",
        collected_at=when,
    )
    session.add(sp)
    session.flush()
    return sp


def get(session: Session, *, barcode: str) -> Specimen:
    """A specimen by barcode; a malformed barcode is Invalid, an unknown one NotFound."""
    if not valid_barcode(barcode):
        raise Invalid(f"条码“{barcode}”格式或校验位错误", code="bad-barcode")
    sp = session.scalar(select(Specimen).where(Specimen.barcode == barcode))
    if sp is None:
        raise NotFound(f"没有条码为 {barcode} 的标本", code="specimen-not-found")
    return sp


def move(
    session: Session,
    *,
    barcode: str,
    to: str,
    actor: str,
    reason: str | None = None,
    at: datetime | None = None,
) -> Specimen:
    """Scan a specimen into its next state (409 when that is not its next state); the lab request follows."""
    sp = get(session, barcode=barcode)
    if to not in NEXT:
        raise Invalid(f"未知的标本状态：{to}", code="bad-state")
    if to not in NEXT[sp.state]:
        raise Conflict(f"标本状态“{LABELS[sp.state]}”不能变为“{LABELS[to]}”", code="illegal-transition")
    if to == "rejected" and not (reason and reason.strip()):
        raise Invalid("拒收须说明原因（如溶血、标本量不足）", code="reason-required")
    when = at or clock.now()
    sp.state = to
    if to != "rejected":
        setattr(sp, f"{to}_at", when)
    sp.state_reason = reason
    req = svc.get_request(session, request_id=sp.request_id)
    if to == "received" and req.status == "requested":
        svc.transition(session, request_id=req.id, to="accepted", actor=actor, at=when, lock=False)
    elif to == "tested" and req.status == "accepted":
        svc.transition(session, request_id=req.id, to="in_progress", actor=actor, at=when, lock=False)
    elif to == "reported" and req.status == "in_progress":
        svc.report(
            session,
            request_id=req.id,
            findings=f"标本 {barcode} 检测完成",
            conclusion="结果见检验报告单",
            author=actor,
            at=when,
        )
    elif to == "rejected" and req.status in ("requested", "accepted"):
        svc.transition(
            session,
            request_id=req.id,
            to="rejected",
            actor=actor,
            reason=f"标本拒收：{reason}",
            at=when,
            lock=False,
        )
    session.flush()
    return sp
