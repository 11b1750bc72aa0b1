"""The registry's package data: counts, the code scheme, names and their normalisation (no database)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from rhip.registry import data, directories, loading

CODE_PATTERNS = {
    "hospital": re.compile(r"^(H\d{3}|M\d{8}|R\d{2})$"),
    "mch": re.compile(r"^(H\d{3}|F\d{6})$"),
    "community_health_centre": re.compile(r"^C\d{8}$"),
    "district_platform": re.compile(r"^D\d{6}$"),
    "other": re.compile(r"^O\d{2}$"),
}


def _collected_nanjing() -> list[data.InstitutionRecord]:
    return [
        r
        for r in data.institutions()
        if r.city == data.CITY and r.kind in ("hospital", "mch") and r.data_collection
    ]


def test_twelve_districts_with_gbt2260_codes() -> None:
    ds = data.districts()
    assert [d.name for d in ds] == ["玄武区", "秦淮区", "建邺区", "鼓楼区", "浦口区", "栖霞区", "雨花台区",
                                    "江宁区", "六合区", "溧水区", "高淳区", "江北新区"]  # fmt: skip
    assert {d.name: d.code for d in ds}["玄武区"] == "320102"
    assert all(re.fullmatch(r"3201\d\d", d.code) for d in ds)
    assert [d.name for d in ds if d.synthetic_code] == ["江北新区"]
    platforms = [r for r in data.institutions() if r.kind == "district_platform"]
    assert sorted(p.code for p in platforms) == sorted("D" + d.code for d in ds)


def test_116_community_health_centres_spread_over_every_district() -> None:
    centres = [r for r in data.institutions() if r.kind == "community_health_centre"]
    assert len(centres) == 116
    per_district = Counter(r.district for r in centres)
    assert set(per_district) == {d.name for d in data.districts()}
    assert all(n >= 5 for n in per_district.values())
    assert per_district["江宁区"] == max(per_district.values())
    for c in centres:
        assert c.code.startswith("C" + (c.district_code or ""))
        assert c.name.startswith(c.district or "") and c.name.endswith("社区卫生服务中心")
        assert c.level == "社区" and c.ownership == "区属"


def test_tertiary_counts_match_the_2022_bulletin() -> None:
    collected = _collected_nanjing()
    tertiary = Counter(r.ownership for r in collected if r.tertiary)
    assert sum(tertiary.values()) == 35
    assert tertiary == {"省属": 10, "市属": 9, "区属": 8, "部队": 3, "民营": 5}
    assert sum(1 for r in collected if r.level == "二级") == 22


def test_codes_follow_the_scheme_and_are_unique() -> None:
    records = data.institutions()
    assert len({r.code for r in records}) == len(records)
    for r in records:
        assert CODE_PATTERNS[r.kind].match(r.code), r.code
        assert r.level in data.LEVELS and r.ownership in data.OWNERSHIPS
        assert r.tertiary == (r.level == "三级")
        if r.city == data.CITY and r.kind != "other":
            assert r.district_code is not None, r.code


def test_parents_exist_and_come_first() -> None:
    records = data.institutions()
    position = {r.code: i for i, r in enumerate(records)}
    branches = [r for r in records if r.parent_code]
    assert {b.code for b in branches} >= {"H035", "H036", "H041", "H042", "H051"}
    for b in branches:
        assert position[b.parent_code or ""] < position[b.code]
    assert data.get("H036").parent_code == "H020"  # type: ignore[union-attr]


def test_every_name_and_alias_is_unique_after_normalisation() -> None:
    owner: dict[str, str] = {}
    for r in data.institutions():
        for name in (r.name, *r.aliases):
            key = loading.normalize_name(name)
            assert owner.setdefault(key, r.code) == r.code, f"{name}: {owner[key]} and {r.code}"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("南京鼓楼医院（含分院）", "南京鼓楼医院"),
        ("南京市江宁医院（湖山路）", "南京市江宁医院(湖山路)"),
        ("南京卫生 12320 网", "南京卫生12320网"),
        ("南京卫生\u300012320\u3000网", "南京卫生12320网"),
        ("ＡＢＣ１２３", "abc123"),
    ],
)
def test_normalize_name(raw: str, key: str) -> None:
    assert loading.normalize_name(raw) == key


def test_resolve_name_handles_prefixes_and_unknowns() -> None:
    assert data.resolve_name("六合区人民医院").code == "H057"  # type: ignore[union-attr]
    assert data.resolve_name("南京市鼓楼医院").code == "H020"  # type: ignore[union-attr]
    assert data.resolve_name("鼓楼区").code == "D320106"  # type: ignore[union-attr]
    assert data.resolve_name("h001").code == "H001"  # type: ignore[union-attr]
    assert data.resolve_name("火星第一人民医院") is None
    assert data.resolve_name("") is None


def test_metro_cities_each_have_a_hospital() -> None:
    cities = directories.metro_cities()
    assert len(cities) >= 8
    assert {"芜湖市", "马鞍山市", "镇江市", "扬州市", "淮安市", "滁州市", "宣城市"} <= {
        c.name for c in cities
    }
    per_city = Counter(r.city for r in data.institutions() if r.code.startswith("M"))
    for c in cities:
        assert per_city[c.name] >= 1, c.name
    for r in data.institutions():
        if r.code.startswith("M"):
            city = next(c for c in cities if c.name == r.city)
            assert r.code[1:7] == city.code and r.upload_route == "none"


def test_telemed_centres_and_hubs() -> None:
    centres = data.telemed_centres()
    assert [c.name for c in centres] == [
        "远程医学会诊",
        "远程影像诊断",
        "远程心电诊断监测",
        "远程临检诊断",
        "远程病理诊断",
    ]
    hubs = {c.code: data.get(c.hub_code) for c in centres}
    assert hubs["consult"].name == hubs["imaging"].name == "南京鼓楼医院"  # type: ignore[union-attr]
    assert all(h is not None and h.tertiary for h in hubs.values())


def test_departments_use_official_codes() -> None:
    deps = {d.code: d for d in directories.departments()}
    assert len(deps) >= 40
    assert deps["03"].name == "内科" and deps["04"].name == "外科" and deps["07"].name == "儿科"
    assert deps["03.04"].name == "心血管内科专业" and deps["03.04"].parent_code == "03"
    assert deps["50"].name == "中医科" and deps["20"].name == "急诊医学科"
    for d in deps.values():
        assert re.fullmatch(r"\d\d(\.\d\d)?", d.code)
        if d.parent_code:
            assert d.code.startswith(d.parent_code + ".")


def test_channels_and_hotline_categories() -> None:
    groups = Counter(c.group for c in directories.channels())
    assert set(groups) >= {"online_12320", "quick", "phone", "in_clinic", "third_party", "community"}
    assert groups["third_party"] >= 9
    kinds = Counter(h.kind for h in directories.hotline_categories())
    assert kinds == {"call": 8, "work_order": 3}


def test_data_hash_is_stable() -> None:
    assert data.data_hash() == data.data_hash()
    assert re.fullmatch(r"[0-9a-f]{64}", data.data_hash())
