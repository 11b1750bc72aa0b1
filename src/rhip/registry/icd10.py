"""ICD-10 (WHO 2019 / GB/T 14396 subset): chapters, codes, the national clinical version's extensions, search.

Pure functions over registry/data/icd10*.csv; nothing here touches the database.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data"

# (chapter, first category, last category, Chinese title, English title)
ICD10_CHAPTERS: tuple[tuple[str, str, str, str, str], ...] = (
    ("I", "A00", "B99", "某些传染病和寄生虫病", "Certain infectious and parasitic diseases"),
    ("II", "C00", "D48", "肿瘤", "Neoplasms"),
    (
        "III",
        "D50",
        "D89",
        "血液及造血器官疾病和涉及免疫机制的某些疾患",
        "Diseases of the blood and blood-forming organs and certain disorders involving the immune mechanism",
    ),
    ("IV", "E00", "E90", "内分泌、营养和代谢疾病", "Endocrine, nutritional and metabolic diseases"),
    ("V", "F00", "F99", "精神和行为障碍", "Mental and behavioural disorders"),
    ("VI", "G00", "G99", "神经系统疾病", "Diseases of the nervous system"),
    ("VII", "H00", "H59", "眼和附器疾病", "Diseases of the eye and adnexa"),
    ("VIII", "H60", "H95", "耳和乳突疾病", "Diseases of the ear and mastoid process"),
    ("IX", "I00", "I99", "循环系统疾病", "Diseases of the circulatory system"),
    ("X", "J00", "J99", "呼吸系统疾病", "Diseases of the respiratory system"),
    ("XI", "K00", "K93", "消化系统疾病", "Diseases of the digestive system"),
    ("XII", "L00", "L99", "皮肤和皮下组织疾病", "Diseases of the skin and subcutaneous tissue"),
    (
        "XIII",
        "M00",
        "M99",
        "肌肉骨骼系统和结缔组织疾病",
        "Diseases of the musculoskeletal system and connective tissue",
    ),
    ("XIV", "N00", "N99", "泌尿生殖系统疾病", "Diseases of the genitourinary system"),
    ("XV", "O00", "O99", "妊娠、分娩和产褥期", "Pregnancy, childbirth and the puerperium"),
    ("XVI", "P00", "P96", "起源于围生期的某些情况", "Certain conditions originating in the perinatal period"),
    (
        "XVII",
        "Q00",
        "Q99",
        "先天性畸形、变形和染色体异常",
        "Congenital malformations, deformations and chromosomal abnormalities",
    ),
    (
        "XVIII",
        "R00",
        "R99",
        "症状、体征和临床与实验室异常所见，不可归类在他处者",
        "Symptoms, signs and abnormal clinical and laboratory findings, not elsewhere classified",
    ),
    (
        "XIX",
        "S00",
        "T98",
        "损伤、中毒和外因的某些其他后果",
        "Injury, poisoning and certain other consequences of external causes",
    ),
    ("XX", "V01", "Y98", "疾病和死亡的外因", "External causes of morbidity and mortality"),
    (
        "XXI",
        "Z00",
        "Z99",
        "影响健康状态和与保健机构接触的因素",
        "Factors influencing health status and contact with health services",
    ),
    ("XXII", "U00", "U99", "用于特殊目的的编码", "Codes for special purposes"),
)

ICD10_CODE_RE = re.compile(r"^[A-Z]\d{2}(\.\d)?$")
# WHO category, then optionally a 4th character; the national clinical version (国家临床版 2.0) pads
# with "x" when there is no 4th character and appends two digits plus an "x###" extension.
_ICD10_INPUT_RE = re.compile(r"^([A-Z]\d{2})(?:\.([0-9X])(\d{2})?(X\d{3})?)?$")


@dataclass(frozen=True)
class Icd10Code:
    """One ICD-10 code: a 3-character category (I10) or a 4-character subcategory (E11.9)."""

    code: str
    name: str  # Chinese
    name_en: str
    chapter: str  # Roman numeral, I … XXII

    @property
    def category(self) -> str:
        """The 3-character category this code belongs to."""
        return self.code[:3]


def icd10_chapter(code: str) -> str | None:
    """The chapter (Roman numeral) whose block range holds this code's category, or None."""
    cat = code.strip().upper()[:3]
    for chapter, first, last, _zh, _en in ICD10_CHAPTERS:
        if first <= cat <= last:
            return chapter
    return None


@cache
def icd10() -> dict[str, Icd10Code]:
    """The ICD-10 subset shipped in data/icd10.csv, by code."""
    out: dict[str, Icd10Code] = {}
    with (DATA / "icd10.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            code = row["code"].strip()
            if code in out:
                raise ValueError(f"icd10.csv: duplicate code {code}")
            out[code] = Icd10Code(code, row["name"].strip(), row["name_en"].strip(), row["chapter"].strip())
    return out


@cache
def _subdivided_categories() -> frozenset[str]:
    """Categories for which the table holds at least one 4-character subcode (so they are subdivided)."""
    return frozenset(c[:3] for c in icd10() if len(c) > 3)


def normalize_icd10(code: str) -> str:
    """Upper-case, half-width, without dagger/asterisk marks or surrounding blanks."""
    text = unicodedata.normalize("NFKC", code).strip().upper()
    return text.rstrip("†*+").strip()


def find_icd10(code: str) -> Icd10Code | None:
    """The table entry for a code, falling back to its 4-character then 3-character parent."""
    m = _ICD10_INPUT_RE.match(normalize_icd10(code))
    if not m:
        return None
    cat, fourth = m.group(1), m.group(2)
    table = icd10()
    if fourth and fourth != "X" and f"{cat}.{fourth}" in table:
        return table[f"{cat}.{fourth}"]
    return table.get(cat)


def is_icd10(code: str) -> bool:
    """Whether a diagnosis code is normative (规范) ICD-10 for this platform.

    Accepted: (1) a code in the table (I10, E11.9); (2) a table category that the table shows to be
    subdivided, followed by any one-digit subcategory (J06.8); (3) either of those written in the
    national clinical version (国家临床版 2.0) with its extension: I10.x00, I10.x00x002, E11.900x001.
    Blanks, full-width characters and dagger/asterisk marks are tolerated. Rejected: unknown categories,
    a 4th character on a category the table holds only as a 3-character code (I10.1), malformed text.
    """
    m = _ICD10_INPUT_RE.match(normalize_icd10(code))
    if not m:
        return False
    cat, fourth, _digits, _ext = m.groups()
    table = icd10()
    if fourth is None or fourth == "X":
        # A bare category is valid if it is known at all (as a code or as the parent of known subcodes).
        return cat in table or cat in _subdivided_categories()
    return f"{cat}.{fourth}" in table or cat in _subdivided_categories()


def search_icd10(q: str = "", *, offset: int = 0, limit: int = 50) -> tuple[int, list[Icd10Code]]:
    """ICD-10 codes whose code starts with q or whose Chinese/English name contains it; (total, page)."""
    needle = q.strip()
    items: Iterable[Icd10Code] = icd10().values()
    if needle:
        up = normalize_icd10(needle)
        low = needle.lower()
        items = [c for c in items if c.code.startswith(up) or needle in c.name or low in c.name_en.lower()]
    found = sorted(items, key=lambda c: c.code)
    return len(found), found[offset : offset + limit]
