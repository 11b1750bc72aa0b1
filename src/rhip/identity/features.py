"""What a patient record says about its person, normalised for linking: ID number (GB 11643), name as
characters, toneless pinyin and loose pinyin, birth date, sex, phone, district, and the blocking keys.

Pure functions; the same features feed the incremental scorer (`scoring.py`) and splink (`train.py`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

from rhip.registry.idnumber import ID_CHECK_MAP, ID_WEIGHTS

# Surnames whose reading as a surname differs from the character's common reading (多音字 as 姓)
SURNAME_READINGS: dict[str, str] = {
    "单": "shan",
    "曾": "zeng",
    "解": "xie",
    "仇": "qiu",
    "朴": "piao",
    "区": "ou",
    "查": "zha",
    "乐": "yue",
    "盖": "ge",
    "缪": "miao",
    "覃": "qin",
    "种": "chong",
    "秘": "bi",
    "召": "shao",
    "翟": "zhai",
    "繁": "po",
    "黑": "he",
    "牟": "mou",
    "隗": "wei",
    "尉": "yu",
    "柏": "bai",
    "员": "yun",
    "能": "nai",
    "重": "chong",
    "长孙": "zhang sun",
    "尉迟": "yu chi",
    "万俟": "mo qi",
    "澹台": "tan tai",
}
_COMPOUND = sorted((k for k in SURNAME_READINGS if len(k) > 1), key=len, reverse=True)
_DROP = re.compile(r"[\s·•・.\-_,，]+")
NEWBORN_MAX_DAYS = 366  # a record of a child this young under an adult's ID number is a newborn's
GUARDIAN_MIN_YEARS = 14  # an ID holder at least this much older than the record is its guardian


def normalise_name(name: str | None) -> str | None:
    """NFKC, no spaces or middle dots, Latin upper-case; None when nothing is left."""
    if not name:
        return None
    text = _DROP.sub("", unicodedata.normalize("NFKC", name)).upper()
    return text or None


@lru_cache(maxsize=200_000)
def pinyin(name: str) -> str:
    """Toneless pinyin of a normalised name, syllables separated by spaces; surnames read as surnames."""
    head, rest = "", name
    for compound in _COMPOUND:
        if name.startswith(compound):
            head, rest = SURNAME_READINGS[compound], name[len(compound) :]
            break
    else:
        if name[:1] in SURNAME_READINGS:
            head, rest = SURNAME_READINGS[name[:1]], name[1:]
    tail = lazy_pinyin(rest, style=Style.NORMAL, errors="default", v_to_u=False) if rest else []
    out = ([head] if head else []) + [s.lower().replace("ü", "v") for s in tail if s.strip()]
    return " ".join(out)


def loose_syllable(s: str) -> str:
    """A syllable with the local mergers undone: n/l, zh/z ch/c sh/s, -ng/-n (not -ong)."""
    if s[:2] in ("zh", "ch", "sh"):
        s = s[0] + s[2:]
    elif s[:1] == "n" and s != "ng":
        s = "l" + s[1:]
    if s.endswith("ng") and not s.endswith("ong") and len(s) > 2:
        s = s[:-1]
    return s


def loose_pinyin(py: str) -> str:
    """The loose pinyin of a toneless pinyin string."""
    return " ".join(loose_syllable(s) for s in py.split(" ")) if py else py


def _check(first17: str) -> str:
    return ID_CHECK_MAP[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def _date8(text: str) -> date | None:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


@dataclass(frozen=True)
class IdNumber:
    """A recorded ID number, normalised: `number` is 18 characters (15-digit ones converted) or None."""

    raw: str | None
    number: str | None
    valid: bool  # check character and embedded date both right
    converted: bool  # was a 15-digit number
    birth_date: date | None
    sex: str | None


_ID18 = re.compile(r"\d{17}[\dX]")


def parse_id(raw: str | None) -> IdNumber:
    """Normalise an ID number as recorded; malformed text gives number None (never an error)."""
    if not raw:
        return IdNumber(raw, None, False, False, None, None)
    text = _DROP.sub("", unicodedata.normalize("NFKC", raw)).upper()
    converted = False
    if len(text) == 15 and text.isascii() and text.isdigit():
        first17 = text[:6] + "19" + text[6:]
        text, converted = first17 + _check(first17), True
    if len(text) != 18 or not text.isascii() or not _ID18.fullmatch(text):
        return IdNumber(raw, None, False, False, None, None)
    born = _date8(text[6:14])
    valid = born is not None and text[17] == _check(text[:17])
    sex = "1" if int(text[16]) % 2 else "2"
    return IdNumber(raw, text, valid, converted, born, sex)


def normalise_phone(phone: str | None) -> str | None:
    """Digits only, without +86 / 0086; None when fewer than 7 digits remain."""
    if not phone:
        return None
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", phone) if ch.isdigit())
    for prefix in ("0086", "86"):
        if len(digits) == 11 + len(prefix) and digits.startswith(prefix):
            digits = digits[len(prefix) :]
    return digits if len(digits) >= 7 else None


def normalise_sex(sex: str | None) -> str | None:
    """GB/T 2261.1 code 1 or 2 (男/女/M/F accepted); anything else is unknown (None)."""
    if sex is None:
        return None
    text = str(sex).strip().upper()
    if text in ("1", "男", "M", "MALE"):
        return "1"
    if text in ("2", "女", "F", "FEMALE"):
        return "2"
    return None


def swap_day_month(d: date | None) -> date | None:
    """The date with day and month exchanged, when that is another valid date."""
    if d is None or d.day > 12 or d.day == d.month:
        return None
    try:
        return d.replace(month=d.day, day=d.month)
    except ValueError:
        return None


@dataclass(frozen=True)
class Features:
    """A record's comparable features and blocking keys."""

    id_number: str | None  # 18 characters, the record's own (None for a newborn under a guardian's)
    id_valid: bool
    id_converted: bool
    guardian_id: str | None  # the mother's (guardian's) number a newborn was registered under
    name: str | None
    py: str | None
    py_loose: str | None
    birth_date: date | None
    sex: str | None
    phone: str | None
    district: str | None

    @property
    def key_name_birth(self) -> str | None:
        """Blocking key: loose pinyin + birth date."""
        return name_birth_key(self.py_loose, self.birth_date)

    @property
    def key_birth_district(self) -> str | None:
        """Blocking key: birth date + district."""
        if self.birth_date is None or not self.district:
            return None
        return f"{self.birth_date.isoformat()}|{self.district}"

    def birth_district_block(self, other: Features) -> bool:
        """Whether the birth-date + district block holds the pair: that key, the sex and the loose
        pinyin's first letter (the surname's initial) all agree (the model's fourth blocking rule)."""
        return (
            self.key_birth_district is not None
            and self.key_birth_district == other.key_birth_district
            and self.sex is not None
            and self.sex == other.sex
            and bool(self.py_loose)
            and bool(other.py_loose)
            and (self.py_loose or "")[:1] == (other.py_loose or "")[:1]
        )

    def name_birth_keys(self) -> list[str]:
        """The loose-pinyin + birth-date keys to look up (the birth date and its day/month swap)."""
        out = [k for k in (self.key_name_birth,) if k]
        swapped = name_birth_key(self.py_loose, swap_day_month(self.birth_date))
        if swapped:
            out.append(swapped)
        return out


def name_birth_key(py_loose: str | None, birth: date | None) -> str | None:
    """The blocking key of loose pinyin and a birth date (None when either is missing)."""
    if not py_loose or birth is None:
        return None
    return f"{py_loose.replace(' ', '')}|{birth.isoformat()}"


def derive(
    *,
    id_number: str | None,
    name: str | None,
    birth_date: date | None,
    sex: str | None,
    phone: str | None,
    district: str | None,
) -> Features:
    """A record's features. The ID's embedded birth date and sex fill missing ones; a young child's
    record under an adult's number keeps that number as its guardian's and never matches on it."""
    ident = parse_id(id_number)
    nm = normalise_name(name)
    py = pinyin(nm) if nm else None
    sx = normalise_sex(sex)
    number, guardian = ident.number, None
    born = birth_date
    if (
        ident.valid
        and ident.birth_date is not None
        and born is not None
        and (born - ident.birth_date).days >= GUARDIAN_MIN_YEARS * 365
    ):
        number, guardian = None, ident.number
    if number is not None and ident.valid:
        born = born or ident.birth_date
        sx = sx or ident.sex
    dist = (district or "").strip() or None
    return Features(
        id_number=number,
        id_valid=ident.valid and number is not None,
        id_converted=ident.converted,
        guardian_id=guardian,
        name=nm,
        py=py or None,
        py_loose=loose_pinyin(py) if py else None,
        birth_date=born,
        sex=sx,
        phone=normalise_phone(phone),
        district=dist,
    )
