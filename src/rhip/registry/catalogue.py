"""The dataset catalogue (数据集目录): the tables institutions upload, their fields, keys, links and codes.

The catalogue is data (registry/data/datasets.yaml); this module loads it into frozen dataclasses,
adds the four common record fields to every table, and checks it is internally consistent.
docs/datasets.md is generated from it by `python -m rhip.registry.catalogue_doc --markdown`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

from rhip.errors import NotFound
from rhip.registry import codes

DATA = Path(__file__).parent / "data"

FieldType = Literal["string", "integer", "decimal", "date", "datetime", "code", "id_number", "phone"]
Category = Literal["medical", "public_health"]

FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
CATEGORIES: tuple[str, ...] = get_args(Category)
REALTIME_FORMS = 12  # the bulletin's 实时数据表单上传情况 is “x/12”
# a record is real-time (实时) when its 数据采集时间 is at most this after its event (docs/metrics.md)
REALTIME_LAG = timedelta(hours=1)

TYPE_LABELS: dict[str, str] = {
    "string": "字符串",
    "integer": "整数",
    "decimal": "数值",
    "date": "日期",
    "datetime": "日期时间",
    "code": "代码",
    "id_number": "身份证号",
    "phone": "电话号码",
}
CATEGORY_LABELS: dict[str, str] = {"medical": "医疗服务", "public_health": "公共卫生"}


@dataclass(frozen=True)
class Field:
    """One column of an upload table."""

    name: str  # English snake_case, the column name in files and the lake
    label: str  # Chinese, e.g. "就诊流水号"
    type: FieldType
    required: bool
    code_system: str | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""


@dataclass(frozen=True)
class Link:
    """A referential link: these fields of this table name a record of `dataset` (same institution)."""

    fields: tuple[str, ...]
    dataset: str
    target_fields: tuple[str, ...]


@dataclass(frozen=True)
class Dataset:
    """One upload table of the catalogue."""

    name: str
    label: str
    category: Category
    realtime: bool  # one of the 12 real-time forms (实时数据表单)
    business_key: tuple[str, ...]  # with org_code implied
    event_time: str | None  # the field that dates the event; None → partitioned by updated_at
    fields: tuple[Field, ...]  # including the common metadata fields, first
    links: tuple[Link, ...]
    cda_document: str | None  # WS/T 500 / WS/T 483 document type mapped to this table
    description: str = ""
    amount: str | None = None  # the money field the bulletin sums (收入), kept in intake's rollups
    person: str | None = None  # the field naming the person under management (distinct people counted)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Column names in catalogue order."""
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        """One field by name, or NotFound."""
        for f in self.fields:
            if f.name == name:
                return f
        raise NotFound(f"数据集“{self.name}”没有字段“{name}”", code="field-not-found")

    @property
    def required_fields(self) -> tuple[Field, ...]:
        """The fields that must be present and non-empty."""
        return tuple(f for f in self.fields if f.required)

    @property
    def dedup_key(self) -> tuple[str, ...]:
        """The full identity of a record: org_code plus the business key."""
        return ("org_code", *self.business_key)


COMMON_FIELDS: tuple[Field, ...] = (
    Field("org_code", "机构代码", "string", True, max_length=32, description="上传机构在机构注册库中的代码"),
    Field("collected_at", "数据采集时间", "datetime", True, description="机构从业务系统抽取本条记录的时间"),
    Field(
        "updated_at",
        "数据更新时间",
        "datetime",
        True,
        description="本条记录在业务系统中最后修改的时间；去重时取最新",
    ),
    Field(
        "change_flag",
        "修改标志",
        "code",
        True,
        code_system="change_flag",
        description="1 新增、2 修改、3 撤销",
    ),
)
COMMON_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in COMMON_FIELDS)


class CatalogueError(ValueError):
    """The catalogue file is malformed or inconsistent (a developer error, caught by the tests)."""


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _field(raw: dict[str, Any], where: str) -> Field:
    unknown = set(raw) - {
        "name",
        "label",
        "type",
        "required",
        "code_system",
        "max_length",
        "minimum",
        "maximum",
        "description",
    }
    if unknown:
        raise CatalogueError(f"{where}: unknown keys {sorted(unknown)}")
    ftype = raw.get("type")
    if ftype not in FIELD_TYPES:
        raise CatalogueError(f"{where}: bad type {ftype!r}")
    if not isinstance(raw.get("required"), bool):
        raise CatalogueError(f"{where}: 'required' must be true or false")
    return Field(
        name=str(raw["name"]),
        label=str(raw["label"]),
        type=cast(FieldType, ftype),
        required=bool(raw["required"]),
        code_system=raw.get("code_system"),
        max_length=_opt_int(raw.get("max_length")),
        minimum=_opt_float(raw.get("minimum")),
        maximum=_opt_float(raw.get("maximum")),
        description=str(raw.get("description") or ""),
    )


def _dataset(raw: dict[str, Any]) -> Dataset:
    name = str(raw["name"])
    category = raw.get("category")
    if category not in CATEGORIES:
        raise CatalogueError(f"{name}: bad category {category!r}")
    fields = tuple(_field(f, f"{name}.{f.get('name')}") for f in raw.get("fields") or [])
    links = tuple(
        Link(tuple(link["fields"]), str(link["dataset"]), tuple(link["target_fields"]))
        for link in raw.get("links") or []
    )
    return Dataset(
        name=name,
        label=str(raw["label"]),
        category=cast(Category, category),
        realtime=bool(raw.get("realtime", False)),
        business_key=tuple(raw["business_key"]),
        event_time=raw.get("event_time"),
        fields=COMMON_FIELDS + fields,
        links=links,
        cda_document=raw.get("cda_document"),
        description=str(raw.get("description") or ""),
        amount=raw.get("amount"),
        person=raw.get("person"),
    )


def problems(items: list[Dataset]) -> list[str]:
    """Every inconsistency in a catalogue (empty when it is sound)."""
    out: list[str] = []
    by_name = {d.name: d for d in items}
    if len(by_name) != len(items):
        out.append("duplicate dataset names")
    systems = codes.code_systems()
    realtime = [d.name for d in items if d.realtime]
    if len(realtime) != REALTIME_FORMS:
        out.append(f"{len(realtime)} real-time datasets, expected {REALTIME_FORMS}")
    for d in items:
        names = d.field_names
        if names[: len(COMMON_FIELDS)] != COMMON_FIELD_NAMES:
            out.append(f"{d.name}: the common fields must come first")
        if len(set(names)) != len(names):
            out.append(f"{d.name}: duplicate field names")
        if not d.business_key:
            out.append(f"{d.name}: empty business key")
        for key in d.business_key:
            if key not in names:
                out.append(f"{d.name}: business key field {key} does not exist")
            elif not d.field(key).required:
                out.append(f"{d.name}: business key field {key} must be required")
        if d.amount is not None and (d.amount not in names or d.field(d.amount).type != "decimal"):
            out.append(f"{d.name}: amount field {d.amount} is not a decimal field of the table")
        if d.person is not None and d.person not in names:
            out.append(f"{d.name}: person field {d.person} does not exist")
        if d.event_time is not None:
            if d.event_time not in names:
                out.append(f"{d.name}: event_time field {d.event_time} does not exist")
            elif d.field(d.event_time).type not in ("date", "datetime"):
                out.append(f"{d.name}: event_time field {d.event_time} is not a date or datetime")
        for f in d.fields:
            if f.type == "code" and not f.code_system:
                out.append(f"{d.name}.{f.name}: code field without code_system")
            if f.code_system and f.code_system not in systems:
                out.append(f"{d.name}.{f.name}: unknown code system {f.code_system}")
            if f.minimum is not None and f.maximum is not None and f.minimum > f.maximum:
                out.append(f"{d.name}.{f.name}: minimum above maximum")
        for link in d.links:
            target = by_name.get(link.dataset)
            if len(link.fields) != len(link.target_fields) or not link.fields:
                out.append(f"{d.name}: link to {link.dataset} has mismatched field lists")
            for f_name in link.fields:
                if f_name not in names:
                    out.append(f"{d.name}: link field {f_name} does not exist")
            if target is None:
                out.append(f"{d.name}: link to unknown dataset {link.dataset}")
                continue
            for t_name in link.target_fields:
                if t_name not in target.field_names:
                    out.append(f"{d.name}: link target {link.dataset}.{t_name} does not exist")
            if tuple(link.target_fields) != target.business_key:
                out.append(f"{d.name}: link to {link.dataset} must target its business key")
    return out


@cache
def _load() -> tuple[Dataset, ...]:
    with (DATA / "datasets.yaml").open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    items = [_dataset(d) for d in raw["datasets"]]
    found = problems(items)
    if found:
        raise CatalogueError("datasets.yaml: " + "; ".join(found))
    return tuple(items)


@dataclass(frozen=True)
class Validation:
    """The catalogue's validation rules as data (datasets.yaml `validation:`): read by intake's validator,
    the synthetic city's defects and the tests, so each is defined once."""

    rules: dict[str, str]  # rule code → Chinese text, in checking order (the first failing rule wins)
    order_pairs: tuple[tuple[str, str], ...]  # (earlier, later) fields checked when a table has both
    birth_fields: tuple[str, ...]
    max_age_years: int  # a birth date further back is implausible (also for ID numbers)
    earliest_date: date  # any other date before it is implausible

    @property
    def row_rules(self) -> tuple[str, ...]:
        """The rules a record itself can break (the institution check is the upload's, not the row's)."""
        return tuple(r for r in self.rules if r != "institution")


@cache
def validation() -> Validation:
    """The catalogue's validation rules."""
    with (DATA / "datasets.yaml").open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)["validation"]
    return Validation(
        rules={str(k): str(v) for k, v in raw["rules"].items()},
        order_pairs=tuple((str(a), str(b)) for a, b in raw["order_pairs"]),
        birth_fields=tuple(str(f) for f in raw["birth_fields"]),
        max_age_years=int(raw["max_age_years"]),
        earliest_date=raw["earliest_date"],
    )


def datasets() -> list[Dataset]:
    """Every dataset of the catalogue, in catalogue order."""
    return list(_load())


def names() -> list[str]:
    """The dataset names, in catalogue order."""
    return [d.name for d in _load()]


def get(name: str) -> Dataset:
    """One dataset by name, or NotFound (Chinese) listing the valid names."""
    for d in _load():
        if d.name == name:
            return d
    raise NotFound(f"数据集“{name}”不存在；可用的数据集：{'、'.join(names())}", code="dataset-not-found")


def realtime_datasets() -> list[Dataset]:
    """The 12 real-time forms (实时数据表单)."""
    return [d for d in _load() if d.realtime]


# ---------------------------------------------------------------------------------------------
# For people (the pages and docs/datasets.md, catalogue_doc.py)
# ---------------------------------------------------------------------------------------------


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


def range_text(f: Field) -> str:
    """A field's value range and length limit for people, e.g. "0–1000000；≤64 字符"."""
    parts = []
    if f.minimum is not None or f.maximum is not None:
        lo = _num(f.minimum) if f.minimum is not None else ""
        hi = _num(f.maximum) if f.maximum is not None else ""
        parts.append(f"{lo}–{hi}")
    if f.max_length is not None:
        parts.append(f"≤{f.max_length} 字符")
    return "；".join(parts)
