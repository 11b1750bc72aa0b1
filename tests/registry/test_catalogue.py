"""The dataset catalogue: 12 real-time forms, common fields first, keys, links and code bindings hold."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from rhip.errors import NotFound
from rhip.registry import catalogue, catalogue_doc, codes

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
EXPECTED_REALTIME = {
    "outpatient_registration",
    "outpatient_visit",
    "diagnosis",
    "prescription",
    "prescription_item",
    "fee_settlement",
    "lab_report",
    "lab_result",
    "exam_report",
    "admission",
    "discharge_summary",
    "inpatient_order",
}


def test_catalogue_is_consistent() -> None:
    assert catalogue.problems(catalogue.datasets()) == []


def test_twelve_realtime_forms() -> None:
    realtime = catalogue.realtime_datasets()
    assert len(realtime) == 12 == catalogue.REALTIME_FORMS
    assert {d.name for d in realtime} == EXPECTED_REALTIME


def test_required_tables_present() -> None:
    names = set(catalogue.names())
    assert names >= EXPECTED_REALTIME
    assert {
        "patient_info",
        "medical_record_front_page",
        "surgery",
        "health_record",
        "hypertension_followup",
        "diabetes_followup",
    } <= names
    categories = {d.name: d.category for d in catalogue.datasets()}
    assert categories["health_record"] == "public_health" and categories["outpatient_visit"] == "medical"


def test_common_fields_first_everywhere() -> None:
    assert catalogue.COMMON_FIELD_NAMES == ("org_code", "collected_at", "updated_at", "change_flag")
    assert all(f.required for f in catalogue.COMMON_FIELDS)
    assert catalogue.COMMON_FIELDS[3].code_system == "change_flag"
    for d in catalogue.datasets():
        assert d.fields[:4] == catalogue.COMMON_FIELDS, d.name
        assert d.dedup_key[0] == "org_code"


def test_names_are_snake_case_and_labels_chinese() -> None:
    for d in catalogue.datasets():
        assert SNAKE.match(d.name), d.name
        assert re.search(r"[\u4e00-\u9fff]", d.label)
        for f in d.fields:
            assert SNAKE.match(f.name), f"{d.name}.{f.name}"
            assert re.search(r"[\u4e00-\u9fff]", f.label), f"{d.name}.{f.name}"
            assert f.type in catalogue.FIELD_TYPES


def test_business_keys_and_event_times_exist() -> None:
    for d in catalogue.datasets():
        assert d.business_key
        for key in d.business_key:
            assert d.field(key).required, f"{d.name}.{key}"
        if d.realtime:
            assert d.event_time, f"real-time table {d.name} needs an event time"
        if d.event_time:
            assert d.field(d.event_time).type in ("date", "datetime")


def test_links_resolve() -> None:
    by_name = {d.name: d for d in catalogue.datasets()}
    linked = set()
    for d in catalogue.datasets():
        for link in d.links:
            target = by_name[link.dataset]
            assert all(f in d.field_names for f in link.fields)
            assert link.target_fields == target.business_key
            linked.add((d.name, link.dataset))
    assert ("diagnosis", "outpatient_visit") in linked
    assert ("prescription_item", "prescription") in linked
    assert ("lab_result", "lab_report") in linked
    assert ("fee_settlement", "outpatient_visit") in linked and ("fee_settlement", "admission") in linked


def test_code_bindings_exist() -> None:
    systems = codes.code_systems()
    for d in catalogue.datasets():
        for f in d.fields:
            if f.type == "code":
                assert f.code_system in systems, f"{d.name}.{f.name}"
            elif f.code_system:
                pytest.fail(f"{d.name}.{f.name}: code_system on a non-code field")
    assert catalogue.get("diagnosis").field("diagnosis_code").code_system == "icd10"
    assert catalogue.get("outpatient_visit").field("dept_code").code_system == "department"
    assert catalogue.get("medical_record_front_page").field("discharge_disposition").code_system == (
        "discharge_disposition"
    )


def test_key_columns_for_the_bulletin() -> None:
    visit = catalogue.get("outpatient_visit")
    assert visit.event_time == "visit_time"
    assert visit.field("fee_total").type == "decimal" and visit.field("fee_total").required
    assert visit.field("visit_type").code_system == "visit_type"
    discharge = catalogue.get("discharge_summary")
    assert discharge.event_time == "discharged_at"
    assert discharge.field("total_fee").required
    hyper = catalogue.get("hypertension_followup")
    assert (hyper.field("systolic").minimum, hyper.field("systolic").maximum) == (60, 280)
    assert (hyper.field("diastolic").minimum, hyper.field("diastolic").maximum) == (30, 180)
    fg = catalogue.get("diabetes_followup").field("fasting_glucose")
    assert fg.minimum == 1.0 and fg.maximum == 50.0
    assert catalogue.get("patient_info").field("id_number").type == "id_number"
    assert catalogue.get("lab_result").field("abnormal_flag").code_system == "abnormal_flag"
    assert catalogue.get("exam_report").field("modality").code_system == "modality"


def test_cda_documents_are_ws_standards() -> None:
    docs = {d.name: d.cda_document for d in catalogue.datasets() if d.cda_document}
    assert docs["discharge_summary"] == "WS/T 500.53 出院小结"
    assert all(re.match(r"^WS/T (500|483)\.\d+ ", doc) for doc in docs.values())


def test_get_unknown_dataset_lists_names() -> None:
    with pytest.raises(NotFound) as exc:
        catalogue.get("no_such_table")
    assert "no_such_table" in exc.value.detail and "outpatient_visit" in exc.value.detail
    with pytest.raises(NotFound):
        catalogue.get("outpatient_visit").field("nope")


def test_problems_detects_broken_catalogues() -> None:
    items = catalogue.datasets()
    visit = catalogue.get("outpatient_visit")
    bad = [d for d in items if d.name != "outpatient_visit"]
    bad.append(dataclasses.replace(visit, business_key=("nope",), event_time="patient_id", realtime=False))
    bad.append(
        dataclasses.replace(
            catalogue.get("diagnosis"),
            name="diagnosis_copy",
            realtime=False,
            fields=catalogue.get("diagnosis").fields[1:],
            links=(catalogue.Link(("visit_no",), "ghost", ("visit_no",)),),
        )
    )
    found = "\n".join(catalogue.problems(bad))
    assert "real-time datasets" in found
    assert "business key field nope" in found
    assert "event_time field patient_id" in found
    assert "common fields must come first" in found
    assert "unknown dataset ghost" in found


def test_markdown_lists_every_dataset() -> None:
    md = catalogue_doc.to_markdown()
    for d in catalogue.datasets():
        assert f"## {d.name}" in md and d.label in md
    assert "## 代码系统" in md


def test_docs_datasets_md_is_up_to_date() -> None:
    path = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"
    expected = catalogue_doc.INTRO + "\n" + catalogue_doc.INTRO_MARKER + "\n\n" + catalogue_doc.to_markdown()
    assert path.read_text(encoding="utf-8") == expected, (
        "docs/datasets.md is stale: run python -m rhip.registry.catalogue_doc --markdown > docs/datasets.md"
    )


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert catalogue_doc.main([]) == 0
    assert "12 real-time" in capsys.readouterr().out
    assert catalogue_doc.main(["--markdown"]) == 0
    assert catalogue_doc.INTRO_MARKER in capsys.readouterr().out


def test_validation_rules_are_catalogue_data_read_by_intake_and_synth() -> None:
    from rhip.intake import rules as intake_rules
    from rhip.registry import idnumber
    from rhip.synth import defects

    v = catalogue.validation()
    assert (
        next(iter(v.rules)) == "institution"
        and "date_order" in v.rules
        and v.rules["late"] == "实时数据上传不及时"
    )
    assert ("admitted_at", "discharged_at") in v.order_pairs and v.max_age_years == 120
    assert intake_rules.RULES is v.rules and intake_rules.ORDER_PAIRS is v.order_pairs
    assert intake_rules.MAX_AGE_YEARS == idnumber.max_age_years() == v.max_age_years
    assert defects.ORDER_PAIRS is v.order_pairs
    assert tuple(defects.ROW_RULES) == v.row_rules
    assert "institution" not in defects.ROW_RULES and defects.ROW_RULES[0] == "required"
