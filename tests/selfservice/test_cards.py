"""The electronic health card: claiming it, static and dynamic codes, resolution refused when forged,
expired or replayed, uses counted by channel, every resolution audited."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from rhip import clock
from rhip.db.engine import Database
from rhip.security.models import AuditEvent
from rhip.selfservice import cards, service as svc
from tests.booking.conftest import new_person
from tests.selfservice.conftest import HOSPITAL

RESOLVE = "/api/v1/cards/resolve"


def _claim(client: TestClient, auth: Callable[..., dict[str, str]], pid: str) -> dict[str, object]:
    r = client.post("/api/v1/cards/health-card", json={"name": "张三"}, headers=auth("resident", subject=pid))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_dynamic_code_resolves_once(
    client: TestClient,
    auth: Callable[..., dict[str, str]],
    terminal: Callable[..., tuple[str, str]],
    db: Database,
) -> None:
    pid = new_person()
    card = _claim(client, auth, pid)
    assert card["id_number"] != pid and str(card["id_number"]).endswith(pid[-4:])  # masked
    assert str(card["dynamic_code"]).startswith("RHIPEHC1:") and str(card["static_code"]).startswith(
        "RHIPEHC0:"
    )
    again = _claim(client, auth, pid)
    assert again["card_id"] == card["card_id"]  # one card per person
    _code, key = terminal(HOSPITAL)
    r = client.post(RESOLVE, json={"code": card["dynamic_code"]}, headers={"X-Terminal-Key": key})
    assert r.status_code == 200, r.text
    assert (
        r.json()["id_number"] == pid
        and r.json()["channel"] == "terminal"
        and r.json()["code_kind"] == "dynamic"
    )
    replay = client.post(
        RESOLVE, json={"code": card["dynamic_code"]}, headers=auth("doctor", institution=HOSPITAL)
    )
    assert replay.status_code == 409 and replay.json()["code"] == "code-replayed"
    with db.session() as s:
        events = list(
            s.scalars(
                select(AuditEvent).where(AuditEvent.action == "card.resolve").order_by(AuditEvent.id.desc())
            )
        )
    assert events[0].outcome == "refused" and events[0].detail == {"code": "code-replayed"}
    assert events[1].outcome == "ok" and events[1].target == card["card_id"]


def test_expired_and_forged_codes_are_refused(
    client: TestClient, auth: Callable[..., dict[str, str]], db: Database
) -> None:
    pid = new_person()
    _claim(client, auth, pid)
    code = client.get("/api/v1/cards/health-card", headers=auth("resident", subject=pid)).json()[
        "dynamic_code"
    ]
    doctor = auth("doctor", institution=HOSPITAL)
    with clock.frozen(clock.now() + timedelta(seconds=cards.DYNAMIC_TTL + 1)):
        r = client.post(RESOLVE, json={"code": code}, headers=doctor)
    assert r.status_code == 409 and r.json()["code"] == "code-expired"
    body, tag = code.split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + tag
    r = client.post(RESOLVE, json={"code": forged}, headers=doctor)
    assert r.status_code == 422 and r.json()["code"] in ("bad-signature", "bad-code")
    assert client.post(RESOLVE, json={"code": "hello"}, headers=doctor).json()["code"] == "bad-code"
    # a code signed under another platform's key is refused
    with db.session() as s:
        card = svc.get_health_card(s, id_number=pid)
        other, _exp = svc.dynamic_code(card, secret="another-platform-secret-0123456789")
    assert client.post(RESOLVE, json={"code": other}, headers=doctor).json()["code"] == "bad-signature"
    # residents cannot resolve codes
    assert client.post(RESOLVE, json={"code": code}, headers=auth("resident", subject=pid)).status_code == 403


def test_static_code_needs_the_second_factor_and_uses_count_by_channel(
    client: TestClient, auth: Callable[..., dict[str, str]], db: Database
) -> None:
    pid = new_person()
    static = _claim(client, auth, pid)["static_code"]
    window = auth("uploader", institution=HOSPITAL)
    r = client.post(RESOLVE, json={"code": static}, headers=window)
    assert r.status_code == 403 and r.json()["code"] == "second-factor"
    r = client.post(RESOLVE, json={"code": static, "second_factor": "0000"}, headers=window)
    assert r.status_code == 403 or pid.endswith("0000")
    start = clock.now() - timedelta(seconds=1)
    for channel in ("window", "app", "window"):
        r = client.post(
            RESOLVE, json={"code": static, "second_factor": pid[-4:], "channel": channel}, headers=window
        )
        assert r.status_code == 200 and r.json()["channel"] == channel
    with db.session() as s:
        uses = svc.uses_by_channel(s, start=start, end=clock.now() + timedelta(seconds=1))
    assert uses.get("window", 0) >= 2 and uses.get("app", 0) >= 1


def test_hmac_sm3_matches_the_pure_python_sm3() -> None:
    key, msg = b"k" * 70, b"rhip"
    assert cards._sm3_hmac(key, msg) == cards._gmssl_hmac(key, msg)
    # GB/T 32905 example 1: SM3("abc"), through both implementations
    from gmssl import sm3

    vector = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3.sm3_hash(list(b"abc")) == vector
    assert hashlib.new("sm3", b"abc").hexdigest() == vector


def _events(db: Database, action: str, since: int) -> list[AuditEvent]:
    with db.session() as s:
        return list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == action, AuditEvent.id > since)
                .order_by(AuditEvent.id)
            )
        )


def _last_id(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) or 0)


def test_resolution_masks_the_id_number_by_role_and_every_read_is_audited(
    client: TestClient, auth: Callable[..., dict[str, str]], db: Database
) -> None:
    """Doctors and windows identifying the patient before them get the full ID number; a 12320 agent gets
    it masked; the resident's own reads of the card (API and page) are audited too."""
    pid = new_person()
    me = auth("resident", subject=pid)
    mark = _last_id(db)
    card = _claim(client, auth, pid)
    agent = auth("agent")
    r = client.post(RESOLVE, json={"code": card["dynamic_code"]}, headers=agent)
    assert r.status_code == 200, r.text
    masked = r.json()["id_number"]
    assert (
        masked != pid
        and masked.endswith(pid[-4:])
        and "*" in masked
        and r.json()["card_id"] == card["card_id"]
    )
    code = client.get("/api/v1/cards/health-card", headers=me).json()["dynamic_code"]
    r = client.post(RESOLVE, json={"code": code}, headers=auth("doctor", institution=HOSPITAL))
    assert r.status_code == 200 and r.json()["id_number"] == pid and r.json()["channel"] == "doctor"
    assert client.get("/selfservice/card", headers=me).status_code == 200
    resolves = _events(db, "card.resolve", mark)
    assert [(e.role, e.detail["id_number"]) for e in resolves] == [("agent", "masked"), ("doctor", "full")]
    assert all(pid not in str(e.detail) and e.target == card["card_id"] for e in resolves)
    reads = _events(db, "card.read", mark)
    assert [e.actor for e in reads] == [pid, pid, pid]  # claimed, read by the API, shown on the page
    assert reads[-1].detail == {"page": "card"}


def test_a_frozen_card_records_no_use_and_a_dynamic_code_is_one_statement(
    client: TestClient,
    auth: Callable[..., dict[str, str]],
    terminal: Callable[..., tuple[str, str]],
    db: Database,
) -> None:
    """A dynamic code costs one statement besides the transaction's own (PostgreSQL: the card, the use and
    its audit event together; SQLite: three); a frozen card's code is refused with nothing recorded but
    the refusal."""
    from sqlalchemy import event, func, update

    from rhip.selfservice.models import CardUse, HealthCard

    pid = new_person()
    card = _claim(client, auth, pid)
    _code, key = terminal(HOSPITAL)
    seen: list[str] = []

    def on(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", on)
    try:
        r = client.post(RESOLVE, json={"code": card["dynamic_code"]}, headers={"X-Terminal-Key": key})
    finally:
        event.remove(db.engine, "before_cursor_execute", on)
    assert r.status_code == 200, r.text
    writes = [q for q in seen if "selfservice_card_uses" in q or "audit_events" in q]
    assert len(writes) == (1 if db.engine.dialect.name == "postgresql" else 2), writes
    with db.session() as s, s.begin():
        s.execute(update(HealthCard).where(HealthCard.card_id == card["card_id"]).values(status="frozen"))
        uses = s.scalar(select(func.count()).select_from(CardUse))
    code = svc.dynamic_code(svc.HealthCard(card_id=card["card_id"], status="active"), secret=_secret(client))[
        0
    ]
    mark = _last_id(db)
    r = client.post(RESOLVE, json={"code": code}, headers={"X-Terminal-Key": key})
    assert r.status_code == 409 and r.json()["code"] == "card-frozen", r.text
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(CardUse)) == uses
    assert [(e.outcome, e.detail) for e in _events(db, "card.resolve", mark)] == [
        ("refused", {"code": "card-frozen"})
    ]


def _secret(client: TestClient) -> str:
    return str(client.app.state.settings.resolved_secret_key)  # type: ignore[attr-defined]


def test_a_client_gone_before_its_body_is_a_quiet_400_and_nothing_is_posted(
    client: TestClient, terminal: Callable[..., tuple[str, str]], db: Database
) -> None:
    """A terminal that drops the connection before its body arrives (wrk stopping, a cancelled request):
    the body read raises Starlette's ClientDisconnect, which is answered 400 `client-disconnected` (to nobody)
    instead of an unhandled exception in the server's log, and no transaction is recorded."""
    import asyncio

    from sqlalchemy import func

    from rhip.selfservice.models import TerminalTransaction

    _code, key = terminal(HOSPITAL)
    with db.session() as s:
        before = s.scalar(select(func.count()).select_from(TerminalTransaction))
    sent: list[dict[str, object]] = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/v1/selfservice/transactions", "raw_path": b"/api/v1/selfservice/transactions",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5), "server": ("testserver", 80),
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"80"),
                    (b"x-terminal-key", key.encode())],
    }  # fmt: skip

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")  # type: ignore[misc]
    assert start["status"] == 400 and b"client-disconnected" in body
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(TerminalTransaction)) == before
