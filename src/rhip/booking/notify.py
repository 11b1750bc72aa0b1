"""Notifications to residents (停诊 and other news about their bookings): an outbox delivered by a job.

A stop writes one `booking_notifications` row per affected booking in the stop's own transaction, so a
message exists exactly when the cancellation does; `deliver` (run by `run_jobs`) hands pending rows to
the sender of their channel and records the outcome. No SMS or WeChat gateway is reachable from this
platform's machines: the default sender logs the message (rhip.booking.notify); a deployment replaces
it with `set_sender(channel, fn)`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip import logging as rlog
from rhip.booking.models import Appointment, Notification
from rhip.clock import SHANGHAI, now

log = rlog.get("rhip.booking.notify")

CHANNEL_LABELS = {"sms": "短信", "wechat": "微信", "app": "健康南京 APP"}
STATUS_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败"}
MAX_ATTEMPTS = 3

# where a message goes: the booking channel's own push when it has one, otherwise SMS to the phone
_BY_BOOKING_CHANNEL = {"wechat_12320": "wechat", "jkn_app": "app"}

Sender = Callable[[Notification], None]


def _log_sender(n: Notification) -> None:
    log.info("notification", extra={"channel": n.channel, "person": n.person_id[-4:], "id": n.id})


_SENDERS: dict[str, Sender] = dict.fromkeys(CHANNEL_LABELS, _log_sender)


def set_sender(channel: str, sender: Sender) -> Sender:
    """Install the gateway for a channel (sms, wechat, app); returns the previous one."""
    previous = _SENDERS[channel]
    _SENDERS[channel] = sender
    return previous


def channel_for(booking_channel: str) -> str:
    """The notification channel for a booking made through a booking channel."""
    return _BY_BOOKING_CHANNEL.get(booking_channel, "sms")


def stop_message(appt: Appointment, department_name: str, reason: str) -> str:
    """The 停诊 message a booked patient receives."""
    at = appt.starts_at.astimezone(SHANGHAI)
    return (
        f"【12320】您预约的 {at:%m月%d日 %H:%M} {department_name} 因“{reason}”停诊，预约已取消，"
        "不计入爽约，请重新预约。"
    )


def notify_stop(
    session: Session, *, appointments: list[Appointment], department_name: str, reason: str
) -> int:
    """Queue one 停诊 notification per affected booking (in the caller's transaction)."""
    t = now()
    for a in appointments:
        session.add(
            Notification(
                person_id=a.person_id,
                appointment_id=a.id,
                kind="schedule_stopped",
                channel=channel_for(a.channel),
                message=stop_message(a, department_name, reason),
                status="pending",
                attempts=0,
                created_at=t,
            )
        )
    session.flush()
    return len(appointments)


def deliver(session: Session, *, at: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Hand pending notifications to their channel's sender; failures retry up to MAX_ATTEMPTS."""
    t = at or now()
    rows = list(
        session.scalars(
            select(Notification)
            .where(Notification.status == "pending")
            .order_by(Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # two job runners never send the same message twice
        )
    )
    sent = failed = 0
    for n in rows:
        n.attempts += 1
        try:
            _SENDERS[n.channel](n)
        except Exception as exc:  # a gateway's failure is recorded, not raised: the others still go
            n.error = str(exc)[:255]
            if n.attempts >= MAX_ATTEMPTS:
                n.status = "failed"
                failed += 1
            continue
        n.status, n.sent_at, n.error = "sent", t, None
        sent += 1
    session.flush()
    return {"sent": sent, "failed": failed}


def get_all(session: Session, *, person: str, limit: int = 50) -> list[Notification]:
    """A person's notifications, newest first."""
    q = (
        select(Notification)
        .where(Notification.person_id == person)
        .order_by(Notification.id.desc())
        .limit(limit)
    )
    return list(session.scalars(q))
