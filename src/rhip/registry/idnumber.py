"""GB 11643 citizen identity numbers and the GB/T 2260 administrative areas their first six digits name.

The check character, the embedded birth date and sex, 15→18 conversion; the area code is a soft warning
(areas created after a holder's birth are genuine). Pure functions; nothing here touches the database.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from operator import mul
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from rhip.errors import Invalid

DATA = Path(__file__).parent / "data"

# GB/T 2261.1 sex codes: here because an ID number embeds sex; `codes` serves them as a code system
SEX: Mapping[str, str] = MappingProxyType({"0": "未知的性别", "1": "男性", "2": "女性", "9": "未说明的性别"})

# Administrative areas (GB/T 2260 subset), used only for soft warnings on ID numbers
# ---------------------------------------------------------------------------------------------

AreaLevel = Literal["province", "city", "county"]


@dataclass(frozen=True)
class Area:
    """One GB/T 2260 area code with its validity years (historical codes kept)."""

    code: str
    name: str
    level: AreaLevel
    parent: str | None
    valid_from: int | None
    valid_to: int | None
    note: str = ""


@cache
def areas() -> dict[str, Area]:
    """The area-code table in data/codes_area.csv, by code."""
    out: dict[str, Area] = {}
    with (DATA / "codes_area.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            level = row["level"].strip()
            if level not in ("province", "city", "county"):
                raise ValueError(f"codes_area.csv: bad level {level!r} for {row['code']}")
            lvl: AreaLevel = "province" if level == "province" else "city" if level == "city" else "county"
            out[row["code"].strip()] = Area(
                code=row["code"].strip(),
                name=row["name"].strip(),
                level=lvl,
                parent=row["parent"].strip() or None,
                valid_from=int(row["valid_from"]) if row["valid_from"].strip() else None,
                valid_to=int(row["valid_to"]) if row["valid_to"].strip() else None,
                note=row["note"].strip(),
            )
    return out


@cache
def _enumerated_parents() -> frozenset[str]:
    """Provinces and cities whose children are listed one by one (so an unlisted child is unknown)."""
    return frozenset(a.parent for a in areas().values() if a.parent)


def find_area(code: str) -> Area | None:
    """The most specific table entry covering a 6-digit area code, or None when it is not covered."""
    if not re.fullmatch(r"\d{6}", code):
        return None
    table = areas()
    if code in table:
        return table[code]
    city, province = code[:4] + "00", code[:2] + "0000"
    if city in table:
        return None if city in _enumerated_parents() else table[city]
    if province in table and province not in _enumerated_parents():
        return table[province]
    return None


def is_known_area(code: str) -> bool:
    """Whether the area code is covered by our table (listed, or under a parent with unlisted children)."""
    return find_area(code) is not None


# ---------------------------------------------------------------------------------------------
# GB 11643 citizen identity numbers
# ---------------------------------------------------------------------------------------------

ID_WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_MAP = "10X98765432"
_ZERO_WEIGHT = 48 * sum(ID_WEIGHTS)  # what the code points of 17 zeros weigh


def max_age_years() -> int:
    """The oldest plausible age (the catalogue's `validation.max_age_years`, one limit for every check)."""
    from rhip.registry.catalogue import validation  # the catalogue imports codes, which imports this

    return validation().max_age_years


def check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits of an 18-digit ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise Invalid("身份证号码前 17 位必须是 17 位数字", code="id-format")
    # on the bytes: each is its digit's code point, 48 + digit (every booking checks a number)
    total = sum(map(mul, first17.encode(), ID_WEIGHTS)) - _ZERO_WEIGHT
    return ID_CHECK_MAP[total % 11]


def convert_15_to_18(number15: str) -> str:
    """Upgrade a 15-digit (first-generation) ID number: insert century 19, append the check character."""
    text = unicodedata.normalize("NFKC", number15).strip()
    if len(text) != 15 or not text.isascii() or not text.isdigit():
        raise Invalid("15 位身份证号码必须是 15 位数字", code="id-format")
    first17 = text[:6] + "19" + text[6:]
    return first17 + check_char(first17)


def make_id(area_code: str, birth: date, seq: int) -> str:
    """A well-formed 18-digit ID number (synthetic city): area, birth date, 3-digit sequence (odd = male)."""
    if not re.fullmatch(r"\d{6}", area_code):
        raise ValueError(f"area code must be 6 digits: {area_code!r}")
    if not 0 <= seq <= 999:
        raise ValueError(f"sequence must be 0..999: {seq}")
    first17 = f"{area_code}{birth:%Y%m%d}{seq:03d}"
    return first17 + check_char(first17)


def sex_of_seq(seq: int) -> str:
    """The GB/T 2261.1 sex code implied by a sequence number (odd = 1 male, even = 2 female)."""
    return "1" if seq % 2 else "2"


@dataclass
class IdCheck:
    """The outcome of validate_id: hard errors, soft warnings and what the number says."""

    number: str
    ok: bool = True
    normalized: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    birth_date: date | None = None
    sex: str | None = None
    area_code: str | None = None
    area_name: str | None = None

    def error(self, rule: str, message: str) -> None:
        """Record a hard error (the number fails)."""
        self.errors.append((rule, message))
        self.ok = False

    def warn(self, rule: str, message: str) -> None:
        """Record a soft warning (the number still passes)."""
        self.warnings.append((rule, message))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "number": self.number,
            "ok": self.ok,
            "normalized": self.normalized,
            "errors": [{"rule": r, "message": m} for r, m in self.errors],
            "warnings": [{"rule": r, "message": m} for r, m in self.warnings],
            "birth_date": self.birth_date.isoformat() if self.birth_date else None,
            "sex": self.sex,
            "sex_display": SEX.get(self.sex) if self.sex else None,
            "area_code": self.area_code,
            "area_name": self.area_name,
        }


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (28 February for a 29 February in a common year)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a non-leap target year
        return day.replace(year=day.year - years, day=28)


def _today() -> date:
    from rhip import clock

    return clock.local_now().date()


def validate_id(
    number: str,
    *,
    birth_date: date | None = None,
    sex: str | None = None,
    today: date | None = None,
) -> IdCheck:
    """Check a citizen ID number (GB 11643), and compare it with the recorded birth date and sex code.

    Hard errors: format, check character, impossible/future/over-120-year birth date, embedded birth date
    or sex (17th digit odd = male) disagreeing with the recorded one. Soft warnings: 15-digit number
    (converted), area code not in our table, area code created after the birth year or retired before it
    — genuine numbers carry such codes, so they never fail the number.
    """
    result = IdCheck(number=number)
    text = unicodedata.normalize("NFKC", number or "").strip().upper()
    if not text:
        result.error("id-empty", "身份证号码为空")
        return result
    if len(text) == 15:
        if not (text.isascii() and text.isdigit()):
            result.error("id-chars", "15 位旧身份证号码必须全部是数字")
            return result
        text = convert_15_to_18(text)
        result.warn("id-15-digit", f"15 位旧身份证号码，已转换为 18 位：{text}")
    elif len(text) != 18:
        result.error("id-length", f"身份证号码应为 18 位（或 15 位旧号码），实际 {len(text)} 位")
        return result
    if not re.fullmatch(r"\d{17}[\dX]", text) or not text.isascii():
        result.error("id-chars", "身份证号码前 17 位必须是数字，第 18 位为数字或 X")
        return result
    result.normalized = text
    expected = check_char(text[:17])
    if text[17] != expected:
        result.error("id-check-char", f"校验码错误：第 18 位应为 {expected}，实际为 {text[17]}")

    area_code = text[:6]
    result.area_code = area_code
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        result.error("id-birth-invalid", f"出生日期 {text[6:14]} 不是有效日期")
        born = None
    if born is not None:
        result.birth_date = born
        now = today or _today()
        if born > now:
            result.error("id-birth-future", f"出生日期 {born.isoformat()} 晚于今天")
        elif born < years_before(now, max_age_years()):
            result.error("id-birth-too-old", f"出生日期 {born.isoformat()} 早于 {max_age_years()} 年前")
        if birth_date is not None and birth_date != born:
            result.error(
                "id-birth-mismatch",
                f"身份证号码中的出生日期 {born.isoformat()} 与登记的出生日期 {birth_date.isoformat()} 不一致",
            )
    embedded_sex = sex_of_seq(int(text[16]))
    result.sex = embedded_sex
    if sex is not None and str(sex).strip() in ("1", "2") and str(sex).strip() != embedded_sex:
        result.error(
            "id-sex-mismatch",
            f"身份证号码第 17 位表示{SEX[embedded_sex]}，与登记的性别“{SEX[str(sex).strip()]}”不一致",
        )

    area = find_area(area_code)
    if area is None:
        result.warn("id-area-unknown", f"地址码 {area_code} 不在本平台行政区划代码表中（仅作提示）")
    else:
        result.area_name = area.name
        if born is not None and area.code == area_code:
            if area.valid_from is not None and born.year < area.valid_from:
                result.warn(
                    "id-area-after-birth",
                    f"地址码 {area_code}（{area.name}）{area.valid_from} 年启用，晚于出生年份 {born.year}；"
                    "撤县设区后登记的号码常见此情形，仅作提示",
                )
            if area.valid_to is not None and born.year > area.valid_to:
                result.warn(
                    "id-area-retired",
                    f"地址码 {area_code}（{area.name}）已于 {area.valid_to} 年撤销，"
                    f"早于出生年份 {born.year}（仅作提示）",
                )
    return result
