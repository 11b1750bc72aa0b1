"""Self-service request and response models (API field names in English; amounts in yuan text or fen)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["issue_card", "register", "take_number", "payment", "print", "top_up", "enquiry"]


class TerminalCreate(BaseModel):
    """A terminal to register (the code is generated when not given)."""

    institution_code: str = Field(max_length=32)
    code: str | None = Field(default=None, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    location: str = Field(default="", max_length=128)
    model: str = Field(default="", max_length=64)
    installed_on: date | None = None


class TerminalRead(BaseModel):
    """A terminal as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    institution_code: str
    district_code: str | None
    location: str
    model: str
    status: str
    installed_on: date
    removed_on: date | None
    has_key: bool = False


class TerminalStatus(BaseModel):
    """A status change (active, fault, removed)."""

    status: Literal["active", "fault", "removed"]
    on: date | None = None


class TerminalKey(BaseModel):
    """A terminal's new key, shown once."""

    code: str
    key: str


class TransactionCreate(BaseModel):
    """One terminal transaction. Give `amount` in yuan (JSON number or text, at most two decimals; parsed
    exactly) or `amount_fen` as an integer, not both."""

    model_config = ConfigDict(extra="forbid")

    terminal_code: str | None = Field(default=None, max_length=32)
    txn_no: str = Field(min_length=1, max_length=64)
    kind: Kind
    occurred_at: datetime
    amount: Decimal | None = None
    amount_fen: int | None = None
    pay_method: Literal["insurance", "self"] | None = None
    outcome: Literal["ok", "failed", "cancelled"] = "ok"
    error_code: str | None = Field(default=None, max_length=64)
    duration_ms: int | None = None
    pages: int | None = None
    card_no: str | None = Field(default=None, max_length=32)
    card_type: Literal["citizen", "medical", "visit"] | None = None
    id_number: str | None = Field(default=None, max_length=18)
    slot_id: int | None = None
    appointment_id: int | None = None


class TransactionRead(BaseModel):
    """A recorded transaction (the ID number masked)."""

    id: int
    terminal_code: str
    txn_no: str
    kind: str
    occurred_at: datetime
    amount_fen: int | None
    amount: str | None
    pay_method: str | None
    outcome: str
    duration_ms: int | None
    pages: int | None
    appointment_id: int | None
    id_number: str | None
    replayed: bool = False


class LineErrorRead(BaseModel):
    """A refused line of an imported file."""

    line: int
    code: str
    detail: str
    field: str | None = None


class ImportRead(BaseModel):
    """What a file import did."""

    lines: int
    created: int
    replayed: int
    errors: list[LineErrorRead]


class HealthCardCreate(BaseModel):
    """A resident asks for their electronic health card (real name)."""

    name: str = Field(min_length=1, max_length=64)


class HealthCardRead(BaseModel):
    """A resident's electronic health card and its codes."""

    card_id: str
    name: str
    id_number: str
    status: str
    static_code: str
    dynamic_code: str
    dynamic_expires_at: datetime
    person_id: str | None


class ResolveRequest(BaseModel):
    """A code scanned at a window, terminal or doctor's workstation."""

    code: str = Field(min_length=1, max_length=512)
    second_factor: str | None = Field(default=None, max_length=8)
    channel: Literal["window", "terminal", "doctor", "app"] | None = None


class ResolveRead(BaseModel):
    """Who the code stands for (the ID number masked unless the caller is staff at a desk)."""

    card_id: str
    name: str
    id_number: str
    person_id: str | None
    code_kind: str
    channel: str
