"""Code systems the dataset catalogue binds: GB/T 2261 sex and marital status, GB 3304 ethnicity,
GB/T 2260 areas and ICD-10 (their data in `idnumber` and `icd10`), and the value sets of the upload tables.

Pure functions over data files in registry/data/; nothing here touches the database.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rhip.errors import NotFound
from rhip.registry.icd10 import icd10, is_icd10
from rhip.registry.idnumber import SEX, areas, is_known_area

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
        "allergen_type",
        "过敏源类别",
        "WS 445 电子病历基本数据集 过敏史（本平台值域）",
        {"1": "药物", "2": "食物", "3": "环境（吸入、接触）", "9": "其他"},
        "",
    ),
    (
        "allergy_severity",
        "过敏严重程度",
        "WS 445 电子病历基本数据集 过敏史（本平台值域）",
        {"1": "轻度", "2": "中度", "3": "重度", "4": "危及生命（过敏性休克等）", "9": "不详"},
        "",
    ),
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
    # 妇幼保健（WS 377.4 孕产期保健服务与高危管理、儿童保健子集；rhip.mch.uploads 译为登记库的代码）
    (
        "mch_risk_colour",
        "妊娠风险分级颜色",
        "孕产妇妊娠风险评估与管理工作规范（2017）",
        {"1": "绿色（低风险）", "2": "黄色（一般风险）", "3": "橙色（较高风险）", "4": "红色（高风险）"},
        "紫色（传染性疾病）另以“传染病标志”表示，可与其他颜色并存。",
    ),
    (
        "mch_antenatal_kind",
        "产前检查类别",
        "WS 377.4 孕产期保健服务与高危管理",
        {"1": "初诊", "2": "复诊"},
        "",
    ),
    (
        "delivery_place",
        "分娩地点",
        "WS 377.4 孕产期保健服务与高危管理",
        {"1": "医疗机构", "2": "家中", "3": "途中", "9": "其他"},
        "",
    ),
    (
        "delivery_method",
        "分娩方式",
        "WS 377.4 孕产期保健服务与高危管理",
        {"1": "自然分娩", "2": "阴道助产", "3": "剖宫产"},
        "",
    ),
    (
        "mch_postpartum_kind",
        "产后访视类别",
        "国家基本公共卫生服务规范（第三版） 孕产妇健康管理服务",
        {"1": "产后访视", "2": "产后 42 天健康检查"},
        "",
    ),
    (
        "mch_child_visit_kind",
        "儿童保健服务类别",
        "国家基本公共卫生服务规范（第三版） 0～6 岁儿童健康管理服务",
        {"1": "新生儿访视", "2": "健康检查"},
        "",
    ),
)

EXTERNAL_SYSTEMS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "department": (
            "科室",
            "医疗机构诊疗科目名录（机构注册库 rhip.registry.directories.departments() 提供）",
        )
    }
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
        registry_data = importlib.import_module("rhip.registry.directories")
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
