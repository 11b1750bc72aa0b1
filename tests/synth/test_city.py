"""The generated month read back from its files: calibration, ground truth, encodings, real-time figures."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import polars as pl
import pyarrow.parquet as pq
import pytest

from rhip.registry import catalogue, data as registry
from rhip.synth import calibration, defects, outputs, service
from rhip.synth.city import Month

from .conftest import MONTH, SCALE, manifest, read_upload, uploads

REALTIME_WINDOW_S = 600  # rows collected within 10 minutes of their event were sent in real time


@pytest.fixture(scope="module")
def files(city: service.SynthResult) -> dict[tuple[str, str], pl.DataFrame]:
    return uploads(city.out)


@pytest.fixture(scope="module")
def planted(city: service.SynthResult) -> pl.DataFrame:
    return pl.read_parquet(city.out / "ground_truth" / "defects.parquet")


def _fen(col: pl.Series) -> int:
    """Sum of yuan amounts written with two decimals, in integer fen (no float rounding)."""
    parts = col.str.split_exact(".", 1)
    yuan = parts.struct.field("field_0").cast(pl.Int64)
    cents = parts.struct.field("field_1").fill_null("0").str.pad_end(2, "0").cast(pl.Int64)
    return int((yuan * 100 + cents).sum())


def _valid(df: pl.DataFrame, key: list[str], bad_keys: set[str]) -> pl.DataFrame:
    """The platform's dedup rule: latest 数据更新时间 wins, 3 is a tombstone; planted defect rows dropped."""
    df = df.with_columns(pl.concat_str([pl.col(k) for k in key], separator="|").alias("_bk"))
    df = df.filter(~pl.col("_bk").is_in(list(bad_keys)))
    latest = df.sort("updated_at").group_by("_bk", maintain_order=True).last()
    return latest.filter(pl.col("change_flag") != "3")


def test_files_match_the_manifest(city: service.SynthResult) -> None:
    m = manifest(city.out)
    assert m["month"] == MONTH and m["scale"] == SCALE and m["rows"] == city.rows
    for e in m["uploads"]:
        data = (city.out / e["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e["sha256"]
        assert len(data) == e["bytes"]
        df = read_upload(city.out, e)
        assert df.height == e["rows"]
        assert df.columns == list(catalogue.get(e["table"]).field_names)
        assert e["path"].startswith(f"uploads/{e['org_code']}/{e['table']}")
    for f in m["files"]:
        assert hashlib.sha256((city.out / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert not any("ground_truth" in e["path"] for e in m["uploads"])


def test_valid_figures_equal_the_bulletin_scaled(
    city: service.SynthResult, files: dict[tuple[str, str], pl.DataFrame], planted: pl.DataFrame
) -> None:
    bad = planted.filter(pl.col("rule").is_in(list(defects.ROW_RULES)))
    checked = 0
    for t in calibration.targets(MONTH, SCALE):
        code = registry.resolve_name(t.name).code  # type: ignore[union-attr]
        got = {}
        for table, fee in (("outpatient_visit", "fee_total"), ("discharge_summary", "total_fee")):
            df = files.get((code, table))
            if df is None:
                got[table] = (0, 0)
                continue
            keys = set(
                bad.filter((pl.col("org_code") == code) & (pl.col("table") == table))[
                    "business_key"
                ].to_list()
            )
            valid = _valid(df, list(catalogue.get(table).business_key), keys)
            got[table] = (valid.height, _fen(valid[fee]))
        assert got["outpatient_visit"] == (round(SCALE * _seed(t.name, "visits")), t.visit_revenue), t.name
        assert got["discharge_summary"] == (
            round(SCALE * _seed(t.name, "discharges")),
            t.inpatient_revenue,
        ), t.name
        if t.visits:
            assert t.visit_revenue == round(
                round(SCALE * float(_seed_cell(t.name, "visit_revenue")), 2) * 100_000
            )
        checked += 1
    assert checked == 50  # 12 districts + 38 hospitals, 秦淮区 included (it sends nothing)


def _seed_cell(name: str, column: str) -> str:
    return next(r[column] for r in calibration.seed_rows(MONTH) if r["name"] == name)


def _seed(name: str, column: str) -> int:
    return int(_seed_cell(name, column))


def test_rows_sent_are_within_5_percent_of_the_bulletin(city: service.SynthResult) -> None:
    gt = json.loads((city.out / "ground_truth" / "institutions.json").read_text(encoding="utf-8"))
    for u in gt["institutions"]:
        assert abs(u["rows_uploaded"] / u["rows_target"] - 1) <= 0.05 + 30 / u["rows_target"], u["name"]
    assert "D320104" not in {u["org_code"] for u in gt["institutions"]}  # 秦淮区 0 → sends nothing
    assert not (city.out / "uploads" / "D320104").exists()


def test_ground_truth_matches_the_files(
    city: service.SynthResult, files: dict[tuple[str, str], pl.DataFrame], planted: pl.DataFrame
) -> None:
    counts = pq.read_table(city.out / "ground_truth" / "tables.parquet").to_pylist()
    mine_by = {(k[0], k[1]): g for k, g in planted.group_by(["org_code", "table"])}
    assert len(counts) == len(files)
    for row in counts:
        df = files[(row["org_code"], row["table"])]
        ds = catalogue.get(row["table"])
        df = df.with_columns(pl.concat_str([pl.col(k) for k in ds.business_key], separator="|").alias("_bk"))
        assert df.height == row["rows"]
        flags = Counter(df["change_flag"].to_list())
        assert flags["2"] == row["modified"] and flags["3"] == row["revoked"]
        data_cols = [c for c in df.columns if c not in ("_file", "_bk")]
        assert df.height - df.select(data_cols).unique().height == row["duplicate"]
        mine = (
            mine_by[(row["org_code"], row["table"])]
            if (row["org_code"], row["table"]) in mine_by
            else planted.clear()
        )
        rows_bad = mine.filter(pl.col("rule").is_in(list(defects.ROW_RULES)))
        assert rows_bad["business_key"].n_unique() == rows_bad.height  # one rule per extra row
        found = Counter(
            rows_bad.join(df.select("_bk"), left_on="business_key", right_on="_bk")["rule"].to_list()
        )
        assert {r: found[r] for r in defects.ROW_RULES} == {r: row[r] for r in defects.ROW_RULES}
        revoked = mine.filter(pl.col("rule") == "revoked")["business_key"].n_unique()
        assert df["_bk"].n_unique() - rows_bad.height - revoked == row["valid"]
    totals = Counter(planted["rule"].to_list())
    assert all(totals[r] > 0 for r in defects.ALL_RULES), totals


def test_defect_rows_break_exactly_their_rule(
    files: dict[tuple[str, str], pl.DataFrame], planted: pl.DataFrame
) -> None:
    by_rule = {
        r: planted.filter(pl.col("rule") == r)
        for r in ("code", "id_checksum", "date_range", "late", "orphan")
    }
    visits = files[("H020", "outpatient_visit")]
    key = by_rule["code"].filter((pl.col("org_code") == "H020") & (pl.col("table") == "outpatient_visit"))
    for bk, field in zip(key["business_key"], key["field"], strict=True):
        value = visits.filter(pl.col("visit_no") == bk)[field].item()
        assert value in ("7", "99", "X9", "Y99.9")
    for r in by_rule["date_range"].head(20).iter_rows(named=True):
        df = files[(r["org_code"], r["table"])]
        k = catalogue.get(r["table"]).business_key
        row = df.filter(pl.concat_str([pl.col(c) for c in k], separator="|") == r["business_key"])
        assert row[r["field"]].item().startswith("1850-")
    for r in by_rule["late"].head(20).iter_rows(named=True):
        ds = catalogue.get(r["table"])
        df = files[(r["org_code"], r["table"])]
        row = df.filter(
            pl.concat_str([pl.col(c) for c in ds.business_key], separator="|") == r["business_key"]
        )
        ev = row[str(ds.event_time)].str.to_datetime().item()
        col = row["collected_at"].str.to_datetime().item()
        assert (col - ev).total_seconds() > 24 * 3600


def test_gbk_files_decode_as_gbk_and_not_as_utf8(city: service.SynthResult) -> None:
    gbk = [e for e in manifest(city.out)["uploads"] if e["encoding"] == "gbk"]
    assert gbk and city.gbk_files == len(gbk)
    chinese = 0
    for e in gbk:
        data = (city.out / e["path"]).read_bytes()
        text = data.decode("gbk")
        if not data.isascii():
            chinese += 1
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
            assert text.encode("gbk") == data
    assert chinese > 0
    orgs = {e["org_code"] for e in gbk}
    assert all(e["encoding"] == "gbk" for e in manifest(city.out)["uploads"] if e["org_code"] in orgs)


def test_realtime_days_and_forms_are_reproduced(
    city: service.SynthResult, files: dict[tuple[str, str], pl.DataFrame]
) -> None:
    month = Month.of(MONTH)
    gt = {
        u["org_code"]: u
        for u in json.loads((city.out / "ground_truth" / "institutions.json").read_text())["institutions"]
    }
    realtime = [d for d in catalogue.realtime_datasets()]
    for t in calibration.targets(MONTH, SCALE):
        code = registry.resolve_name(t.name).code  # type: ignore[union-attr]
        if code not in gt:
            continue
        days: set[int] = set()
        forms = 0
        with_rows = 0
        for ds in realtime:
            df = files.get((code, ds.name))
            if df is None:
                continue
            with_rows += 1
            ev = df[str(ds.event_time)].str.to_datetime(strict=False)
            col = df["collected_at"].str.to_datetime()
            lag = (col - ev).dt.total_seconds()
            rt = df.filter((lag >= 0) & (lag <= REALTIME_WINDOW_S))
            in_month = rt["collected_at"].str.slice(0, 7) == MONTH
            got = set(rt.filter(in_month)["collected_at"].str.slice(8, 2).cast(pl.Int32).to_list())
            days |= got
            forms += bool(got)
        assert sorted(days) == gt[code]["realtime_upload_days"], t.name
        assert forms == len(gt[code]["realtime_forms"]), t.name
        if t.visits >= t.upload_days:  # enough visits to cover every upload day at this scale
            assert len(days) == min(t.upload_days, month.days), t.name
        wanted = t.forms or 0
        if with_rows >= wanted:
            assert forms == wanted, t.name


def test_statistics_report_is_the_truth_behind_the_uploads(city: service.SynthResult) -> None:
    report = pl.read_csv(city.out / "statistics_report.csv", infer_schema_length=0)
    gt = {
        u["org_code"]: u
        for u in json.loads((city.out / "ground_truth" / "institutions.json").read_text())["institutions"]
    }
    assert set(report["org_code"].to_list()) == set(gt)
    for r in report.iter_rows(named=True):
        valid = gt[r["org_code"]]["valid"]
        assert int(r["outpatient_visits"]) >= valid["outpatient_visits"]
        assert int(r["discharges"]) >= valid["discharges"]


def test_identities_cover_every_patient_record(
    city: service.SynthResult, files: dict[tuple[str, str], pl.DataFrame]
) -> None:
    ids = pl.read_parquet(city.out / "ground_truth" / "identities.parquet")
    residents = pl.read_parquet(city.out / "residents.parquet")
    for (org, table), df in files.items():
        if table != "patient_info":
            continue
        mine = ids.filter(pl.col("org_code") == org)
        assert set(df["patient_id"].to_list()) == set(mine["patient_id"].to_list())
    variants = Counter(ids["variant"].to_list())
    assert variants["homophone"] and variants["missing_id"] and variants["other_phone"]
    assert variants["defect:id_checksum"] > 0
    # a homophone record names the same person with one character changed
    sample = ids.filter(pl.col("variant") == "homophone").head(50).join(residents, on="person_id")
    pats = pl.concat([df for (o, t), df in files.items() if t == "patient_info"]).unique(
        ["org_code", "patient_id"]
    )
    joined = sample.join(pats, on=["org_code", "patient_id"], suffix="_recorded")
    for true, recorded in zip(joined["name"], joined["name_recorded"], strict=True):
        assert len(true) == len(recorded) and sum(a != b for a, b in zip(true, recorded, strict=True)) <= 1
    # an n/l (loose pinyin) merger sounds the same to a local ear: same loose pinyin, other pinyin
    from rhip.identity.features import loose_pinyin, pinyin

    assert variants["nl_merger"]
    merged = ids.filter(pl.col("variant") == "nl_merger").head(50).join(residents, on="person_id")
    joined = merged.join(pats, on=["org_code", "patient_id"], suffix="_recorded")
    for true, recorded in zip(joined["name"], joined["name_recorded"], strict=True):
        assert pinyin(true) != pinyin(recorded) and loose_pinyin(pinyin(true)) == loose_pinyin(
            pinyin(recorded)
        )


def test_summary_and_one_line_are_chinese(city: service.SynthResult) -> None:
    from rich.console import Console

    line = outputs.one_line(city)
    assert "家接入单位" in line and MONTH in line
    console = Console(record=True, width=200)
    outputs.print_summary(city, console)
    text = console.export_text()
    assert "门急诊人次" in text and "南京鼓楼医院" in text and "GBK" in text


def test_intake_validator_agrees_with_the_ground_truth(
    city: service.SynthResult, files: dict[tuple[str, str], pl.DataFrame], planted: pl.DataFrame
) -> None:
    """Where the intake validator exists: valid rows pass and each planted row fails with its own rule."""
    rules = pytest.importorskip("rhip.intake.rules")
    if not all(hasattr(rules, n) for n in ("validate", "key_expr", "RULES")):
        pytest.skip("intake validator API not available")
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    org = "H020"
    frames = {t: df.drop("_file") for (o, t), df in files.items() if o == org}
    keys = {
        t: df.select(rules.key_expr(list(catalogue.get(t).business_key)).alias("_key")).to_series()
        for t, df in frames.items()
    }
    mismatches = []
    for table, df in frames.items():
        ds = catalogue.get(table)
        parents = {
            i: keys.get(lk.dataset, pl.Series("_key", [], dtype=pl.String)) for i, lk in enumerate(ds.links)
        }
        v = rules.validate(ds, df, institution_code=org, now_utc=now, parents=parents)
        names = ["ok"] + [c.rule for c in v.checks]
        got = v.frame.select(
            rules.key_expr(list(ds.business_key)).alias("bk"),
            pl.col("_check")
            .replace_strict(list(range(len(names))), names, return_dtype=pl.String)
            .alias("rule"),
        )
        exp = planted.filter(
            (pl.col("org_code") == org) & (pl.col("table") == table) & pl.col("rule").is_in(list(rules.RULES))
        )
        expected = dict(zip(exp["business_key"].to_list(), exp["rule"].to_list(), strict=True))
        for bk, rule in got.iter_rows():
            if expected.get(bk, "ok") != rule:
                mismatches.append((table, bk, expected.get(bk, "ok"), rule))
    assert not mismatches, mismatches[:10]
