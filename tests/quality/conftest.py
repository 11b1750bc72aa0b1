"""Quality test helpers: hand-built records written through intake's real service into a temporary lake."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.intake import reading, service as intake
from rhip.lake.store import Lake
from rhip.registry import catalogue
from tests.conftest import SECRET, create_pg_database, drop_pg_database
from tests.factories import sample_value

_seq = itertools.count(1)
NOW = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
FMT = "%Y-%m-%d %H:%M:%S"


def unique(prefix: str) -> str:
    """A business key no other test uses."""
    return f"{prefix}{next(_seq):06d}"


def row(table: str, org: str, **values: str) -> dict[str, str]:
    """A valid record of a catalogue table for an institution (required fields filled), with overrides."""
    ds = catalogue.get(table)
    out = {f.name: _required_value(f) for f in ds.fields if f.required}
    out.update({"org_code": org, "change_flag": "1"})
    out.update(values)
    return out


def frames_of(rows: dict[str, list[dict[str, str]]]) -> dict[str, pl.DataFrame]:
    """Intake's string frames (catalogue column order) for lists of records per table."""
    out = {}
    for table, recs in rows.items():
        ds = catalogue.get(table)
        df = pl.DataFrame(
            [{f: r.get(f) for f in ds.field_names} for r in recs],
            schema=dict.fromkeys(ds.field_names, pl.String),
        )
        out[table] = reading.frame_of(ds, df.to_arrow())
    return out


class Uploader:
    """Sends hand-built records through `intake.service.ingest` (the path every entry point takes)."""

    def __init__(self, db: Database, lake: Lake) -> None:
        self.db, self.lake = db, lake

    def send(
        self, org: str, rows: dict[str, list[dict[str, str]]], *, channel: str = "batch"
    ) -> intake.Receipt:
        """One batch of an institution."""
        return intake.ingest(
            self.db,
            self.lake,
            institution_code=org,
            submitted_by="quality-test",
            channel=channel,
            frames=frames_of(rows),
            now_utc=NOW,
        )


@pytest.fixture(scope="package")
def settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The quality tests' own database (and data folder), one per backend.

    The figures read intake's rollups from the SQL database while each test writes its own lake: a
    database shared with other packages' tests (the synthetic city ingested into their lakes) would hold
    rollups of records these lakes do not have.
    """
    data_dir = tmp_path_factory.mktemp(f"rhip-quality-{backend}")
    url = create_pg_database() if backend == "postgres" else None
    yield Settings(data_dir=data_dir, database_url=url, secret_key=SECRET)
    if url:
        drop_pg_database(url)


@pytest.fixture(scope="package")
def app_(settings: Settings):  # type: ignore[no-untyped-def]
    """The application on the quality tests' own database."""
    from rhip.web.app import create_app

    return create_app(settings)


@pytest.fixture()
def lake(tmp_path: Path) -> Lake:
    """A private lake folder."""
    return Lake(tmp_path / "lake")


@pytest.fixture()
def uploader(db: Database, lake: Lake) -> Uploader:
    """Writes records through intake into the private lake (SQL receipts in the shared database)."""
    return Uploader(db, lake)


def patient(org: str, pid: str) -> dict[str, str]:
    """A patient_info record."""
    return row(
        "patient_info",
        org,
        patient_id=pid,
        collected_at="2024-11-01 09:00:00",
        updated_at="2024-11-01 09:00:00",
    )


BATCH_LAG = timedelta(hours=6)


def later(when: str, lag: timedelta = BATCH_LAG) -> str:
    """A local time string `lag` after another (a scheduled batch collects records hours after the event)."""
    return (datetime.strptime(when, FMT) + lag).strftime(FMT)


def visit(
    org: str, when: str, fee: str, *, pid: str, collected: str | None = None, **kw: str
) -> dict[str, str]:
    """An outpatient_visit at a local time with its fee total (yuan); collected by batch by default."""
    values = {
        "visit_no": unique("V"),
        "patient_id": pid,
        "visit_time": when,
        "fee_total": fee,
        "collected_at": collected or later(when),
        "updated_at": when,
    }
    values.update(kw)
    return row("outpatient_visit", org, **values)


def stay(
    org: str, admitted: str, discharged: str, fee: str, *, pid: str, admission_collected: str | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """An admission and its discharge summary (collected by batch unless told otherwise)."""
    adm = unique("A")
    a = row(
        "admission",
        org,
        admission_no=adm,
        patient_id=pid,
        admitted_at=admitted,
        collected_at=admission_collected or later(admitted),
        updated_at=admitted,
    )
    d = row(
        "discharge_summary",
        org,
        admission_no=adm,
        patient_id=pid,
        admitted_at=admitted,
        discharged_at=discharged,
        total_fee=fee,
        collected_at=later(discharged),
        updated_at=discharged,
    )
    return a, d


Send = Callable[..., intake.Receipt]


def _required_value(f: catalogue.Field) -> str:
    return sample_value(f, day="1960-01-01", moment="2024-11-01 08:00:00", text=unique("X"))
