"""The synthetic city's MCH calibration: the 2018-03 district table, the colour shares and national targets,
the scaled month plan, each district's recording units, and synthetic people."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from rhip.mch.stats import DISTRICT_ORDER, KEYS
from rhip.registry import data as reg_data, idnumber

PREFIX = "SYN"
# 2018 年 3 月南京市妇幼保健信息系统各区使用情况表 (妇女登记, 初诊, 复诊, 访视一次, 访视两次, 分娩, 儿童登记)
SEED_2018_03: dict[str, tuple[int, ...]] = {
    "玄武区": (326, 325, 302, 32, 11, 82, 331),
    "秦淮区": (492, 460, 679, 121, 45, 147, 627),
    "建邺区": (0, 0, 0, 0, 0, 0, 0),
    "鼓楼区": (622, 588, 772, 278, 131, 0, 636),
    "雨花台区": (495, 477, 726, 252, 82, 0, 532),
    "栖霞区": (669, 659, 605, 312, 92, 69, 797),
    "江宁区": (0, 0, 0, 0, 0, 0, 0),
    "浦口区": (1026, 990, 1053, 321, 105, 0, 1133),
    "六合区": (0, 0, 0, 0, 0, 0, 0),
    "溧水区": (475, 434, 507, 13, 26, 328, 398),
    "高淳区": (0, 0, 0, 0, 0, 0, 0),
    "江北新区": (196, 186, 304, 118, 52, 121, 287),
}
SEED_TOTAL_2018_03 = (4301, 4119, 4948, 1447, 544, 747, 4741)
SEED_CUMULATIVE_2018_03 = 563103  # （截止 3 月底，总登记建卡数为 563103）
# colour shares at registration (Jiangsu reports: most women green or yellow, ~1 in 6 orange or above)
COLOUR_SHARES = (("green", 0.42), ("yellow", 0.40), ("orange", 0.15), ("red", 0.03))
PURPLE_SHARE = 0.02
OWNERS = ("王医生", "李医生", "张医生", "刘医生", "陈医生", "杨医生")
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "芳娜秀英敏静丽艳娟霞桂兰玉梅燕红华欣怡梓萱子涵雨婷思琪"
# national values the year's cohorts aim at (China, 2022–2023)
TARGETS = {
    "early": 0.955,  # women registered and first seen before 13 weeks
    "no_visit": 0.02,  # women with no antenatal visit (registered at delivery)
    "five_visits_if_early": 0.995,
    "postpartum": 0.975,
    "hospital": 0.999,
    "twins": 0.012,
    "newborn_visit": 0.968,
    "under3_compliant": 0.935,
    "under7_examined": 0.948,
    "maternal_mortality": 15.7e-5,
    "infant_mortality": 4.9e-3,
    "under5_mortality": 6.8e-3,
}
CITY_BIRTHS = 80_000
CITY_UNDER7 = 500_000


def scaled(n: int, scale: float) -> int:
    """s × n rounded half up (the calibration's rounding rule: 0.5 goes up), on exact decimals."""
    return int((Decimal(str(scale)) * n).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def month_plan(scale: float) -> dict[str, dict[str, int]]:
    """district code -> column key -> the month's count: round-half-up(s × the 2018-03 cell)."""
    codes = {d.name: d.code for d in reg_data.districts()}
    return {
        codes[name]: dict(zip(KEYS, (scaled(n, scale) for n in SEED_2018_03[name]), strict=True))
        for name in DISTRICT_ORDER
    }


@dataclass(frozen=True)
class Units:
    """Where a district's MCH work is recorded: its MCH institute (or a community centre) and hospitals."""

    mch: str
    hospitals: tuple[str, ...]


@cache
def district_units() -> dict[str, Units]:
    """Recording units per district code."""
    out: dict[str, Units] = {}
    for d in reg_data.districts():
        insts = [i for i in reg_data.institutions() if i.district_code == d.code]
        mch = [i.code for i in insts if i.code.startswith("F")] or [
            i.code for i in insts if i.kind == "community_health_centre"
        ]
        hospitals = tuple(i.code for i in insts if i.kind in ("hospital", "mch") and i.upload_route != "none")
        out[d.code] = Units(mch=mch[0], hospitals=hospitals or ("H025",))
    return out


class People:
    """Synthetic women and children: names and valid ID numbers, never twice the same."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def name(self) -> str:
        return self.rng.choice(SURNAMES) + "".join(self.rng.choices(GIVEN, k=self.rng.choice((1, 2))))

    def woman(self, around: date) -> tuple[str, date]:
        while True:
            born = around - timedelta(days=self.rng.randint(20 * 365, 40 * 365))
            number = idnumber.make_id("320102", born, self.rng.randrange(2, 999, 2))
            if number not in self.used:
                self.used.add(number)
                return number, born


def pick_colour(rng: random.Random) -> tuple[str, bool]:
    x, acc = rng.random(), 0.0
    for colour, share in COLOUR_SHARES:
        acc += share
        if x < acc:
            return colour, rng.random() < PURPLE_SHARE
    return "green", rng.random() < PURPLE_SHARE


def registration_week(rng: random.Random) -> int:
    return rng.randint(6, 12) if rng.random() < 0.93 else rng.randint(13, 27)
