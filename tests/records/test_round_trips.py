"""Round trips per record view, counted at the driver (SQLAlchemy's before_cursor_execute), so a change that
adds a statement to the hot path fails here: on PostgreSQL a consented view is the EMPI read with the consent
(one statement), the access-log row with its chain head (one statement) and the entries (one statement)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from rhip.db.engine import Database
from rhip.records import audit
from rhip.records.models import AccessLog
from rhip.security.roles import Role
from rhip.security.service import Principal
from tests.records.conftest import City

H = Callable[..., dict[str, str]]

# statements per view, steady state (the chain's head exists). SQLite has no SHA-256 in SQL and no row
# locks: its log write is the head read, the row insert and the head update (three statements)
ALLOWED = {"postgresql": 3, "sqlite": 5}
REFUSED = {"postgresql": 2, "sqlite": 4}


@contextmanager
def counted(db: Database) -> Iterator[list[str]]:
    """The statements sent to the database while the block runs, but for two of the security layer's own:
    the token-revocation refresh (a thread of its own, once a second) and its record of a refused request
    (a session of its own after the answer, rate-limited per client address, so 0 or 1 per refusal)."""
    seen: list[str] = []

    def on(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "security_revoked_tokens" not in statement and "INTO audit_events" not in statement:
            seen.append(" ".join(statement.split())[:120])

    event.listen(db.engine, "before_cursor_execute", on)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", on)


def test_a_view_takes_a_fixed_number_of_statements(
    client: TestClient, city: City, as_: H, db: Database
) -> None:
    me = as_("resident", None, city.id_number)
    g = client.post("/api/v1/records/me/consents", json={"institution_code": city.org_c}, headers=me)
    assert g.status_code == 201, g.text
    doc = as_("doctor", city.org_c, "dr-trips")
    assert client.get(f"/api/v1/records/{city.person}", headers=doc).status_code == 200  # the head exists
    dialect = db.engine.dialect.name
    for path in (f"/api/v1/records/{city.person}", f"/api/v1/records/{city.person}?reminders=true"):
        with counted(db) as seen:
            r = client.get(path, headers=doc)
        assert r.status_code == 200 and r.json()["basis"] == f"consent:{g.json()['id']}"
        assert len(r.json()["entries"]) >= 5
        assert len(seen) == ALLOWED[dialect], seen
    outsider = as_("doctor", city.org_b, "dr-trips-b")  # B holds records of the person: its own only
    with counted(db) as seen:
        own = client.get(f"/api/v1/records/{city.person}", headers=outsider)
    assert own.status_code == 200 and own.json()["basis"] == "own-institution"
    assert len(seen) == ALLOWED[dialect], seen
    assert client.get(f"/api/v1/records/{city.other}", headers=outsider).status_code == 403  # Q's chain head
    with counted(db) as seen:
        refused = client.get(f"/api/v1/records/{city.other}", headers=outsider)  # Q is C's alone
    assert refused.status_code == 403
    assert len(seen) == REFUSED[dialect], seen


def test_the_one_statement_log_write_keeps_the_chain(
    client: TestClient, city: City, as_: H, db: Database
) -> None:
    """Rows written by the one-statement path link to their predecessors and hash as `digest` does."""
    me = as_("resident", None, city.id_number)
    for _ in range(3):
        assert client.get("/api/v1/records/me", headers=me).status_code == 200
    chain = audit.chain_of(city.person)
    with db.session() as s:
        rows = list(
            s.scalars(
                select(AccessLog).where(AccessLog.chain == chain).order_by(AccessLog.id.desc()).limit(4)
            )
        )[::-1]
        assert audit.verify(s).broken_at is None
    assert rows[-1].person_id == city.person and rows[-1].action == "view"
    for prev, row in itertools.pairwise(rows):
        assert row.prev_hash == prev.hash and audit.digest(prev.hash, row) == row.hash


def test_concurrent_writers_never_fork_a_chain(db: Database) -> None:
    """Eight threads append to one chain at once (different people, same chain): every row links to the one
    before it (PostgreSQL's row lock on the head in the one-statement write; SQLite serialises writers)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite takes one writer at a time")
    tag = uuid.uuid4().hex[:8]
    chain = audit.chain_of(f"race-{tag}-0")
    people = [p for p in (f"race-{tag}-{n}" for n in range(400)) if audit.chain_of(p) == chain][:8]
    who = Principal(subject=f"race-{tag}", role=Role.doctor, institution_code="H001")

    def work(person: str) -> None:
        for _ in range(10):
            with db.session() as s, s.begin():
                audit.write(
                    s, principal=who, person_id=person, action="view", basis="none", outcome="refused"
                )

    with ThreadPoolExecutor(len(people)) as pool:
        list(pool.map(work, people))
    with db.session() as s:
        rows = s.scalars(select(AccessLog).where(AccessLog.actor == who.subject)).all()
        assert len(rows) == 10 * len(people) and {r.chain for r in rows} == {chain}
        assert audit.verify(s).broken_at is None
