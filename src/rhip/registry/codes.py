"""Code systems the dataset catalogue binds: GB/T 2261 sex and marital status, GB 3304 ethnicity,
GB 11643 citizen ID numbers, an ICD-10 subset, and the value sets of the upload tables.

Pure functions over data files in registry/data/; nothing here touches the database.
"""

from __future__ import annotations

import csv
import importlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from rhip.errors import Invalid, NotFound

DATA = Path(__file__).parent / "data"

# ---------------------------------------------------------------------------------------------
# Code systems
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeSystem:
    """A named value set: its id, Chinese name, the standard it follows, and code → display."""

    id: str
    name: str
    standard: str
    codes: Mapping[str, str]
    description: str = ""
    external: bool = False  # codes live elsewhere (the institution registry), looked up on demand


SEX: Mapping[str, str] = MappingProxyType({"0": "未知的性别", "1": "男性", "2": "女性", "9": "未说明的性别"})

MARITAL_STATUS: Mapping[str, str] = MappingProxyType(
    {
        "10": "未婚",
        "20": "已婚",
        "21": "初婚",
        "22": "再婚",
        "23": "复婚",
        "30": "丧偶",
        "40": "离婚",
        "90": "未说明的婚姻状况",
    }
)

_ETHNIC_NAMES: tuple[str, ...] = (
    "汉族",
    "蒙古族",
    "回族",
    "藏族",
    "维吾尔族",
    "苗族",
    "彝族",
    "壮族",
    "布依族",
    "朝鲜族",
    "满族",
    "侗族",
    "瑶族",
    "白族",
    "土家族",
    "哈尼族",
    "哈萨克族",
    "傣族",
    "黎族",
    "傈僳族",
    "佤族",
    "畲族",
    "高山族",
    "拉祜族",
    "水族",
    "东乡族",
    "纳西族",
    "景颇族",
    "柯尔克孜族",
    "土族",
    "达斡尔族",
    "仫佬族",
    "羌族",
    "布朗族",
    "撒拉族",
    "毛南族",
    "仡佬族",
    "锡伯族",
    "阿昌族",
    "普米族",
    "塔吉克族",
    "怒族",
    "乌孜别克族",
    "俄罗斯族",
    "鄂温克族",
    "德昂族",
    "保安族",
    "裕固族",
    "京族",
    "塔塔尔族",
    "独龙族",
    "鄂伦春族",
    "赫哲族",
    "门巴族",
    "珞巴族",
    "基诺族",
)
ETHNICITY: Mapping[str, str] = MappingProxyType(
    {
        **{f"{i:02d}": n for i, n in enumerate(_ETHNIC_NAMES, start=1)},
        "97": "其他",
        "98": "外国血统中国籍人士",
    }
)

_SIMPLE_SYSTEMS: tuple[tuple[str, str, str, dict[str, str], str], ...] = (
    ("sex", "性别", "GB/T 2261.1-2003 人的性别代码", dict(SEX), ""),
    ("marital_status", "婚姻状况", "GB/T 2261.2-2003 婚姻状况代码", dict(MARITAL_STATUS), ""),
    ("ethnicity", "民族", "GB/T 3304-1991 中国各民族名称的罗马字母拼写法和代码", dict(ETHNICITY), ""),
    (
        "id_type",
        "身份证件类别",
        "WS 364 CV02.01.101 身份证件类别代码",
        {
            "01": "居民身份证",
            "02": "居民户口簿",
            "03": "护照",
            "04": "军官证",
            "05": "驾驶证",
            "06": "港澳居民来往内地通行证",
            "07": "台湾居民来往内地通行证",
            "99": "其他法定有效证件",
        },
        "身份证件类别为 01 时，证件号码按 GB 11643 校验。",
    ),
    (
        "change_flag",
        "修改标志",
        "本平台数据采集规范",
        {"1": "新增", "2": "修改", "3": "撤销"},
        "同一机构 + 同一数据表 + 同一业务主键为同一条记录；数据更新时间最新者生效；3 为撤销（墓碑）。",
    ),
    (
        "visit_type",
        "就诊类型",
        "本平台数据采集规范（门急诊人次统计口径）",
        {"1": "门诊", "2": "急诊"},
        "门急诊人次 = 门诊 + 急诊就诊记录数。",
    ),
    (
        "payment_type",
        "医疗付费方式（医保类别）",
        "住院病案首页 医疗付费方式（卫统）",
        {
            "1": "城镇职工基本医疗保险",
            "2": "城乡居民基本医疗保险",
            "3": "新型农村合作医疗",
            "4": "贫困救助",
            "5": "商业医疗保险",
            "6": "全公费",
            "7": "全自费",
            "8": "其他社会保险",
            "9": "其他",
        },
        "代码 2 原为“城镇居民基本医疗保险”，城乡居民医保整合后沿用此代码；3 为历史数据保留。",
    ),
    (
        "discharge_disposition",
        "离院方式",
        "住院病案首页 离院方式（卫统）",
        {
            "1": "医嘱离院",
            "2": "医嘱转院",
            "3": "医嘱转社区卫生服务机构/乡镇卫生院",
            "4": "非医嘱离院",
            "5": "死亡",
            "9": "其他",
        },
        "",
    ),
    (
        "admission_route",
        "入院途径",
        "住院病案首页 入院途径（卫统）",
        {"1": "急诊", "2": "门诊", "3": "其他医疗机构转入", "9": "其他"},
        "",
    ),
    (
        "abo_blood_type",
        "ABO 血型",
        "WS 364 CV04.50.005 ABO 血型代码",
        {"1": "A型", "2": "B型", "3": "O型", "4": "AB型", "5": "不详", "6": "未查"},
        "",
    ),
    (
        "diagnosis_type",
        "诊断类别",
        "本平台数据采集规范（参照 WS 445 诊断类别）",
        {
            "1": "门（急）诊诊断",
            "2": "入院诊断",
            "3": "出院诊断",
            "4": "术前诊断",
            "5": "术后诊断",
            "9": "其他诊断",
        },
        "",
    ),
    ("yes_no", "是否标志", "本平台数据采集规范", {"1": "是", "0": "否"}, ""),
    (
        "prescription_category",
        "处方类别",
        "处方管理办法；WS/T 500.4 西药处方、WS/T 500.5 中药处方",
        {"1": "西药处方", "2": "中成药处方", "3": "中药饮片处方"},
        "",
    ),
    (
        "drug_route",
        "用药途径",
        "WS 364 CV06.00.102 用药途径代码",
        {
            "1": "口服",
            "2": "直肠用药",
            "3": "舌下用药",
            "4": "注射给药",
            "401": "皮下注射",
            "402": "皮内注射",
            "403": "肌内注射",
            "404": "静脉注射或静脉滴注",
            "5": "吸入用药",
            "6": "局部用药",
            "601": "椎管内用药",
            "602": "关节腔内用药",
            "603": "胸膜腔用药",
            "604": "腹腔用药",
            "605": "阴道用药",
            "606": "气管内用药",
            "607": "滴眼",
            "608": "滴鼻",
            "609": "喷喉",
            "610": "含化",
            "611": "敷伤口",
            "612": "擦皮肤",
            "699": "其他局部用药途径",
            "9": "其他用药途径",
        },
        "",
    ),
    (
        "settlement_type",
        "结算类别",
        "本平台数据采集规范",
        {"1": "门（急）诊结算", "2": "住院结算"},
        "",
    ),
    (
        "specimen_type",
        "标本类型",
        "本平台数据采集规范",
        {
            "1": "全血",
            "2": "血清",
            "3": "血浆",
            "4": "尿液",
            "5": "粪便",
            "6": "痰液",
            "7": "脑脊液",
            "8": "分泌物",
            "9": "其他",
        },
        "",
    ),
    (
        "abnormal_flag",
        "检验结果异常标志",
        "HL7 v2 表 0078（子集）",
        {
            "N": "正常",
            "L": "偏低",
            "H": "偏高",
            "LL": "危急低值",
            "HH": "危急高值",
            "A": "异常",
            "AA": "危急异常",
        },
        "定性结果用 N/A/AA，定量结果用 N/L/H/LL/HH。",
    ),
    (
        "modality",
        "检查类型（设备类型）",
        "DICOM 设备类型（Modality）；DR 为国内习惯用法",
        {
            "CT": "计算机断层扫描",
            "MR": "磁共振成像",
            "DR": "数字X线摄影",
            "CR": "计算机X线摄影",
            "US": "超声",
            "MG": "乳腺X线摄影",
            "NM": "核医学",
            "PT": "正电子发射断层扫描",
            "XA": "血管造影（DSA）",
            "RF": "X线透视",
            "ES": "内镜",
            "ECG": "心电图",
            "OT": "其他",
        },
        "DR 对应 DICOM 的 DX（Digital Radiography）。",
    ),
    (
        "order_type",
        "医嘱类型",
        "本平台数据采集规范",
        {"1": "长期医嘱", "2": "临时医嘱"},
        "",
    ),
    (
        "order_category",
        "医嘱类别",
        "本平台数据采集规范",
        {
            "1": "药品",
            "2": "检验",
            "3": "检查",
            "4": "手术",
            "5": "治疗",
            "6": "护理",
            "7": "膳食",
            "9": "其他",
        },
        "",
    ),
    (
        "surgery_level",
        "手术级别",
        "医疗技术临床应用管理办法 手术分级",
        {"1": "一级手术", "2": "二级手术", "3": "三级手术", "4": "四级手术"},
        "",
    ),
    (
        "residence_type",
        "常住类型",
        "国家基本公共卫生服务规范 居民健康档案",
        {"1": "户籍", "2": "非户籍"},
        "",
    ),
    (
        "followup_mode",
        "随访方式",
        "国家基本公共卫生服务规范（第三版） 随访服务记录表",
        {"1": "门诊", "2": "家庭", "3": "电话"},
        "",
    ),
    (
        "followup_classification",
        "此次随访分类",
        "国家基本公共卫生服务规范（第三版） 随访服务记录表",
        {"1": "控制满意", "2": "控制不满意", "3": "不良反应", "4": "并发症"},
        "",
    ),
    (
        "medication_compliance",
        "服药依从性",
        "国家基本公共卫生服务规范（第三版） 随访服务记录表",
        {"1": "规律", "2": "间断", "3": "不服药"},
        "",
    ),
)

EXTERNAL_SYSTEMS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {"department": ("科室", "医疗机构诊疗科目名录（机构注册库 rhip.registry.data.departments() 提供）")}
)


@cache
def code_systems() -> dict[str, CodeSystem]:
    """Every code system the catalogue binds, by id (department is external: the registry has its codes)."""
    systems: dict[str, CodeSystem] = {}
    for sid, name, standard, codes, description in _SIMPLE_SYSTEMS:
        systems[sid] = CodeSystem(sid, name, standard, MappingProxyType(dict(codes)), description)
    systems["area"] = CodeSystem(
        "area",
        "行政区划",
        "GB/T 2260 中华人民共和国行政区划代码（子集：全国省级、江苏与南京都市圈城市、南京各区县含历史代码）",
        MappingProxyType({a.code: a.name for a in areas().values()}),
        "未逐一列出下级代码的省、市，其下级代码均视为有效。",
    )
    systems["icd10"] = CodeSystem(
        "icd10",
        "疾病分类代码（ICD-10）",
        "ICD-10（WHO 2019 版）/ GB/T 14396 疾病分类与代码（本平台常用子集）",
        MappingProxyType({c.code: c.name for c in icd10().values()}),
        "接受表内代码、表内已细分类目下的任意一位亚目（如 J06.8），以及国家临床版扩展码（如 I10.x00x002）。",
    )
    for sid, (name, standard) in EXTERNAL_SYSTEMS.items():
        systems[sid] = CodeSystem(
            sid, name, standard, MappingProxyType({}), "代码由机构注册库维护", external=True
        )
    return systems


def get_code_system(system_id: str) -> CodeSystem:
    """One code system by id, or NotFound listing the valid ids."""
    systems = code_systems()
    try:
        return systems[system_id]
    except KeyError:
        raise NotFound(
            f"代码系统“{system_id}”不存在；可用：{'、'.join(sorted(systems))}", code="codesystem-not-found"
        ) from None


def _external_codes(system_id: str) -> dict[str, str]:
    """Codes of an external system, read from the institution registry at call time."""
    if system_id != "department":
        return {}
    try:  # the institution registry's loader, imported lazily so this module stays free of it
        registry_data = importlib.import_module("rhip.registry.data")
    except ImportError:
        return {}
    fetch: Callable[[], Any] | None = getattr(registry_data, "departments", None)
    if fetch is None:
        return {}
    items = fetch()
    if isinstance(items, Mapping):
        values = list(items.values())
        if all(isinstance(v, str) for v in values):
            return {str(k): str(v) for k, v in items.items()}
        items = values
    out: dict[str, str] = {}
    for item in items:
        if isinstance(item, str):
            out[item] = item
        elif isinstance(item, Mapping):
            out[str(item["code"])] = str(item.get("name", item["code"]))
        else:
            out[str(item.code)] = str(getattr(item, "name", item.code))
    return out


def codes_of(system_id: str) -> dict[str, str]:
    """code → display for a system, resolving external systems through the registry."""
    system = get_code_system(system_id)
    if system.external:
        return _external_codes(system_id)
    return dict(system.codes)


def in_code_system(system_id: str, code: str) -> bool:
    """Whether `code` is valid in the system (ICD-10 and area: see is_icd10 and is_known_area)."""
    system = get_code_system(system_id)
    if system_id == "icd10":
        return is_icd10(code)
    if system_id == "area":
        return is_known_area(code)
    if system.external:
        return code in _external_codes(system_id)
    return code in system.codes


# ---------------------------------------------------------------------------------------------
# ICD-10
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
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
MAX_AGE_YEARS = 120


def check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits of an 18-digit ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise Invalid("身份证号码前 17 位必须是 17 位数字", code="id-format")
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
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


def _years_before(day: date, years: int) -> date:
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
        elif born < _years_before(now, MAX_AGE_YEARS):
            result.error("id-birth-too-old", f"出生日期 {born.isoformat()} 早于 {MAX_AGE_YEARS} 年前")
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
