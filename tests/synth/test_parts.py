"""The synth parts on their own: seed parsing, calibration, residents, word lists, arguments, determinism."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from rhip.errors import Invalid
from rhip.registry import data as registry, directories, icd10, idnumber
from rhip.synth import calibration, lexicon, residents, seedparse, service, vec, vocab
from rhip.synth.defects import DefectRates
from tests.conftest import seed_files


def test_seedparse_reproduces_the_committed_csvs(tmp_path: Path) -> None:
    for path in seed_files():
        for month, rows in seedparse.parse_file(path).items():
            made = seedparse.write_csv(month, rows, tmp_path)
            assert made.read_text(encoding="utf-8") == (calibration.DATA_DIR / made.name).read_text(
                encoding="utf-8"
            )


def test_seed_tables_have_every_institution_and_resolve() -> None:
    expected = {
        "2025-03": (12, 38),
        "2025-02": (12, 38),
        "2022-08": (12, 31),
        "2020-05": (12, 25),
        "2018-03": (12, 24),
    }
    assert calibration.seeded_months() == sorted(expected)
    for month, (n_district, n_hospital) in expected.items():
        rows = calibration.seed_rows(month)
        assert sum(r["kind"] == "district" for r in rows) == n_district
        assert sum(r["kind"] == "hospital" for r in rows) == n_hospital
        for r in rows:
            assert registry.resolve_name(r["name"]) is not None, r["name"]
    row = next(r for r in calibration.seed_rows("2025-03") if r["name"] == "江苏省中医院")
    assert (row["uploads"], row["upload_days"], row["forms"], row["visits"], row["visit_revenue"]) == (
        "27340194",
        "30",
        "12/12",
        "643011",
        "378378.37",
    )
    qinhuai = next(r for r in calibration.seed_rows("2025-03") if r["name"] == "秦淮区")
    assert (qinhuai["visit_revenue"], qinhuai["inpatient_revenue"]) == ("/", "/")
    jiangbei = next(r for r in calibration.seed_rows("2018-03") if r["name"] == "江北新区")
    assert jiangbei["visit_upload_rate"] == "NA" and jiangbei["browser"] == "127/0"


def test_targets_at_full_scale_are_the_bulletin() -> None:
    t = {x.name: x for x in calibration.targets("2025-03", 1.0)}
    gulou = t["南京鼓楼医院"]
    assert (gulou.visits, gulou.visit_revenue, gulou.discharges, gulou.inpatient_revenue) == (
        641752,
        28865531000,
        19974,
        46376478000,
    )
    assert (gulou.uploads, gulou.upload_days, gulou.forms, gulou.forms_of) == (25256025, 31, 12, 12)
    assert t["秦淮区"].uploads == 0 and t["秦淮区"].visit_revenue == 0


def test_months_without_a_seed_borrow_the_nearest_and_scale_by_days() -> None:
    assert calibration.source_month("2025-03") == "2025-03"
    assert calibration.source_month("2025-04") == "2025-03"
    assert calibration.source_month("2019-06") == "2020-05"
    assert calibration.source_month("2010-01") == "2018-03"
    feb = {x.name: x for x in calibration.targets("2025-02", 1.0)}
    jan = {x.name: x for x in calibration.targets("2025-01", 1.0)}
    assert jan["江宁区"].visits == round(522841 * 31 / 28)
    assert jan["江宁区"].upload_days == min(31, round(28 * 31 / 28))
    assert feb["江宁区"].visits == 522841


def test_residents_have_valid_unique_ids() -> None:
    pop = residents.make(20_000, ref_day=residents.day_number(date(2025, 3, 1)), seed=5)
    ids = pop.id_number.to_pylist()
    assert len(set(ids)) == len(ids)
    for number, sex, birth in list(zip(ids, pop.sex, pop.birth, strict=True))[:3000]:
        assert idnumber.check_char(number[:17]) == number[17]
        assert (int(number[16]) % 2 == 1) == (sex == 1)
        born = date.fromordinal(date(1970, 1, 1).toordinal() + int(birth))
        assert number[6:14] == born.strftime("%Y%m%d")
        assert idnumber.is_known_area(number[:6])
        area = idnumber.find_area(number[:6])
        assert area is not None
        if area.valid_to is not None:  # an old code: issued before the district was renamed
            assert born.year < area.valid_to
    assert np.all(pop.birth < residents.day_number(date(2025, 3, 1)))
    names = pop.name.to_pylist()
    top = max(set(n[0] for n in names), key=lambda c: sum(n[0] == c for n in names[:5000]))
    assert top in "王李张"
    assert all(2 <= len(n) <= 4 for n in names)
    phones = pop.phone
    assert np.all((phones // 10**10) == 1) and np.all(((phones // 10**9) % 10) >= 3)
    assert sum(not a.startswith("江苏省南京市") for a in pop.address.to_pylist()) / len(pop) == pytest.approx(
        0.05, abs=0.01
    )


def test_vectorised_check_chars_match_the_registry() -> None:
    bodies = np.array([32010219800101001, 32012519501231998, 34020220240229123], dtype=np.int64)
    assert list(vec.check_chars(bodies)) == [idnumber.check_char(str(b)) for b in bodies]
    assert residents.typo_id("320102198001010013", np.random.default_rng(1)) != "320102198001010013"


def test_word_lists_are_gbk() -> None:
    words = [s for s, _ in lexicon.SURNAMES] + [lexicon.GIVEN_MALE, lexicon.GIVEN_FEMALE, *lexicon.HOMOPHONES]
    words += [r for rs in lexicon.ROADS.values() for r in rs] + [
        json.dumps(vocab.__dict__.get(k), ensure_ascii=False) for k in dir(vocab) if k.isupper()
    ]
    for w in words:
        w.encode("gbk")
    words += [c.name for c in icd10.icd10().values()] + [d.name for d in directories.departments()]
    for w in words:
        w.encode("gbk")  # a GBK unit's files carry these names too
    homophones = lexicon.homophone_map()
    assert "晶" in homophones["静"] and "维" in homophones["伟"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"month": "2025-13"}, "月份格式错误"),
        ({"month": "202503"}, "月份格式错误"),
        ({"scale": 0}, "规模必须大于 0"),
        ({"scale": -1.0}, "规模必须大于 0"),
        ({"gbk_share": 1.5}, "GBK"),
    ],
)
def test_bad_arguments_raise_invalid(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"month": "2025-03", "scale": 0.001, "seed": 1, "out": tmp_path}
    args.update(kwargs)
    with pytest.raises(Invalid, match=message):
        service.generate(**args)  # type: ignore[arg-type]


def test_unwritable_output_raises_invalid(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(Invalid, match="输出目录不可写"):
        service.generate(month="2025-03", scale=0.001, seed=1, out=blocker / "sub")


def test_bad_defect_rates_raise_invalid() -> None:
    with pytest.raises(Invalid, match="缺陷比例"):
        DefectRates(required=0.9)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    units = ["D320102", "H011", "H082", "H084"]
    kw: dict[str, object] = {
        "month": "2024-11",
        "scale": 0.002,
        "seed": 9,
        "gbk_share": 0.5,
        "institutions": units,
    }
    a = service.generate(out=tmp_path / "a", **kw)  # type: ignore[arg-type]
    b = service.generate(out=tmp_path / "b", **kw)  # type: ignore[arg-type]
    ma = (tmp_path / "a" / "manifest.json").read_bytes()
    assert ma == (tmp_path / "b" / "manifest.json").read_bytes()
    assert a.rows == b.rows and a.source_month == "2025-02" and {u.code for u in a.units} == set(units)
    one = service.generate(out=tmp_path / "c", **{**kw, "institutions": ["H011"]})  # type: ignore[arg-type]
    sha = {e["path"]: e["sha256"] for e in json.loads(ma)["uploads"]}
    assert one.files and all(
        sha[e["path"]] == e["sha256"]
        for e in json.loads((tmp_path / "c" / "manifest.json").read_text())["uploads"]
    )
    with pytest.raises(Invalid, match="没有这些接入单位"):
        service.generate(out=tmp_path / "d", **{**kw, "institutions": ["H999"]})  # type: ignore[arg-type]
    day = residents.day_number(date(2024, 11, 1))
    assert (
        residents.make(100, ref_day=day, seed=9).id_number
        != residents.make(100, ref_day=day, seed=10).id_number
    )
