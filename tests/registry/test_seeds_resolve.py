"""Every institution named in any table of the five bulletins resolves to exactly one registry entry.

The names are read from the seed files themselves (not a copied list): the statistics part of each
issue is tokenised on white space, prose lines are skipped, and a cell counts as a name when it is
Chinese text ending in 院/所/中心/医疗区/区 (optionally with a bracketed suffix such as "（湖山路）").
The layouts differ (space-separated rows, tab-separated rows, one cell per line in 2020-07), but
in all of them a name is one white-space-delimited cell.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from rhip.registry import data, directories, loading
from tests.conftest import seed_files

_PROSE = re.compile(r"[，。、；：:！？“”《》]")
_CELL = re.compile(r"^[\u4e00-\u9fff]{2,}(?:[（(][\u4e00-\u9fff]+[）)])?$")
_SUFFIXES = ("院", "所", "中心", "医疗区", "区")
# column and group headers that look like names
_HEADERS = {"行政区", "社区医院", "市属医院", "省属医院", "区属医院", "部队医院", "其他医院"}
# the publisher's address block at the end of an issue
_FOOTER = {"南京市卫生信息中心"}

DISTRICTS = ["玄武区", "秦淮区", "建邺区", "鼓楼区", "浦口区", "栖霞区", "雨花台区", "江宁区", "六合区",
             "溧水区", "高淳区", "江北新区"]  # fmt: skip


def table_names(text: str) -> list[str]:
    """Institution and district names in the statistics tables of one issue, in order of appearance."""
    start = text.find("统计数据")
    body = text[start:] if start >= 0 else text
    brief = re.search(r"\n\s*简\s*讯", body)
    if brief:
        body = body[: brief.start()]
    names: list[str] = []
    for line in body.splitlines():
        if _PROSE.search(line):
            continue
        for cell in line.split():
            if not _CELL.match(cell) or cell in _HEADERS or cell in _FOOTER:
                continue
            core = re.sub(r"[（(].*$", "", cell)
            if core.endswith(_SUFFIXES):
                names.append(cell)
    return names


def all_seed_names() -> dict[str, list[str]]:
    """Seed file name → its distinct table names."""
    return {p.name: list(dict.fromkeys(table_names(p.read_text(encoding="utf-8")))) for p in seed_files()}


def test_extraction_reads_every_table_layout() -> None:
    names = all_seed_names()
    assert len(names) == 5
    for file, found in names.items():
        assert len(found) >= 50, f"{file}: only {len(found)} names extracted"
        missing = [d for d in DISTRICTS if d not in found]
        assert not missing, f"{file}: district rows not found: {missing}"
    # one tell-tale name per layout, incl. the bracketed and the one-cell-per-line ones
    assert "第二军医大学长征医院南京分院" in names["003_572dad04b507adb4.txt"]  # space-separated, 2018
    assert "南京市江宁医院（湖山路）" in names["002_fd129e63cda9ba38.txt"]  # one cell per line, 2020
    assert "东部战区总医院秦淮医疗区" in names["000_6cc7f8f8c446d20a.txt"]  # 2022
    assert "南京医科大学第四附属医院(京新)" in names["001_5ba010ff8445d6f0.txt"]  # tab-separated, 2025
    assert "南京鼓楼医院（含分院）" in names["004_d3501396ef2716ba.txt"]  # 2025
    total = {n for found in names.values() for n in found}
    assert len(total) >= 120


def _keys_of(item: dict[str, object]) -> set[str]:
    aliases = item["aliases"]
    assert isinstance(aliases, list)
    return {loading.normalize_name(str(item["name"]))} | {loading.normalize_name(str(a)) for a in aliases}


def test_every_seed_name_resolves_to_one_institution(client: TestClient) -> None:
    failures: list[str] = []
    checked = 0
    for file, names in all_seed_names().items():
        for name in names:
            expected = data.resolve_name(name)
            if expected is None:
                failures.append(f"{file}: {name} → no institution")
                continue
            r = client.get("/api/v1/registry/institutions", params={"q": name, "limit": 5})
            assert r.status_code == 200, r.text
            items = r.json()["items"]
            if not items or items[0]["code"] != expected.code:
                got = items[0]["code"] if items else None
                failures.append(f"{file}: {name} → first item {got}, expected {expected.code}")
                continue
            # the first hit is an exact name/alias match (with or without the 南京市 prefix), not a substring
            if not set(loading.candidate_keys(name)) & _keys_of(items[0]):
                failures.append(f"{file}: {name} → {expected.code} only by substring")
            checked += 1
    assert not failures, "\n".join(failures)
    assert checked >= 300


# The spellings that changed over the years, and the ones that differ only in brackets or a prefix.
TRICKY: list[tuple[str, str]] = [
    ("东部战区总医院", "H040"),
    ("南京军区南京总医院", "H040"),
    ("解放军南京总医院", "H040"),
    ("南京军区南京总医院汤山分院", "H042"),
    ("东部战区总医院汤山分院", "H042"),
    ("东部战区总医院秦淮医疗区", "H041"),
    ("八一医院", "H041"),
    ("解放军第八一医院", "H041"),
    ("中国人民解放军第八一医院", "H041"),
    ("东部战区空军医院", "H043"),
    ("解放军第四五四医院", "H043"),
    ("中国人民解放军第四五四医院", "H043"),
    ("南京江北医院", "H062"),
    ("南京江北人民医院", "H062"),
    ("南京市江北人民医院", "H062"),
    ("江苏省省级机关医院", "H012"),
    ("江苏省级机关医院", "H012"),
    ("南京医科大学附属眼科医院", "H011"),
    ("南医大眼科医院", "H011"),
    ("中国医学科学院皮肤病研究所", "H009"),
    ("中科院皮研所", "H009"),
    ("中国医学科学院皮肤病医院", "H009"),
    ("南京市六合区人民医院", "H057"),
    ("六合区人民医院", "H057"),
    ("南京市六合人民医院", "H057"),
    ("南京明基医院", "H080"),
    ("明基医院", "H080"),
    ("南京同仁医院", "H081"),
    ("同仁医院", "H081"),
    ("上海梅山医院", "H085"),
    ("南京梅山医院", "H085"),
    ("南京医科大学第二附属医院", "H004"),
    ("南京医科大学附属第二医院", "H004"),
    ("南医大二附院", "H004"),
    ("南京鼓楼医院（含分院）", "H020"),
    ("南京鼓楼医院(含分院)", "H020"),
    ("南京鼓楼医院 （含分院）", "H020"),
    ("南京市妇幼保健院（含分院）", "H025"),
    ("南京鼓楼医院江北国际医院", "H036"),
    ("南京市儿童医院河西分院", "H035"),
    ("南京市江宁医院（湖山路）", "H051"),
    ("南京市江宁医院(湖山路)", "H051"),
    ("南京市江宁医院", "H050"),
    ("南京医科大学第四附属医院(京新)", "H061"),
    ("南京医科大学第四附属医院（京新）", "H061"),
    ("南京市浦口医院", "H061"),
    ("南京市高淳区人民医院", "H053"),
    ("南京市高淳人民医院", "H053"),
    ("南京江宁中医院", "H052"),
    ("南京市江宁中医院", "H052"),
    ("南京市浦口中心医院", "H059"),
    ("南京市浦口区中心医院", "H059"),
    ("南京市浦口中医院", "H060"),
    ("南京市浦口区中医院", "H060"),
    ("六合区中医院", "H058"),
    ("栖霞区妇幼保健院", "F320113"),
    ("雨花台区妇幼保健所", "F320114"),
    ("西善桥社区卫生服务中心", "C32011404"),
    ("雨花台区西善桥社区卫生服务中心", "C32011404"),
    ("新街口社区卫生服务中心", "C32010201"),
    ("玄武区", "D320102"),
    ("江北新区", "D320192"),
    ("溧水区卫健委", "D320117"),
    ("雨花台区卫计局", "D320114"),
    ("芜湖市第五人民医院", "M34020001"),
    ("滁州市第一人民医院", "M34110001"),
    ("镇江市第四人民医院", "M32110002"),
    ("新疆伊宁市人民医院", "R02"),
    ("西藏墨竹工卡县人民医院", "R03"),
    ("南京市急救中心", "O02"),
    ("Ｈ０２０", "H020"),
]


@pytest.mark.parametrize(("name", "code"), TRICKY)
def test_tricky_names_resolve(name: str, code: str) -> None:
    found = data.resolve_name(name)
    assert found is not None and found.code == code, f"{name} → {found}"


def test_tricky_names_rank_first_in_the_api(client: TestClient) -> None:
    wrong = []
    for name, code in TRICKY:
        items = client.get("/api/v1/registry/institutions", params={"q": name}).json()["items"]
        if not items or items[0]["code"] != code:
            wrong.append((name, code, items[0]["code"] if items else None))
    assert not wrong


# Every booking-channel name in the 分途径/线上预约 tables (2018-03, 2020-05, 2022-08, 2025-02, 2025-03).
CHANNEL_NAMES: list[tuple[str, str]] = [
    ("健康南京客户端", "jkn_app"),
    ("健康南京", "jkn_app"),
    ("健康南京APP", "jkn_app"),
    ("南京卫生 12320 微信平台", "wechat_12320"),
    ("南京卫生12320微信平台", "wechat_12320"),
    ("南京卫生 12320 微信", "wechat_12320"),
    ("南京卫生12320微信", "wechat_12320"),
    ("南京卫生 12320 网", "web_12320"),
    ("南京卫生12320网", "web_12320"),
    ("12320 快速预约", "quick_12320"),
    ("12320快速预约", "quick_12320"),
    ("12320 社区预约", "community_12320"),
    ("我的南京客户端", "wdnj_app"),
    ("江苏省预约挂号网", "js_yygh"),
    ("就医 160", "jiuyi160"),
    ("就医160", "jiuyi160"),
    ("趣医网", "quyi"),
    ("平安保险", "pingan"),
    ("健康之路", "jkzl"),
    ("爱康国宾", "ikang"),
    ("电信手机", "telecom"),
    ("微脉科技", "weimai"),
    ("电话预约", "phone_12320"),
    ("诊间预约", "in_clinic"),
]


@pytest.mark.parametrize(("name", "code"), CHANNEL_NAMES)
def test_channel_names_resolve(name: str, code: str) -> None:
    found = directories.resolve_channel(name)
    assert found is not None and found.code == code


def test_channel_names_appear_in_the_api(client: TestClient) -> None:
    channels = client.get("/api/v1/registry/channels").json()
    spellings = {loading.normalize_name(n): c["code"] for c in channels for n in [c["name"], *c["aliases"]]}
    for name, code in CHANNEL_NAMES:
        assert spellings.get(loading.normalize_name(name)) == code, name
    groups = {c["code"]: c["group"] for c in channels}
    assert {groups["jkn_app"], groups["wechat_12320"], groups["web_12320"]} == {"online_12320"}
    assert groups["quick_12320"] == "quick" and groups["wdnj_app"] == "third_party"


def test_hotline_categories_cover_the_bulletins(client: TestClient) -> None:
    words = "咨询类 医疗投诉 医疗服务投诉 电话预约 人工服务 心理危机干预 自助语音问答 专家在线答疑"
    words += " 医院满意度调查（呼入） 市12345工单 省12345工单 自接工单"
    cats = client.get("/api/v1/registry/hotline-categories").json()
    spellings = {loading.normalize_name(n) for c in cats for n in [c["name"], *c["aliases"]]}
    for w in words.split():
        assert loading.normalize_name(w) in spellings, w
    for f in seed_files():
        text = re.sub(r"\s+", "", f.read_text(encoding="utf-8"))
        assert "心理危机干预" in text and "12345工单" in text
