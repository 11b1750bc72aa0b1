"""Comparison levels on hand-made pairs: ID numbers, pinyin, loose pinyin, birth dates."""

from __future__ import annotations

from datetime import date

import pytest

from rhip.identity import features as feat
from rhip.identity.scoring import COMPARISONS, load_model, osa_distance
from rhip.registry.idnumber import convert_15_to_18, make_id
from tests.identity.conftest import fields

ID = make_id("320102", date(1980, 5, 17), 123)


def f(**kw: object) -> feat.Features:
    return feat.derive(**fields(**kw))  # type: ignore[arg-type]


def level(comp: str, a: feat.Features, b: feat.Features) -> str:
    c = next(c for c in COMPARISONS if c.name == comp)
    return c.levels[c.level(a, b)].label


def test_pinyin_uses_surname_readings() -> None:
    assert feat.pinyin("单田芳") == "shan tian fang"
    assert feat.pinyin("曾志伟") == "zeng zhi wei"
    assert feat.pinyin("解缙") == "xie jin"
    assert feat.pinyin("仇英") == "qiu ying"
    assert feat.pinyin("朴槿惠") == "piao jin hui"
    assert feat.pinyin("区志强") == "ou zhi qiang"
    assert feat.pinyin("查良镛") == "zha liang yong"
    assert feat.pinyin("尉迟恭") == "yu chi gong"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("李静", "李静", "同名"),
        ("李静", "李晶", "同音（拼音相同）"),
        ("李静", "李婧", "同音（拼音相同）"),
        ("刘南", "刘兰", "近音（n/l、前后鼻音、平翘舌）"),
        ("张晶", "张金", "近音（n/l、前后鼻音、平翘舌）"),
        ("周志", "邹自", "近音（n/l、前后鼻音、平翘舌）"),
        ("陈诗", "岑思", "近音（n/l、前后鼻音、平翘舌）"),
        ("李静", "王伟", "其他"),
        ("李 静", "李·静", "同名"),
    ],
)
def test_name_levels(a: str, b: str, expected: str) -> None:
    assert level("name", f(name=a), f(name=b)) == expected


def test_name_missing_is_null_level() -> None:
    assert level("name", f(name=""), f(name="李静")) == "缺失"


def test_id_levels_typo_transposition_and_15_digits() -> None:
    typo = ID[:15] + str((int(ID[15]) + 1) % 10) + ID[16:]
    swapped = ID[:14] + ID[15] + ID[14] + ID[16:]
    assert swapped != ID
    two = ID[:13] + str((int(ID[13]) + 3) % 10) + typo[14:]
    old15 = ID[:6] + ID[8:17]
    assert convert_15_to_18(old15) == ID
    assert level("id_number", f(id_number=ID), f(id_number=old15)) == "相同"
    assert level("id_number", f(id_number=ID), f(id_number=typo)) == "一位之差或相邻颠倒"
    assert level("id_number", f(id_number=ID), f(id_number=swapped)) == "一位之差或相邻颠倒"
    assert level("id_number", f(id_number=ID), f(id_number=two)) == "两位之差"
    assert level("id_number", f(id_number=ID), f(id_number=make_id("320102", date(1991, 1, 2), 5))) == "其他"
    assert level("id_number", f(id_number=ID), f(id_number="not a number")) == "缺失"


def test_id_parse_reports_validity() -> None:
    assert feat.parse_id(ID).valid
    assert feat.parse_id(ID.lower()).number == ID
    bad = ID[:17] + ("0" if ID[17] != "0" else "1")
    parsed = feat.parse_id(bad)
    assert parsed.number == bad and not parsed.valid
    assert feat.parse_id("32010219800230123X").valid is False  # 30 February
    assert feat.parse_id("12345").number is None


def test_birth_date_levels() -> None:
    a = f(birth_date=date(1980, 5, 7))
    assert level("birth_date", a, f(birth_date=date(1980, 7, 5))) == "日月颠倒"
    assert level("birth_date", a, f(birth_date=date(1980, 5, 8))) == "一位之差"
    assert level("birth_date", a, f(birth_date=date(1981, 5, 7))) == "一位之差"
    assert level("birth_date", a, f(birth_date=date(1990, 1, 1))) == "其他"


def test_newborn_under_mothers_id_keeps_it_as_guardian() -> None:
    mother = make_id("320102", date(1992, 3, 4), 124)
    baby = f(id_number=mother, name="王小宝", birth_date=date(2025, 2, 1), sex="1")
    assert baby.id_number is None and baby.guardian_id == mother
    assert level("id_number", baby, f(id_number=mother)) == "缺失"


def test_id_fills_missing_birth_date_and_sex() -> None:
    x = f(id_number=ID)
    assert x.birth_date == date(1980, 5, 17) and x.sex == "1"


def test_osa_distance() -> None:
    assert osa_distance("abcd", "abdc") == 1
    assert osa_distance("abcd", "abcd") == 0
    assert osa_distance("abcd", "xbcy") == 2
    assert osa_distance("abcdef", "badcfe", 3) == 3


def test_model_scores_typical_pairs_in_order() -> None:
    model = load_model()
    a = f(id_number=ID, name="李静", birth_date=date(1980, 5, 17), sex="1", phone="13912345678")
    same = model.score(a, f(id_number=ID, name="李晶", birth_date=date(1980, 5, 17), sex="1"))
    namesake = model.score(
        a,
        f(
            name="李静",
            birth_date=date(1980, 5, 17),
            sex="1",
            id_number=make_id("320104", date(1980, 5, 17), 3),
        ),
    )
    assert same.probability > 0.999
    assert namesake.probability < 0.5
