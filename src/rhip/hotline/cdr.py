"""Reading the telephony system's call-detail records: CSV in FreeSWITCH `mod_cdr_csv`'s default template.

The default template ("example" in cdr_csv.conf.xml) writes 15 quoted fields, no header::

    "${caller_id_name}","${caller_id_number}","${destination_number}","${context}","${start_stamp}",
    "${answer_stamp}","${end_stamp}","${duration}","${billsec}","${hangup_cause}","${uuid}",
    "${bleg_uuid}","${accountcode}","${read_codec}","${write_codec}"

The 12320 IVR sets channel variables that our template appends (all optional, in this order):
`${rhip_ivr_path}` (keys pressed, e.g. "1-2"), `${rhip_category}` (the call's category code or Chinese name),
`${rhip_agent}` (the agent who answered) and `${rhip_id_number}` (an ID number the caller keyed in).
Without a category the IVR path's first key decides it (data/ivr.yaml); without a path, `accountcode`.
Stamps are local time (Asia/Shanghai) as FreeSWITCH writes them. Every bad line is reported with its number.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path

import yaml

from rhip.clock import SHANGHAI
from rhip.registry import directories, idnumber

DATA = Path(__file__).with_name("data")
DEFAULT_FIELDS = (
    "caller_id_name",
    "caller_id_number",
    "destination_number",
    "context",
    "start_stamp",
    "answer_stamp",
    "end_stamp",
    "duration",
    "billsec",
    "hangup_cause",
    "uuid",
    "bleg_uuid",
    "accountcode",
    "read_codec",
    "write_codec",
)
EXTRA_FIELDS = ("rhip_ivr_path", "rhip_category", "rhip_agent", "rhip_id_number")
CALL_CATEGORIES = (
    "consult",
    "complaint",
    "phone_booking",
    "manual",
    "crisis",
    "ivr",
    "expert",
    "satisfaction",
)
CALL_LABELS = {
    "consult": "咨询类",
    "complaint": "医疗投诉",
    "phone_booking": "电话预约",
    "manual": "人工服务",
    "crisis": "心理危机干预",
    "ivr": "自助语音问答",
    "expert": "专家在线答疑",
    "satisfaction": "医院满意度调查（呼入）",
}
MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class LineError:
    """One refused line: its number in the file, the field and why."""

    line: int
    field: str
    message: str


@dataclass
class CdrRow:
    """One accepted call-detail record, ready to store."""

    line: int
    uuid: str
    caller_number: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: int
    billsec: int
    hangup_cause: str
    ivr_path: str
    category: str
    agent: str | None
    id_number: str | None


@dataclass
class Parsed:
    """The accepted rows and the refused lines of one file."""

    rows: list[CdrRow] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    lines: int = 0


@cache
def ivr_menu() -> dict[str, str]:
    """First IVR key → call category."""
    return {r["key"]: r["category"] for r in yaml.safe_load((DATA / "ivr.yaml").read_text(encoding="utf-8"))}


@cache
def _category_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for c in directories.hotline_categories():
        if c.kind != "call":
            continue
        names[c.code] = c.code
        names[c.name] = c.code
        for a in c.aliases:
            names[a] = c.code
    return names


def resolve_category(value: str) -> str | None:
    """A category code from a code, a Chinese name or an alias (None when unknown)."""
    return _category_names().get(value.strip().replace(" ", "")) or _category_names().get(value.strip())


def category_from_path(path: str) -> str | None:
    """The category the IVR path's first key leads to."""
    digits = re.sub(r"\D", "", path)
    return ivr_menu().get(digits[:1]) if digits else None


def mask_number(number: str) -> str:
    """A phone number as people may see it: 138****1234 (short numbers keep their last two digits)."""
    digits = re.sub(r"\D", "", number)
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(0, len(digits) - 2) + digits[-2:]


def hash_number(number: str) -> str:
    """A stable pseudonym of a caller's number, to count repeat callers without storing the number."""
    digits = re.sub(r"\D", "", number)
    return hashlib.sha256(f"rhip-hotline:{digits}".encode()).hexdigest() if digits else ""


def _stamp(value: str) -> datetime:
    return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without BOM), else GB18030 as older switches write."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def _int(values: dict[str, str], name: str, errors: list[LineError], line: int) -> int:
    raw = values.get(name, "").strip()
    if not raw.isdigit():
        errors.append(LineError(line, name, f"应为非负整数秒数，实为“{raw[:20]}”"))
        return 0
    return int(raw)


def parse_row(values: list[str], line: int) -> tuple[CdrRow | None, list[LineError]]:
    """One CSV record → a row, or the reasons it is refused."""
    errs: list[LineError] = []
    n = len(values)
    if n < len(DEFAULT_FIELDS) or n > len(DEFAULT_FIELDS) + len(EXTRA_FIELDS):
        return None, [LineError(line, "*", f"字段数为 {n}，应为 15（FreeSWITCH 默认模板）至 19")]
    v = dict(zip(DEFAULT_FIELDS + EXTRA_FIELDS, values, strict=False))
    uuid = v["uuid"].strip()
    if not uuid or len(uuid) > 64:
        errs.append(LineError(line, "uuid", "通话标识（uuid）为空或超过 64 个字符"))
    stamps: dict[str, datetime | None] = {}
    for name in ("start_stamp", "answer_stamp", "end_stamp"):
        raw = v[name].strip()
        if not raw:
            stamps[name] = None
            if name == "start_stamp":
                errs.append(LineError(line, name, "开始时间为空"))
            continue
        try:
            stamps[name] = _stamp(raw)
        except ValueError:
            errs.append(LineError(line, name, f"时间格式应为 YYYY-MM-DD HH:MM:SS，实为“{raw[:30]}”"))
            stamps[name] = None
    duration = _int(v, "duration", errs, line)
    billsec = _int(v, "billsec", errs, line)
    start, end = stamps["start_stamp"], stamps["end_stamp"]
    if start and end and end < start:
        errs.append(LineError(line, "end_stamp", "结束时间早于开始时间"))
    if billsec > duration and v["duration"].strip().isdigit():
        errs.append(LineError(line, "billsec", "通话时长（billsec）大于总时长（duration）"))
    path = (v.get("rhip_ivr_path") or v["accountcode"]).strip()
    raw_cat = (v.get("rhip_category") or "").strip()
    category = resolve_category(raw_cat) if raw_cat else category_from_path(path)
    if category is None:
        shown = raw_cat or path or "（空）"
        errs.append(LineError(line, "rhip_category", f"无法确定来电分类：“{shown[:30]}”"))
    id_number = (v.get("rhip_id_number") or "").strip().upper() or None
    if id_number:
        checked = idnumber.validate_id(id_number)
        if not checked.ok or not checked.normalized:
            errs.append(LineError(line, "rhip_id_number", "身份证号码无效"))
        else:
            id_number = checked.normalized
    if errs or start is None or category is None:
        return None, errs
    agent = (v.get("rhip_agent") or "").strip() or None
    return (
        CdrRow(
            line=line,
            uuid=uuid,
            caller_number=v["caller_id_number"].strip(),
            started_at=start,
            answered_at=stamps["answer_stamp"],
            ended_at=end,
            duration_s=duration,
            billsec=billsec,
            hangup_cause=v["hangup_cause"].strip()[:48],
            ivr_path=path[:64],
            category=category,
            agent=agent[:64] if agent else None,
            id_number=id_number,
        ),
        [],
    )


def parse(text: str) -> Parsed:
    """Every line of a CDR file: accepted rows and per-line errors (a header line is skipped)."""
    out = Parsed()
    reader = csv.reader(io.StringIO(text))
    for values in reader:
        line = reader.line_num
        if not values or all(not x.strip() for x in values):
            continue
        if line == 1 and values[0].strip() in ("caller_id_name", "${caller_id_name}"):
            continue
        out.lines += 1
        row, errs = parse_row(values, line)
        if row is not None:
            out.rows.append(row)
        out.errors.extend(errs)
    return out


def write_line(row: dict[str, str]) -> str:
    """One CDR line in the default template plus our four fields (for the synthetic city and tests)."""
    names = DEFAULT_FIELDS + EXTRA_FIELDS
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow([row.get(k, "") for k in names])
    return buf.getvalue()
