"""Terminal transactions through the API: keys, idempotency, exact amounts, file imports, booking."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from hypothesis import given, settings as hsettings, strategies as st
from sqlalchemy import func, select

from rhip import clock
from rhip.booking import service as booking
from rhip.db.engine import Database
from rhip.errors import Invalid
from rhip.selfservice.models import CardIssue, TerminalTransaction
from rhip.selfservice.money import fen_to_yuan, yuan_to_fen
from tests.booking.conftest import T0, new_person, schedule
from tests.selfservice.conftest import HOSPITAL, OTHER

URL = "/api/v1/selfservice/transactions"


def _txn(**kw: object) -> dict[str, object]:
    body: dict[str, object] = {
        "txn_no": uuid.uuid4().hex[:16],
        "kind": "payment",
        "occurred_at": datetime.now(clock.SHANGHAI).isoformat(),
        "amount": "12.34",
        "pay_method": "self",
        "duration_ms": 4200,
    }
    body.update(kw)
    return body


def test_post_with_terminal_key_is_idempotent(
    client: TestClient, terminal: Callable[..., tuple[str, str]]
) -> None:
    code, key = terminal()
    body = _txn()
    first = client.post(URL, json=body, headers={"X-Terminal-Key": key})
    assert first.status_code == 201, first.text
    assert first.json()["amount_fen"] == 1234 and first.json()["amount"] == "12.34"
    assert first.json()["terminal_code"] == code and first.json()["replayed"] is False
    again = client.post(URL, json=body, headers={"X-Terminal-Key": key})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"] and again.json()["replayed"]
    reused = client.post(URL, json={**body, "amount": "99.00"}, headers={"X-Terminal-Key": key})
    assert reused.status_code == 409 and reused.json()["code"] == "txn-no-reused"
    # the same number on another terminal is another transaction
    _code2, key2 = terminal()
    assert client.post(URL, json=body, headers={"X-Terminal-Key": key2}).status_code == 201


def test_keys_of_one_hospital_refused_for_another(
    client: TestClient, terminal: Callable[..., tuple[str, str]], auth: Callable[..., dict[str, str]]
) -> None:
    mine, key = terminal(HOSPITAL)
    theirs, _ = terminal(OTHER)
    r = client.post(URL, json=_txn(terminal_code=theirs), headers={"X-Terminal-Key": key})
    assert r.status_code == 403 and r.json()["code"] == "other-terminal"
    # the hospital's own uploader key posts for its terminals, never for another hospital's
    r = client.post(URL, json=_txn(terminal_code=theirs), headers=auth("uploader", institution=HOSPITAL))
    assert r.status_code == 403 and r.json()["code"] == "other-institution"
    r = client.post(URL, json=_txn(terminal_code=mine), headers=auth("uploader", institution=HOSPITAL))
    assert r.status_code == 201
    assert client.post(URL, json=_txn(), headers={"X-Terminal-Key": key + "x"}).status_code == 401
    assert client.post(URL, json=_txn(), headers={"X-Terminal-Key": "nonsense"}).status_code == 401
    # a new key replaces the old one at once in this process
    staff = auth("uploader", institution=HOSPITAL)
    new_key = client.post(f"/api/v1/selfservice/terminals/{mine}/key", headers=staff).json()["key"]
    assert client.post(URL, json=_txn(), headers={"X-Terminal-Key": key}).status_code == 401
    assert client.post(URL, json=_txn(), headers={"X-Terminal-Key": new_key}).status_code == 201
    # another hospital's staff cannot re-key or see it
    other = auth("uploader", institution=OTHER)
    assert client.post(f"/api/v1/selfservice/terminals/{mine}/key", headers=other).status_code == 403
    listed = client.get("/api/v1/selfservice/terminals", headers=other).json()
    assert mine not in {t["code"] for t in listed}
    # a removed terminal's key is refused
    client.post(f"/api/v1/selfservice/terminals/{mine}/status", json={"status": "removed"}, headers=staff)
    assert client.post(URL, json=_txn(), headers={"X-Terminal-Key": new_key}).status_code == 401


def test_amounts_are_exact_fen(
    client: TestClient, terminal: Callable[..., tuple[str, str]], db: Database
) -> None:
    _code, key = terminal()
    h = {"X-Terminal-Key": key}
    for _ in range(10):  # 0.1 ten times is 1.00 exactly: no float drift
        assert client.post(URL, json=_txn(amount=0.1), headers=h).status_code == 201
    assert client.post(URL, json=_txn(amount="8206229.72"), headers=h).json()["amount_fen"] == 820622972
    assert client.post(URL, json=_txn(amount=None, amount_fen=5), headers=h).json()["amount"] == "0.05"
    for bad in ("1.234", "abc", "-1.00"):
        r = client.post(URL, json=_txn(amount=bad), headers=h)
        assert r.status_code == 422, (bad, r.text)
    assert client.post(URL, json=_txn(amount="1.00", amount_fen=100), headers=h).status_code == 422
    assert client.post(URL, json=_txn(pay_method=None), headers=h).status_code == 422
    assert (
        client.post(URL, json=_txn(kind="enquiry"), headers=h).status_code == 422
    )  # an enquiry costs nothing
    with db.session() as s:
        total = s.scalar(
            select(func.sum(TerminalTransaction.amount_fen))
            .where(TerminalTransaction.amount_fen == 10)
            .where(TerminalTransaction.institution_code == HOSPITAL)
        )
    assert total is not None and total % 100 == 0


@given(st.decimals(min_value=0, max_value=Decimal("99999999.99"), places=2))
@hsettings(max_examples=200, deadline=None)
def test_yuan_fen_round_trip(value: Decimal) -> None:
    assert fen_to_yuan(yuan_to_fen(str(value))) == f"{value:.2f}"


def test_yuan_refuses_floats_and_third_decimals() -> None:
    for bad in (0.1, "0.001", "1e-3", "NaN"):
        try:
            yuan_to_fen(bad)  # type: ignore[arg-type]
        except Invalid:
            continue
        raise AssertionError(bad)
    assert yuan_to_fen("1,234.50") == 123450 and yuan_to_fen("1e2") == 10000


def test_file_import_answers_bad_lines(
    client: TestClient,
    terminal: Callable[..., tuple[str, str]],
    auth: Callable[..., dict[str, str]],
    db: Database,
) -> None:
    code, _key = terminal()
    theirs, _ = terminal(OTHER)
    t = datetime.now(clock.SHANGHAI).replace(microsecond=0).isoformat()
    card = uuid.uuid4().hex[:12]
    lines = [
        "terminal_code,txn_no,kind,occurred_at,amount,pay_method,outcome,pages,card_no",
        f"{code},F1,payment,{t},10.00,insurance,ok,,",
        f"{code},F2,payment,{t},10.005,insurance,ok,,",  # three decimals
        f"{code},F3,print,{t},,,ok,3,",
        f"{code},F4,teleport,{t},,,ok,,",  # unknown kind
        f"{theirs},F5,print,{t},,,ok,1,",  # another hospital's terminal
        f"{code},F6,payment,not-a-time,1.00,self,ok,,",
        f"{code},F7,issue_card,{t},,,ok,,{card}",
        f"{code},F1,payment,{t},10.00,insurance,ok,,",  # replay of line 2
    ]
    raw = "\n".join(lines).encode("gbk")
    r = client.post(
        f"{URL}/import",
        files={"file": ("txns.csv", raw, "text/csv")},
        headers=auth("uploader", institution=HOSPITAL),
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["lines"] == 8 and out["created"] == 3 and out["replayed"] == 1
    errors = {e["line"]: e for e in out["errors"]}
    assert set(errors) == {3, 5, 6, 7}
    assert errors[3]["field"] == "amount" and errors[3]["code"] == "bad-amount"
    assert errors[5]["code"] == "bad-kind"
    assert errors[6]["code"] == "other-institution"
    assert errors[7]["field"] == "occurred_at"
    with db.session() as s:
        assert (
            s.scalar(select(func.count()).where(CardIssue.card_no == card, CardIssue.channel == "terminal"))
            == 1
        )
    bad_header = client.post(
        f"{URL}/import",
        files={"file": ("x.csv", b"txn,kind\n1,2\n", "text/csv")},
        headers=auth("uploader", institution=HOSPITAL),
    )
    assert bad_header.status_code == 422 and bad_header.json()["code"] == "bad-header"


def test_registration_books_through_the_booking_service(
    client: TestClient, terminal: Callable[..., tuple[str, str]], db: Database
) -> None:
    _code, key = terminal(HOSPITAL)
    _other, other_key = terminal(OTHER)
    pid = new_person()
    with clock.frozen(T0 + timedelta(days=7, hours=-2)), db.session() as s:
        sched = schedule(s, day=date(2025, 3, 10), hospital_code=HOSPITAL)
        slot_id = booking.get_slots(s, schedule_id=sched.id)[0].id
        body = _txn(kind="register", amount="15.00", pay_method="insurance", slot_id=slot_id, id_number=pid)
        body["occurred_at"] = (T0 + timedelta(days=7, hours=-2)).isoformat()
        r = client.post(URL, json=body, headers={"X-Terminal-Key": key})
        assert r.status_code == 201, r.text
        appt_id = r.json()["appointment_id"]
        assert r.json()["id_number"].startswith(pid[:6]) and "*" in r.json()["id_number"]
        again = client.post(URL, json=body, headers={"X-Terminal-Key": key})
        assert again.status_code == 200 and again.json()["appointment_id"] == appt_id
        s.expire_all()
        appt = booking.get_appointment(s, appointment_id=appt_id)
        assert appt.channel == "self_service" and appt.person_id == pid and appt.status in ("booked", "held")
        # another hospital's terminal cannot take this hospital's slot
        r = client.post(URL, json={**body, "txn_no": "X1"}, headers={"X-Terminal-Key": other_key})
        assert r.status_code == 403 and r.json()["code"] == "other-hospital-slot"
        # a refused booking writes no transaction
        full = _txn(kind="register", amount="15.00", slot_id=10**9, id_number=new_person())
        full["occurred_at"] = body["occurred_at"]
        r = client.post(URL, json=full, headers={"X-Terminal-Key": key})
        assert r.status_code == 404
        with db.session() as s2:
            n = s2.scalar(select(func.count()).where(TerminalTransaction.txn_no == full["txn_no"]))
        assert n == 0


def test_pg_batches_answer_each_row_once(
    backend: str, client: TestClient, terminal: Callable[..., tuple[str, str]], db: Database
) -> None:
    """PostgreSQL: rows queued together go in one statement; a number repeated in the batch or posted
    before answers None (a replay) exactly once created."""
    import asyncio

    from rhip.selfservice import pgpost, service as svc
    from rhip.selfservice.keys import terminal_ref

    if backend != "postgres":
        assert not pgpost.batched(db)
        return
    code, _key = terminal()
    with db.session() as s:
        ref = terminal_ref(s, code=code)
    at = datetime.now(clock.SHANGHAI) - timedelta(minutes=1)

    def row(no: str) -> tuple[object, ...]:
        txn = svc.TxnIn(txn_no=no, kind="payment", occurred_at=at, amount_fen=101, pay_method="self")
        out = svc.plain_row(ref, txn)
        assert out is not None
        return pgpost.as_row(out)

    async def go() -> list[int | None]:
        try:
            return await asyncio.gather(*(pgpost.insert(db, row(f"B{i % 40}")) for i in range(60)))
        finally:
            await pgpost.close_all()

    ids = asyncio.run(go())
    assert sum(1 for i in ids if i is not None) == 40 and len({i for i in ids if i}) == 40
    again = asyncio.run(go())
    assert again == [None] * 60
    with db.session() as s:
        n = s.scalar(
            select(func.count()).where(
                TerminalTransaction.txn_no.like("B%"), TerminalTransaction.terminal_id == ref.id
            )
        )
    assert n == 40


def test_bad_bodies_are_answered_as_fastapi_would(
    client: TestClient, terminal: Callable[..., tuple[str, str]]
) -> None:
    """The route reads its body itself (the hot path): a bad body is still problem+json 422 naming the
    field under "body", a missing key still 401 before the body is looked at, and the OpenAPI document
    still describes the body."""
    _code, key = terminal()
    h = {"X-Terminal-Key": key, "Content-Type": "application/json"}
    for raw, loc in ((b"", ["body"]), (b"{not json", ["body"]), (b'{"kind": "payment"}', ["body", "txn_no"])):
        r = client.post(URL, content=raw, headers=h)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), (
            r.text
        )
        assert r.json()["code"] == "request-invalid" and r.json()["errors"][0]["loc"][: len(loc)] == loc
    r = client.post(URL, json=_txn(kind="coffee"), headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "kind"]
    r = client.post(URL, json=_txn(surprise=1), headers=h)  # extra fields are refused (extra="forbid")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "surprise"]
    assert (
        client.post(URL, content=b"{not json", headers={"Content-Type": "application/json"}).status_code
        == 401
    )
    body = client.get("/openapi.json").json()["paths"][URL]["post"]["requestBody"]
    assert "txn_no" in body["content"]["application/json"]["schema"]["properties"]


def test_reading_transactions_is_audited_and_masked(
    client: TestClient,
    terminal: Callable[..., tuple[str, str]],
    auth: Callable[..., dict[str, str]],
    db: Database,
) -> None:
    from rhip.security.models import AuditEvent

    code, key = terminal()
    pid = new_person()
    r = client.post(URL, json=_txn(kind="enquiry", amount=None, pay_method=None, id_number=pid),
                    headers={"X-Terminal-Key": key})  # fmt: skip
    assert r.status_code == 201 and r.json()["id_number"] != pid and r.json()["id_number"].endswith(pid[-4:])
    staff = auth("uploader", institution=HOSPITAL)
    listed = client.get(URL, params={"terminal_code": code}, headers=staff)
    assert listed.status_code == 200 and pid not in listed.text and len(listed.json()) == 1
    own = client.get(URL, headers={"X-Terminal-Key": key})
    assert own.status_code == 200 and pid not in own.text
    with db.session() as s:
        events = list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "selfservice.transactions.read", AuditEvent.target == code)
                .order_by(AuditEvent.id)
            )
        )
    assert [(e.actor, e.detail) for e in events] == [
        ("tester", {"rows": 1}),
        (f"terminal:{code}", {"rows": 1}),
    ]
    assert events[0].institution_code == HOSPITAL and events[0].role == "uploader"
