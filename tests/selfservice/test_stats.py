"""The bulletin's self-service tables equal s × the seeds' figures after the demo step posts a month.

Rounding rule (synth.py): counts round_half_up(seed × s) row by row; amounts round_half_up(seed fen × s),
0 when the row's count rounds to 0; 投放台数 unscaled; 合计 = the sum of the rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from rhip.booking import stats as booking_stats
from rhip.booking.models import Appointment, Slot
from rhip.bulletin.sections import parse_section
from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.registry import data as reg_data, service as registry
from rhip.selfservice import demo, stats, synth
from rhip.selfservice.models import TerminalTransaction
from rhip.selfservice.money import fen_to_yuan
from tests.conftest import SECRET, create_pg_database, drop_pg_database

SCALE = 0.01
BOOKED = 40  # the 2018-03 month's first registrations booked through the booking service (the demo books all)


@pytest.fixture(scope="module")
def sdb(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Database]]:
    """A fresh database per calibrated month (each month is its own city), each posted twice: the second
    run adds nothing."""
    out: dict[str, Database] = {}
    urls: list[str] = []
    for month in ("2018-03", "2020-05"):
        url = create_pg_database() if backend == "postgres" else None
        if url:
            urls.append(url)
        settings = Settings(
            data_dir=tmp_path_factory.mktemp(f"ss-{month}"), database_url=url, secret_key=SECRET
        )
        upgrade(settings.resolved_database_url)
        db = Database.from_settings(settings)
        with db.session() as s, s.begin():
            registry.ensure_loaded(s)
        plan = synth.plan_month(month, SCALE)
        limit = BOOKED if month == "2018-03" else 0
        first = demo.post_plan(db, plan, book_limit=limit)
        assert first["transactions"] == len(plan.txns) and first["booked"] == limit, first
        again = demo.post_plan(db, plan, book_limit=limit)
        assert again == {"terminals": 0, "transactions": 0, "booked": 0, "reported": 0, "cards": 0}
        out[month] = db
    yield out
    for db in out.values():
        db.dispose()
    for url in urls:
        drop_pg_database(url)


def _code(name: str) -> str:
    inst = reg_data.resolve_name(name)
    assert inst is not None, name
    return inst.code


def test_2018_terminal_table_is_s_times_the_seed(sdb: dict[str, Database]) -> None:
    with sdb["2018-03"].session() as s:
        table = stats.table_2018(s, month="2018-03")
    got = {_code(r[0]): r[1:] for r in table["rows"][:-1]}
    expected = {r.codes[0]: r.at_scale(SCALE) for r in synth.seed_terminal_rows("2018-03")}
    assert set(got) == set(expected)
    for code, e in expected.items():
        want = [e.terminals, e.cards, e.reg, fen_to_yuan(e.reg_fen), e.pay, fen_to_yuan(e.pay_fen), e.prints]
        assert got[code] == want, code
    total = table["rows"][-1]
    assert total[0] == "合计" and total[1] == 1076  # the seed prints 1,077 over rows summing to 1,076
    assert total[3] == sum(e.reg for e in expected.values()) == 3975  # 397,509 × 0.01, rounded row by row
    assert total[2] == sum(e.cards for e in expected.values())
    # the seed's zeros: installed but unused terminals (南京军区南京总医院: 82 machines, nothing done)
    assert got[_code("南京军区南京总医院")] == [82, 0, 0, "0.00", 0, "0.00", 0]


def test_2020_terminal_table_has_both_blocks(sdb: dict[str, Database]) -> None:
    with sdb["2020-05"].session() as s:
        table = stats.table_2020(s, month="2020-05")
    rows = table["rows"]
    block = ""
    got: dict[str, list[object]] = {}
    for r in rows[:-1]:
        block = r[0] or block
        key = r[1] if block == "各区" else _code(r[1])
        got[key] = r[2:]
    assert rows[0][0] == "医疗单位" and any(r[0] == "各区" for r in rows)
    for e in synth.seed_terminal_rows("2020-05"):
        e = e.at_scale(SCALE)
        key = e.name if e.block == "district" else e.codes[0]
        want = [e.terminals, e.reg, fen_to_yuan(e.reg_fen), e.pay, fen_to_yuan(e.pay_fen)]
        if key not in got:  # an institution with neither terminals nor use has no row
            assert want == [0, 0, "0.00", 0, "0.00"], key
            continue
        assert got[key] == want, key
    assert got["秦淮区"] == [0, 0, "0.00", 0, "0.00"]
    assert got["江北新区"][0] == 53
    # 南京市口腔医院: 0 registrations with 171,500.00 yuan in the seed: no transaction can carry it
    assert got[_code("南京市口腔医院")][1:3] == [0, "0.00"]
    total = rows[-1]
    assert total[0] == "合计" and total[2] == 1512 and total[3] == sum(r[3] for r in rows[:-1])


def test_card_table_and_cumulative_total(sdb: dict[str, Database]) -> None:
    with sdb["2018-03"].session() as s:
        table = stats.card_table(s, month="2018-03")
    cells = [c for r in table["rows"][:-1] for c in (r[:3], r[3:]) if c[0] != ""]
    got = {_code(name): n for _i, name, n in cells}
    expected = {code: synth.scaled(n, SCALE) for _name, code, n in synth.seed_card_rows()}
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}
    assert table["rows"][-1][2] == sum(expected.values())
    to_date = synth.scaled(synth.BASELINE_BEFORE, SCALE) + sum(expected.values())
    assert table["notes"] == [f"（截止 3 月底，总开卡量为 {to_date}）"]
    assert [r[0] for r in table["rows"][:3]] == [1, 2, 3] and len(table["columns"]) == 6


def test_bulletin_sections_parse(sdb: dict[str, Database]) -> None:
    with sdb["2020-05"].session() as s:
        raw = stats.bulletin_sections(session=s, lake=None, month="2020-05")
        none = stats.bulletin_sections(session=s, lake=None, month="2011-01")
    with sdb["2018-03"].session() as s:
        old = stats.bulletin_sections(session=s, lake=None, month="2018-03")
    keys = [parse_section(r, source="selfservice").key for r in raw]
    assert keys == ["selfservice.terminals", "selfservice.cards"]
    assert old[0]["tables"][0]["columns"][2]["title"] == "发卡（张）"
    assert raw[0]["tables"][0]["columns"][1]["title"] == "单位"
    assert none == []


def test_failed_transactions_are_not_counted(sdb: dict[str, Database]) -> None:
    plan = synth.plan_month("2018-03", SCALE)
    failed = [t for t in plan.txns if t.outcome == "failed"]
    assert failed, "the plan has failed transactions"
    with sdb["2018-03"].session() as s:
        figs = stats.month_figures(s, month="2018-03")
    assert sum(f.reg for f in figs.values()) == sum(
        1 for t in plan.txns if t.kind == "register" and t.outcome == "ok"
    )


def test_demo_registrations_are_booked_on_the_terminal_channel(sdb: dict[str, Database]) -> None:
    """Registrations the demo books take a slot through booking.service as channel 自助机 (self_service):
    each transaction names its appointment, a real-name booking of one place at the terminal's own
    hospital, made before the slot starts; the terminal table above still equals s × the seed."""
    T, A = TerminalTransaction, Appointment
    with sdb["2018-03"].session() as s:
        rows = s.execute(
            select(T.txn_no, T.institution_code, T.occurred_at, T.id_number, A.channel, A.hospital_code,
                   A.person_id, A.status, Slot.starts_at)
            .join(A, A.id == T.appointment_id)
            .join(Slot, Slot.id == A.slot_id)
            .where(T.kind == "register")
        ).all()  # fmt: skip
        by_channel = booking_stats.counts_by_hospital_channel(s, month="2018-03")
    assert len(rows) == BOOKED
    assert {r.channel for r in rows} == {"self_service"}
    assert all(r.hospital_code == r.institution_code and r.person_id == r.id_number for r in rows)
    assert all(r.starts_at > r.occurred_at for r in rows)
    assert len({r.person_id for r in rows}) == BOOKED
    assert sum(n for (_h, chan), n in by_channel.items() if chan == "self_service") == BOOKED
