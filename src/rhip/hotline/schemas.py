"""Hotline request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rhip.clock import SHANGHAI
from rhip.security.masking import mask_text


class CallCreate(BaseModel):
    """A call logged at the agent desk."""

    category: str = Field(max_length=32, description="来电分类代码或中文名，如 consult / 咨询类")
    caller: str = Field(max_length=24, description="来电号码（只保存掩码和摘要）")
    started_at: datetime | None = None
    duration_s: int = Field(0, ge=0, le=86_400)
    outcome: str = Field("answered", pattern="^(answered|transferred_12356|callback_needed)$")
    ivr_path: str = Field("", max_length=64)
    id_number: str | None = Field(None, max_length=32)
    note: str = Field("", max_length=2000)
    risk_level: str | None = Field(None, pattern="^(low|medium|high|imminent)$")


class CallRead(BaseModel):
    """A call as the desk and the dashboard see it (number masked)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    call_uuid: str
    started_at: datetime
    duration_s: int
    caller_masked: str
    ivr_path: str
    category: str
    agent: str | None
    outcome: str
    source: str
    appointment_id: int | None
    risk_level: str | None


class CallPage(BaseModel):
    """A page of calls; the count as the work-order list gives it."""

    items: list[CallRead]
    total: int = Field(description="符合条件的来电数；超过上限（1,000）时为上限")
    total_capped: bool = False
    total_estimate: int | None = Field(None, description="超过上限时数据库统计信息给出的估算值（约数）")


class LineErrorRead(BaseModel):
    """A refused line of an imported file."""

    line: int
    field: str
    message: str


class CdrReportRead(BaseModel):
    """What a CDR import did."""

    lines: int
    imported: int
    duplicates: int
    orders: int
    errors: list[LineErrorRead]


class OrderImportRead(BaseModel):
    """What a 12345 order-file import did."""

    lines: int
    created: int
    duplicates: int
    errors: list[LineErrorRead]


class PhoneBooking(BaseModel):
    """电话预约: the slot and the caller's real name."""

    slot_id: int
    id_number: str = Field(max_length=32)
    name: str | None = Field(None, max_length=32)


class WorkOrderCreate(BaseModel):
    """A work order: a 12345 order arriving by API (with its number and deadline) or opened by an agent."""

    source: str = Field(pattern="^(wo_city_12345|wo_province_12345|wo_self)$")
    title: str = Field(min_length=1, max_length=200)
    content: str = Field("", max_length=10_000)
    order_type: str | None = Field(None, max_length=24)
    external_no: str | None = Field(None, max_length=64)
    received_at: datetime | None = None
    due_at: datetime | None = None
    institution_code: str | None = Field(None, max_length=16)
    id_number: str | None = Field(None, max_length=32)


class WorkOrderAction(BaseModel):
    """One step of the state machine."""

    action: str = Field(pattern="^(assign|handle|accept|decline|reply|return|close|reopen|escalate)$")
    note: str = Field("", max_length=10_000)
    institution_code: str | None = Field(None, max_length=16)


class CallbackCreate(BaseModel):
    """回访: the caller's satisfaction after the reply."""

    satisfaction: int = Field(ge=1, le=5)
    note: str = Field("", max_length=2000)


class CrisisCreate(BaseModel):
    """The crisis path, recorded by the agent who took the call."""

    call_id: int
    risk_level: str = Field(pattern="^(low|medium|high|imminent)$")
    transferred: bool = Field(description="是否已热转接 12356 心理援助热线")
    note: str = Field("", max_length=2000)


class WorkOrderRead(BaseModel):
    """A work order as lists show it: no ID number (only the detail has it, its read audited, masked for
    institution staff)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    source: str
    external_no: str | None
    order_type: str
    priority: str
    title: str
    content: str
    caller_masked: str
    institution_code: str | None
    state: str
    received_at: datetime
    due_at: datetime
    sla_level: str
    reply: str
    replied_at: datetime | None
    closed_at: datetime | None
    satisfaction: int | None
    risk_level: str | None
    follow_up_due_at: datetime | None

    @field_validator("title", "content", "reply")
    @classmethod
    def _masked(cls, value: str) -> str:
        """ID and mobile numbers typed into the text are shown masked (rhip.security.masking)."""
        return mask_text(value)


class WorkOrderEventRead(BaseModel):
    """One step of an order's history."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    role: str
    action: str
    from_state: str | None
    to_state: str
    note: str

    @field_validator("note")
    @classmethod
    def _masked(cls, value: str) -> str:
        """ID and mobile numbers typed into the note are shown masked."""
        return mask_text(value)


class WorkOrderDetail(WorkOrderRead):
    """An order with its history and the ID number as the reader may see it (built by `api._detail` from
    `service.read_personal`, never read from the row)."""

    model_config = ConfigDict(from_attributes=False)

    id_number: str | None = None
    events: list[WorkOrderEventRead] = []


class WorkOrderPage(BaseModel):
    """A page of orders in deadline order; the count with the first page only."""

    items: list[WorkOrderRead]
    total: int | None = Field(description="符合条件的工单数（仅第一页给出）；超过上限时为上限")
    total_capped: bool = Field(False, description="总数超过上限（1,000）时只计到上限")
    total_estimate: int | None = Field(
        None, description="超过上限时数据库统计信息给出的估算值（约数，不是精确计数）"
    )
    next_cursor: str | None = Field(None, description="下一页的位置（cursor 参数）；最后一页为空")


class ProvinceRow(BaseModel):
    """One city's 12320 calls in the province's month."""

    city: str = Field(min_length=1, max_length=16)
    calls: int = Field(ge=0)


class ProvinceImport(BaseModel):
    """The province's calls by city for a month."""

    rows: list[ProvinceRow] = Field(min_length=1, max_length=20)


class MonthRead(BaseModel):
    """The hotline's month: the bulletin paragraph and its figures."""

    month: str
    total: int
    calls: dict[str, int]
    orders: dict[str, int]
    paragraph: str
    province: str | None
    assistant: str | None


class ChatRequest(BaseModel):
    """One message to 宁宁; `conversation` continues an earlier one."""

    message: str = Field(min_length=1, max_length=500)
    conversation: str | None = Field(None, max_length=40)


class Source(BaseModel):
    """Where an answer came from."""

    id: str
    title: str


class ChatReply(BaseModel):
    """宁宁's answer."""

    conversation: str
    intent: str
    answer: str
    sources: list[Source] = []
    confidence: float
    handed_off: bool = False
    crisis: bool = False
    order_number: str | None = None
    rephrased: bool = False
    data: dict[str, Any] | None = None


def local(t: datetime | None) -> str:
    """A time as people read it (Beijing)."""
    return t.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if t else ""
