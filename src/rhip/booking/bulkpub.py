"""The SMART Scheduling Links `$bulk-publish` feed: Location, Schedule and the free Slots of the next 14
days as NDJSON, built per file when that file is asked for and streamed a page at a time.

The manifest reads nothing (its transactionTime is the request's time); each file is read in pages by a
stable key (Slot: start time then id; Schedule: id), each page in a short transaction of its own, so memory
stays bounded by a page, a slow client holds no pooled connection, and nothing is built that is not asked
for. A file's content is what the feed had when it was built whole: the same lines in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select

from rhip.booking.fhir_map import location_resource, schedule_resource, slot_resource
from rhip.booking.models import Schedule, Slot
from rhip.db.engine import Database
from rhip.registry import data as reg_data

FEED_DAYS = 14
PAGE = 2000  # rows per statement: one page's resources are all a file holds in memory at once
KINDS = ("Location", "Schedule", "Slot")


def free_in_window(at: datetime) -> list[ColumnElement[bool]]:
    """A slot the public can book at `at` and that starts within the feed's days (booking's free rule)."""
    return [
        Slot.starts_at >= at,
        Slot.starts_at < at + timedelta(days=FEED_DAYS),
        Slot.status == "open",
        Slot.booked_public < Slot.cap_public,
        Slot.public_release_at <= at,
    ]


def lines(db: Database, kind: str, at: datetime) -> Iterator[bytes]:
    """One NDJSON file of the feed at `at`, a page of lines per chunk (KINDS names the files)."""
    pages = {"Location": _locations, "Schedule": _schedules, "Slot": _slots}[kind](db, at)
    for page in pages:
        if page:
            yield "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in page).encode()


def _slots(db: Database, at: datetime) -> Iterator[list[dict[str, Any]]]:
    """Free slots by (start, id), each with its schedule's concepts, PAGE at a time."""
    after: tuple[datetime, int] | None = None
    while True:
        q = (
            select(Slot, Schedule)
            .join(Schedule, Schedule.id == Slot.schedule_id)
            .where(*free_in_window(at))
            .order_by(Slot.starts_at, Slot.id)
            .limit(PAGE)
        )
        if after is not None:  # the start bound keeps the index range; the rest skips what was sent
            q = q.where(
                Slot.starts_at >= after[0],
                or_(Slot.starts_at > after[0], and_(Slot.starts_at == after[0], Slot.id > after[1])),
            )
        with db.session() as s, s.begin():
            rows = s.execute(q).all()
            page = [slot_resource(slot, sched, at) for slot, sched in rows]
        yield page
        if len(rows) < PAGE:
            return
        after = (rows[-1][0].starts_at, rows[-1][0].id)


def _schedule_ids(db: Database, at: datetime) -> list[int]:
    """The schedules with a free slot in the window, by id (one int each: the window's schedules, not the
    slots, bound this list)."""
    with db.session() as s, s.begin():
        q = select(Slot.schedule_id).where(*free_in_window(at)).distinct().order_by(Slot.schedule_id)
        return list(s.scalars(q))


def _schedules(db: Database, at: datetime) -> Iterator[list[dict[str, Any]]]:
    """Those schedules by id, PAGE at a time."""
    ids = _schedule_ids(db, at)
    for i in range(0, len(ids), PAGE):
        with db.session() as s, s.begin():
            q = select(Schedule).where(Schedule.id.in_(ids[i : i + PAGE])).order_by(Schedule.id)
            page = [schedule_resource(x) for x in s.scalars(q)]
        yield page  # outside the transaction: the client's pace holds no connection


def _locations(db: Database, at: datetime) -> Iterator[list[dict[str, Any]]]:
    """The hospitals of those schedules, by code (those the registry knows)."""
    with db.session() as s, s.begin():
        q = select(Schedule.hospital_code).where(
            Schedule.id.in_(select(Slot.schedule_id).where(*free_in_window(at)))
        )
        codes = sorted(set(s.scalars(q)))  # sorted here: a PostgreSQL collation may order codes otherwise
    yield [location_resource(code, inst) for code in codes if (inst := reg_data.get(code)) is not None]
