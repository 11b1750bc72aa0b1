"""Migrations 0062 (SLA levels derived when read) and 0063 (events without a foreign key) on a database that
holds orders and their SLA events: the orders whose clock stopped keep the level users saw, open ones drop
theirs (the marks give it), nothing is lost; the downgrades give every order back a stored level and the
events their key."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from rhip.db.engine import alembic_config, make_engine, upgrade
from tests.conftest import create_pg_database, drop_pg_database

BEFORE, AFTER = "0061_hotline_list_indexes", "0062_hotline_sla_derived"
# id, state, stored level, its SLA events
ORDERS = [
    (1, "in_progress", "warn75", ["sla_warn50", "sla_warn75"]),
    (2, "closed", "breach", ["sla_breach"]),
    (3, "replied", "ok", []),
    (4, "new", "ok", []),
]


def _fill(url: str, moment: str) -> None:
    engine = make_engine(url)  # the application's engine: on SQLite, foreign keys ON as in production
    with engine.begin() as c:
        for oid, state, level, events in ORDERS:
            c.execute(
                text(
                    "INSERT INTO hotline_work_orders (id, number, source, order_type, priority, title, "
                    "content, caller_masked, state, received_at, due_at, warn50_at, warn75_at, sla_level, "
                    "reply, callback_note, created_by, updated_at) VALUES (:id, :no, 'wo_self', 'complaint', "
                    "'P2', '标题', '', '', :state, :t, :t, :t, :t, :level, '', '', 'test', :t)"
                ),
                {"id": oid, "no": f"ZJ{oid}", "state": state, "level": level, "t": moment},
            )
            for action in ["create", *events]:
                c.execute(
                    text(
                        "INSERT INTO hotline_work_order_events (order_id, at, actor, role, action, to_state, "
                        "note) VALUES (:id, :t, 'sla-job', 'admin', :action, :state, '')"
                    ),
                    {"id": oid, "t": moment, "action": action, "state": state},
                )
    engine.dispose()


def _column(url: str, name: str) -> dict[int, str | None]:
    engine = make_engine(url)
    with engine.connect() as c:
        rows = c.execute(text(f"SELECT id, {name} FROM hotline_work_orders ORDER BY id")).all()
    engine.dispose()
    return {int(r[0]): r[1] for r in rows}


def test_upgrade_keeps_stopped_levels_and_downgrade_restores_them(backend: str, tmp_path: Path) -> None:
    postgres = backend == "postgres"
    url = create_pg_database() if postgres else f"sqlite:///{tmp_path / 'old.db'}"
    try:
        upgrade(url, BEFORE)
        _fill(url, "2025-03-03 00:00:00+00" if postgres else "2025-03-03 00:00:00.000000")
        upgrade(url, AFTER)
        assert _column(url, "sla_stopped_level") == {1: None, 2: "breach", 3: "ok", 4: None}
        engine = make_engine(url)
        columns = {c["name"] for c in inspect(engine).get_columns("hotline_work_orders")}
        assert "sla_level" not in columns and "sla_checked_at" not in columns
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM hotline_work_order_events")).scalar_one() == 7
            if not postgres:
                assert c.execute(text("PRAGMA foreign_key_check")).fetchall() == []
        engine.dispose()
        command.downgrade(alembic_config(url), BEFORE)
        # open orders: the highest level the job had announced; stopped ones: the level they stopped at
        assert _column(url, "sla_level") == {1: "warn75", 2: "breach", 3: "ok", 4: "ok"}
    finally:
        if postgres:
            drop_pg_database(url)


def _event_keys(url: str) -> list[str]:
    engine = make_engine(url)
    keys = [fk["referred_table"] for fk in inspect(engine).get_foreign_keys("hotline_work_order_events")]
    engine.dispose()
    return keys


def test_events_lose_their_foreign_key_and_keep_every_row(backend: str, tmp_path: Path) -> None:
    postgres = backend == "postgres"
    url = create_pg_database() if postgres else f"sqlite:///{tmp_path / 'old.db'}"
    try:
        upgrade(url, BEFORE)
        _fill(url, "2025-03-03 00:00:00+00" if postgres else "2025-03-03 00:00:00.000000")
        upgrade(url, AFTER)
        assert _event_keys(url) == ["hotline_work_orders"]
        upgrade(url, "0063_hotline_events_no_fk")
        assert _event_keys(url) == []
        engine = make_engine(url)
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM hotline_work_order_events")).scalar_one() == 7
            names = {ix["name"] for ix in inspect(engine).get_indexes("hotline_work_order_events")}
            assert "ix_hotline_wo_events_order_action" in names  # the history and the job's check need it
        engine.dispose()
        command.downgrade(alembic_config(url), AFTER)
        assert _event_keys(url) == ["hotline_work_orders"]
    finally:
        if postgres:
            drop_pg_database(url)
