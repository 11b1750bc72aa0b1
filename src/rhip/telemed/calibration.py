# ruff: noqa: E501
"""The seeds' 远程医疗系统数据统计 figures the synthetic city is calibrated to (2022-08; 2020-05 for that
month), and the rounding rule that turns a figure into a count at scale s."""

from __future__ import annotations

import math
from typing import Any

NANJING_DISTRICTS = (
    "玄武区",
    "秦淮区",
    "建邺区",
    "鼓楼区",
    "浦口区",
    "栖霞区",
    "雨花台区",
    "江宁区",
    "六合区",
    "溧水区",
    "高淳区",
    "江北新区",
)

# connections: totals by category, districts NOT covered (None: any), metro cities, tertiary only
FIGURES: dict[str, dict[str, Any]] = {
    "2022-08": {
        "consult": {"total": 50, "cats": {"二级以上": 24, "社区": 13, "都市圈城市": 1, "对外帮扶": 8, "其他": 4},
                    "not_covered": ("鼓楼区", "玄武区", "秦淮区")},
        "ecg": {"total": 138, "cats": {"二级以上": 13, "都市圈城市": 7}, "tertiary_only": True,
                "not_covered": ("秦淮区",), "metro_cities": ("马鞍山市", "镇江市", "扬州市"),
                "cases": 71878, "consults": 57,
                "top": [("江苏省人民医院", 28423), ("南京市儿童医院", 12767), ("南京市江宁医院", 10029)]},
        "lab": {"total": 144, "cats": {"二级以上": 19}, "not_covered": ("鼓楼区", "秦淮区", "雨花台区"),
                "reports": 1129122, "specimens": 14389,
                "top": [("南京市第二医院", 261045), ("南京市第一医院", 250102), ("南京市妇幼保健院", 209268)]},
        "imaging": {"total": 151, "cats": {"二级以上": 8}, "not_covered": ("秦淮区", "栖霞区"),
                    "reports": 227954, "images": 57078770, "consults": 589,
                    "top": [("南京市儿童医院", 87046), ("南京鼓楼医院", 61922), ("东南大学附属中大医院", 28462)]},
        "pathology": {"total": 25, "cats": {"二级以上": 25}, "experts": 52, "doctors": 26,
                      "cases": 53, "reports": 26, "meetings": 9, "lectures": 7},
    },
    "2020-05": {
        "consult": {"total": 47, "cats": {"二级以上": 22, "社区": 13, "都市圈城市": 1, "对外帮扶": 7, "其他": 4},
                    "not_covered": None, "to_date": 110},
        "ecg": {"total": 149, "cats": {"二级以上": 12, "都市圈城市": 7}, "tertiary_only": True,
                "not_covered": ("秦淮区", "江北新区"), "metro_cities": ("马鞍山市", "镇江市", "扬州市"),
                "cases": 108963, "consults": 149,
                "top": [("南京鼓楼医院", 20904), ("江苏省人民医院", 19792), ("江宁区", 15667)]},
        "lab": {"total": 120, "cats": {"二级以上": 19}, "not_covered": ("鼓楼区", "秦淮区", "雨花台区", "栖霞区", "江北新区"),
                "reports": 848388, "specimens": 10099,
                "top": [("南京市第一医院", 211815), ("南京市妇幼保健院", 133299), ("南京医科大学第二附属医院", 116505)]},
        "imaging": {"total": 179, "cats": {"二级以上": 9}, "not_covered": ("秦淮区", "江北新区"),
                    "reports": 36439, "images": 5178141, "consults": 0,
                    "top": [("南京鼓楼医院", 7519), ("六合区中医院", 6590), ("建邺区", 5583)]},
    },
}  # fmt: skip


def figures_for(month: str) -> tuple[str, dict[str, Any]]:
    """The calibration month for a month (2020-05 for itself, else 2022-08) and its figures."""
    key = "2020-05" if month == "2020-05" else "2022-08"
    return key, FIGURES[key]


def scaled(value: int, scale: float) -> int:
    """s × a seed figure, rounded half up: ⌊s·v + 0.5⌋ (so 0.5 → 1, 2.5 → 3)."""
    return math.floor(value * scale + 0.5)
