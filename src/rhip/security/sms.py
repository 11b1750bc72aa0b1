"""SMS: every text goes into the outbox (`security_sms_outbox`), then out through an adapter.

`HttpSmsAdapter` posts each message as JSON to a gateway (`RHIP_SMS_URL`, bearer `RHIP_SMS_TOKEN`):
`{"phone": "13800138000", "message": "...", "id": 17}`; any 2xx is delivered, anything else is retried
by the next delivery run (up to MAX_ATTEMPTS). Without a gateway URL messages stay in the outbox, which is
what the demo and the tests read (`rhip security outbox`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.security.models import SmsMessage

MAX_ATTEMPTS = 5


class SmsAdapter(Protocol):
    """Something that hands a text to a phone network; raises SmsError when it could not."""

    def send(self, *, phone: str, message: str, message_id: int) -> None:
        """Deliver one message."""


class SmsError(Exception):
    """The gateway refused or could not be reached."""


@dataclass(frozen=True)
class HttpSmsAdapter:
    """A JSON-over-HTTP SMS gateway (the shape most Chinese SMS providers' REST APIs take)."""

    url: str
    token: str | None = None
    timeout: float = 5.0

    def send(self, *, phone: str, message: str, message_id: int) -> None:
        """POST the message; 2xx is success."""
        body = json.dumps({"phone": phone, "message": message, "id": message_id}, ensure_ascii=False)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise SmsError(f"gateway answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SmsError(f"gateway unreachable: {type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise SmsError(f"gateway answered {status}")


def queue(session: Session, *, phone: str, message: str, purpose: str) -> SmsMessage:
    """Put a text into the outbox (in the caller's transaction: it leaves only if that commits)."""
    msg = SmsMessage(
        phone=phone, message=message[:500], purpose=purpose, status="pending", attempts=0, created_at=now()
    )
    session.add(msg)
    session.flush()
    return msg


def deliver(session: Session, adapter: SmsAdapter, *, limit: int = 500) -> tuple[int, int]:
    """Send pending messages through the adapter; returns (sent, failed this run)."""
    rows = session.scalars(
        select(SmsMessage)
        .where(SmsMessage.status == "pending")
        .order_by(SmsMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    sent = failed = 0
    for msg in rows:
        msg.attempts += 1
        try:
            adapter.send(phone=msg.phone, message=msg.message, message_id=msg.id)
        except SmsError as exc:
            failed += 1
            msg.error = str(exc)[:255]
            if msg.attempts >= MAX_ATTEMPTS:
                msg.status = "failed"
            continue
        msg.status, msg.sent_at, msg.error = "sent", now(), None
        sent += 1
    return sent, failed


def outbox(session: Session, *, phone: str | None = None, limit: int = 50) -> list[SmsMessage]:
    """The newest messages, optionally to one phone (for the demo, tests and the operators)."""
    q = select(SmsMessage).order_by(SmsMessage.id.desc()).limit(limit)
    if phone:
        q = q.where(SmsMessage.phone == phone)
    return list(session.scalars(q))
