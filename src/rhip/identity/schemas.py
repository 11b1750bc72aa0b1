"""Identity API models: a link's outcome, a person with its records, review items."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class LinkResult(BaseModel):
    """The person a record was linked to, the band and the best match probability."""

    person_id: str
    band: str  # auto | review | new
    probability: float
    record_id: int | None = None
    candidate_person_id: str | None = None  # the person a review item proposes


class RecordRead(BaseModel):
    """One institution's patient record as linked."""

    id: int
    institution_code: str
    local_id: str
    source: str
    name: str | None
    sex: str | None
    birth_date: date | None
    id_number: str | None
    guardian_id: str | None = None
    phone: str | None
    district: str | None
    band: str
    probability: float
    linked_by: str
    pinned: bool
    linked_at: datetime


class PersonRead(BaseModel):
    """A person (EMPI id), what its records most often say, and the records."""

    id: str
    status: str
    merged_into: str | None = None
    name: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    id_number: str | None = None
    records: list[RecordRead] = []


class ReviewRead(BaseModel):
    """A review item: the record, the candidate person's closest record, and the fields that differ."""

    id: int
    status: str
    probability: float
    record: RecordRead
    candidate_person_id: str
    candidate: RecordRead | None
    levels: dict[str, int] | None
    differing: list[str]
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None


class ReviewDecision(BaseModel):
    """A data steward's decision on a review item."""

    decision: str  # merge | separate
    reason: str | None = None


class UnmergeRequest(BaseModel):
    """Undo the latest merge into this person (or the given event)."""

    event_id: int | None = None
    reason: str | None = None


class LinkSummary(BaseModel):
    """Counts after a linking run."""

    records: int
    persons: int
    auto: int
    review: int
    new: int
    review_queue: int
    seconds: float
