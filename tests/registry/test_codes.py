"""Code systems: GB 11643 ID numbers, the ICD-10 subset, the area table and the value sets."""

from __future__ import annotations

import csv
import re
from datetime import date

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from rhip.errors import Invalid, NotFound
from rhip.registry import codes, icd10, idnumber

TODAY = date(2025, 3, 1)


def _with_check(first17: str) -> str:
    return first17 + idnumber.check_char(first17)


def _rules(items: list[tuple[str, str]]) -> set[str]:
    return {rule for rule, _message in items}


# --------------------------------------------------------------------------------------------- ID


def test_check_char_known_numbers() -> None:
    # The GB 11643 example numbers: one ends in X, one in a digit.
    assert idnumber.check_char("11010519491231002") == "X"
    assert idnumber.check_char("44052418800101001") == "4"
    assert idnumber.check_char("32010619850615123") == "1"


def test_check_char_needs_17_digits() -> None:
    with pytest.raises(Invalid):
        idnumber.check_char("1234")
    with pytest.raises(Invalid):
        idnumber.check_char("3201061985061512X")


def test_valid_number_parses_birth_sex_area() -> None:
    r = idnumber.validate_id("320106198506151231", today=TODAY)
    assert r.ok and r.errors == [] and r.warnings == []
    assert r.birth_date == date(1985, 6, 15)
    assert r.sex == "1"  # 17th digit 3 is odd
    assert r.area_code == "320106" and r.area_name == "鼓楼区"
    assert r.to_dict()["sex_display"] == "男性"


def test_x_check_char_and_lower_case_x() -> None:
    r = idnumber.validate_id("11010519491231002x", today=TODAY)
    assert r.ok, r.errors
    assert r.normalized == "11010519491231002X"
    assert r.sex == "2"  # 17th digit 2 is even


def test_full_width_and_blanks_are_normalised() -> None:
    r = idnumber.validate_id(" ３２０１０６１９８５０６１５１２３１ ", today=TODAY)
    assert r.ok and r.normalized == "320106198506151231"


def test_convert_15_to_18() -> None:
    assert idnumber.convert_15_to_18("110105491231002") == "11010519491231002X"
    assert idnumber.convert_15_to_18("320106850615123") == "320106198506151231"
    with pytest.raises(Invalid):
        idnumber.convert_15_to_18("32010685061512")
    with pytest.raises(Invalid):
        idnumber.convert_15_to_18("32010685061512X")


def test_15_digit_number_is_accepted_with_a_warning() -> None:
    r = idnumber.validate_id("320106850615123", today=TODAY)
    assert r.ok
    assert r.normalized == "320106198506151231"
    assert _rules(r.warnings) == {"id-15-digit"}


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        ("", "id-empty"),
        ("3201061985", "id-length"),
        ("3201061985061512311", "id-length"),
        ("32010619850615123A", "id-chars"),
        ("X20106198506151231", "id-chars"),
        ("32010685061512A", "id-chars"),
        ("320106198506151232", "id-check-char"),
        (_with_check("32010619850230123"), "id-birth-invalid"),
        (_with_check("32010619851301123"), "id-birth-invalid"),
        (_with_check("32010620250601123"), "id-birth-future"),
        ("440524188001010014", "id-birth-too-old"),
    ],
)
def test_each_error_rule(number: str, rule: str) -> None:
    r = idnumber.validate_id(number, today=TODAY)
    assert not r.ok
    assert rule in _rules(r.errors), r.errors
    assert all(message for _rule, message in r.errors)


def test_birth_exactly_120_years_ago_is_allowed() -> None:
    assert idnumber.validate_id(idnumber.make_id("320106", date(1905, 3, 1), 11), today=TODAY).ok
    r = idnumber.validate_id(idnumber.make_id("320106", date(1905, 2, 28), 11), today=TODAY)
    assert _rules(r.errors) == {"id-birth-too-old"}


def test_recorded_birth_date_and_sex_must_agree() -> None:
    number = "320106198506151231"
    assert idnumber.validate_id(number, birth_date=date(1985, 6, 15), sex="1", today=TODAY).ok
    r = idnumber.validate_id(number, birth_date=date(1985, 6, 16), today=TODAY)
    assert _rules(r.errors) == {"id-birth-mismatch"}
    r = idnumber.validate_id(number, sex="2", today=TODAY)
    assert _rules(r.errors) == {"id-sex-mismatch"}
    assert "女性" in r.errors[0][1]
    # 0 未知 and 9 未说明 are not compared
    assert idnumber.validate_id(number, sex="9", today=TODAY).ok
    assert idnumber.validate_id(number, sex="0", today=TODAY).ok


def test_area_code_created_after_birth_is_only_a_warning() -> None:
    # 320117 溧水区 exists since 2013; a resident born in 1962 may genuinely carry it
    # (python-stdnum's cn.ric.validate rejects such numbers).
    number = idnumber.make_id("320117", date(1962, 3, 8), 45)
    r = idnumber.validate_id(number, birth_date=date(1962, 3, 8), sex="1", today=TODAY)
    assert r.ok and r.errors == []
    assert _rules(r.warnings) == {"id-area-after-birth"}
    assert r.area_name == "溧水区"


def test_historical_area_codes_are_known() -> None:
    for code, name in {
        "320103": "白下区",
        "320107": "下关区",
        "320124": "溧水县",
        "320125": "高淳县",
        "320122": "江浦县",
    }.items():
        r = idnumber.validate_id(idnumber.make_id(code, date(1970, 1, 1), 10), today=TODAY)
        assert r.ok and r.warnings == [] and r.area_name == name


def test_retired_area_code_after_abolition_is_a_warning() -> None:
    r = idnumber.validate_id(idnumber.make_id("320103", date(2015, 5, 5), 20), today=TODAY)
    assert r.ok and _rules(r.warnings) == {"id-area-retired"}


def test_unknown_area_code_is_a_warning() -> None:
    r = idnumber.validate_id(idnumber.make_id("990101", date(1990, 1, 1), 1), today=TODAY)
    assert r.ok and _rules(r.warnings) == {"id-area-unknown"}
    # Nanjing's counties are listed one by one, so an unlisted one is unknown too
    r = idnumber.validate_id(idnumber.make_id("320199", date(1990, 1, 1), 1), today=TODAY)
    assert r.ok and _rules(r.warnings) == {"id-area-unknown"}


def test_metro_city_prefixes_are_known() -> None:
    for prefix in ("3402", "3405", "3411", "3418", "3211", "3210", "3208", "3204"):
        assert idnumber.is_known_area(prefix + "02"), prefix
    assert idnumber.is_known_area("110105")  # Beijing: province listed, cities not enumerated
    assert not idnumber.is_known_area("321499")  # Jiangsu's cities are enumerated; 3214 is not one
    assert not idnumber.is_known_area("32010")


def test_make_id_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        idnumber.make_id("32010", date(1990, 1, 1), 1)
    with pytest.raises(ValueError):
        idnumber.make_id("320106", date(1990, 1, 1), 1000)


AREA_CODES = [
    "320102",
    "320104",
    "320105",
    "320106",
    "320111",
    "320113",
    "320114",
    "320115",
    "340202",
    "110105",
]
births = st.dates(min_value=TODAY.replace(year=TODAY.year - 119), max_value=TODAY)


@settings(max_examples=300, deadline=None)
@given(area=st.sampled_from(AREA_CODES), birth=births, seq=st.integers(min_value=0, max_value=999))
def test_make_id_always_validates(area: str, birth: date, seq: int) -> None:
    number = idnumber.make_id(area, birth, seq)
    r = idnumber.validate_id(number, birth_date=birth, sex=idnumber.sex_of_seq(seq), today=TODAY)
    assert r.ok, r.errors
    assert r.normalized == number and r.birth_date == birth and r.sex == idnumber.sex_of_seq(seq)


@settings(max_examples=300, deadline=None)
@given(
    area=st.sampled_from(AREA_CODES),
    birth=births,
    seq=st.integers(min_value=0, max_value=999),
    position=st.integers(min_value=0, max_value=17),
    replacement=st.sampled_from("0123456789X"),
)
def test_changing_any_character_breaks_the_number(
    area: str, birth: date, seq: int, position: int, replacement: str
) -> None:
    number = idnumber.make_id(area, birth, seq)
    if number[position] == replacement or (replacement == "X" and position < 17):
        replacement = "0" if number[position] != "0" else "1"
    broken = number[:position] + replacement + number[position + 1 :]
    assert not idnumber.validate_id(broken, today=TODAY).ok


@settings(max_examples=200, deadline=None)
@given(area=st.sampled_from(AREA_CODES), birth=births, seq=st.integers(0, 999), position=st.integers(0, 15))
def test_swapping_adjacent_digits_breaks_the_number(area: str, birth: date, seq: int, position: int) -> None:
    number = idnumber.make_id(area, birth, seq)
    a, b = number[position], number[position + 1]
    if a == b:
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    assert not idnumber.validate_id(swapped, today=TODAY).ok


def test_default_today_comes_from_the_clock() -> None:
    from datetime import UTC, datetime

    from rhip import clock

    number = idnumber.make_id("320106", date(2030, 1, 1), 1)
    with clock.frozen(datetime(2031, 1, 1, tzinfo=UTC)):
        assert idnumber.validate_id(number).ok
    with clock.frozen(datetime(2029, 1, 1, tzinfo=UTC)):
        assert not idnumber.validate_id(number).ok


# --------------------------------------------------------------------------------------------- ICD-10


def _raw_icd_rows() -> list[dict[str, str]]:
    with (codes.DATA / "icd10.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_icd10_file_has_no_duplicates_and_good_format() -> None:
    rows = _raw_icd_rows()
    seen = [r["code"] for r in rows]
    assert len(seen) == len(set(seen))
    assert len(rows) >= 400
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for r in rows:
        assert icd10.ICD10_CODE_RE.match(r["code"]), r["code"]
        assert cjk.search(r["name"]), r
        assert r["name_en"] and r["name_en"] == r["name_en"].strip(), r
        assert r["chapter"] == icd10.icd10_chapter(r["code"]), r


def test_icd10_covers_every_chapter() -> None:
    chapters = {c.chapter for c in icd10.icd10().values()}
    assert chapters == {ch for ch, *_ in icd10.ICD10_CHAPTERS}


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("I10", "原发性高血压"),
        ("E11.9", "2型糖尿病不伴有并发症"),
        ("J06.9", "急性上呼吸道感染，未特指"),
        ("J18.9", "肺炎，未特指"),
        ("K29.7", "胃炎，未特指"),
        ("I25.1", "动脉硬化性心脏病"),
        ("I63.9", "脑梗死，未特指"),
        ("C34.9", "支气管或肺恶性肿瘤，未特指"),
        ("N39.0", "泌尿道感染，部位未特指"),
        ("M54.5", "下背痛"),
        ("Z00.0", "一般性医学检查"),
    ],
)
def test_common_diagnoses_present(code: str, name: str) -> None:
    entry = icd10.icd10()[code]
    assert entry.name.startswith(name)
    assert entry.category == code[:3]


@pytest.mark.parametrize(
    "code",
    [
        "I10",
        "E11.9",
        "e11.9",
        " J18.9 ",
        "Ｉ１０",
        "E11.9†",
        "J06.8",
        "E11",
        "I10.x00",
        "I10.x00x002",
        "E11.900x001",
    ],
)
def test_is_icd10_accepts(code: str) -> None:
    assert icd10.is_icd10(code)
    assert codes.in_code_system("icd10", code)


@pytest.mark.parametrize("code", ["", "I10.1", "A99", "I1", "I100", "E11.99999", "高血压", "I10..0", "11.9"])
def test_is_icd10_rejects(code: str) -> None:
    assert not icd10.is_icd10(code)


def test_find_and_search_icd10() -> None:
    found = icd10.find_icd10("E11.900x001")
    assert found is not None and found.code == "E11.9"
    parent = icd10.find_icd10("J06.8")
    assert parent is not None and parent.code == "J06"
    total, page = icd10.search_icd10("高血压")
    assert total >= 3 and "I10" in {c.code for c in page}
    total, page = icd10.search_icd10("E11", limit=3)
    assert total == 8 and [c.code for c in page] == ["E11", "E11.2", "E11.3"]
    assert icd10.search_icd10("pneumonia")[0] >= 5


# --------------------------------------------------------------------------------------------- code systems


def test_code_systems_shape() -> None:
    systems = codes.code_systems()
    for sid in (
        "sex",
        "marital_status",
        "ethnicity",
        "visit_type",
        "payment_type",
        "discharge_disposition",
        "abnormal_flag",
        "modality",
        "change_flag",
        "icd10",
        "area",
        "department",
    ):
        assert sid in systems, sid
    for sid, cs in systems.items():
        assert cs.id == sid and cs.name and cs.standard
        assert cs.external or cs.codes, sid
        assert all(k and v for k, v in cs.codes.items())


def test_code_systems_are_data_read_once() -> None:
    """Every system is an entry of data/code_systems.yaml: codes as quoted strings ("08" stays "08"), or a
    source, or external; the file is read once."""
    raw = yaml.safe_load((codes.DATA / "code_systems.yaml").read_text(encoding="utf-8"))["systems"]
    assert [s["id"] for s in raw] == list(codes.code_systems())
    for s in raw:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in (s.get("codes") or {}).items()), s
        assert ("codes" in s) + ("source" in s) + bool(s.get("external")) == 1, s["id"]
    assert codes.code_systems() is codes.code_systems()
    assert codes.code_systems()["ethnicity"].codes["08"] == "壮族"


def test_value_sets() -> None:
    assert dict(codes.code_systems()["sex"].codes) == {
        "0": "未知的性别",
        "1": "男性",
        "2": "女性",
        "9": "未说明的性别",
    }
    eth = codes.code_systems()["ethnicity"].codes
    assert len(eth) == 58 and eth["01"] == "汉族" and eth["03"] == "回族" and eth["56"] == "基诺族"
    assert dict(codes.code_systems()["change_flag"].codes) == {"1": "新增", "2": "修改", "3": "撤销"}
    assert codes.in_code_system("discharge_disposition", "5")
    assert not codes.in_code_system("discharge_disposition", "6")
    assert codes.in_code_system("modality", "CT") and codes.in_code_system("modality", "DR")
    assert codes.in_code_system("abnormal_flag", "H") and not codes.in_code_system("abnormal_flag", "X")
    assert codes.in_code_system("area", "320106") and codes.in_code_system("area", "340521")
    assert not codes.in_code_system("area", "320199")


def test_department_codes_come_from_the_registry() -> None:
    depts = codes.codes_of("department")
    if not depts:
        pytest.skip("registry departments not available")
    some = next(iter(depts))
    assert codes.in_code_system("department", some)
    assert not codes.in_code_system("department", "no-such-dept")


def test_unknown_code_system() -> None:
    with pytest.raises(NotFound) as exc:
        codes.in_code_system("nope", "1")
    assert "icd10" in exc.value.detail
