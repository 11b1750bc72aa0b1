"""Inputs of issue 13: uploads checked before they are parsed and bounded per type, formulas defused in
exports, DTDs refused in any encoding, client file names cleaned."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from rhip.config import Settings
from rhip.intake import export, formats, uploads
from rhip.intake.models import IntakeBatch, IntakeProblem
from tests.intake.conftest import PATIENT_COLS

Auth = Callable[..., dict[str, str]]


def test_default_upload_limits() -> None:
    s = Settings()
    assert s.max_upload_bytes == 512 * 1024**2
    assert s.max_fhir_bundle_bytes == 32 * 1024**2
    assert s.max_fhir_entries <= 50_000


def test_a_wrong_header_is_refused_before_the_file_is_parsed(
    client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parsed: list[str] = []
    real = formats.read_file

    def spy(*args: Any, **kwargs: Any) -> Any:
        parsed.append(str(kwargs.get("filename")))
        return real(*args, **kwargs)

    monkeypatch.setattr(formats, "read_file", spy)
    header = ",".join([*PATIENT_COLS[:-1], "secret_column"])
    body = (
        header + "\n" + "H,2025-03-02 10:00:00,2025-03-02 10:00:00,1,P1,张三,1,1949-12-31,x\n" * 200_000
    ).encode()
    from rhip.registry import data

    inst = data.institutions()[0].code
    r = client.post(
        "/api/v1/intake/batches",
        headers=auth("uploader", institution=inst),
        files={"file": ("patient_info_202503.csv", body, "text/csv")},
    )
    assert r.status_code == 422 and r.json()["code"] == "bad-header", r.text[:300]
    assert "secret_column" in r.json()["detail"]
    assert parsed == []  # refused from the first line: the 17 MB were never parsed
    assert str(tmp_path) not in r.text and "/incoming/" not in r.text  # no server paths


def test_declared_size_over_the_limit_is_413_before_reading(client: TestClient, auth: Auth) -> None:
    r = client.post(
        "/api/v1/intake/batches",
        headers={**auth("manager"), "content-length": str(600 * 1024**2), "content-type": "text/csv"},
        params={"institution": "H001", "table": "patient_info"},
        content=b"x",
    )
    assert r.status_code == 413


def test_fhir_bundle_entry_cap_and_size(
    client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rhip.registry import data

    inst = data.institutions()[0].code
    settings = client.app.state.settings  # type: ignore[attr-defined]
    monkeypatch.setattr(settings, "max_fhir_entries", 3)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": {"resourceType": "Patient"}}] * 4,
    }
    h = {**auth("uploader", institution=inst), "content-type": "application/fhir+json"}
    r = client.post("/fhir/r4", headers=h, content=orjson.dumps(bundle))
    assert r.status_code == 413 and "最多 3" in r.text
    monkeypatch.setattr(settings, "max_fhir_bundle_bytes", 100)
    r = client.post("/fhir/r4", headers=h, content=orjson.dumps(bundle))
    assert r.status_code == 413
    r = client.post("/fhir/r4", headers={**h}, content=b'"just a string"')
    assert r.status_code in (400, 413, 422)


def _problem(value: str, business_key: str = "K1") -> IntakeProblem:
    return IntakeProblem(
        batch_id="b1",
        table_name="patient_info",
        file="patient_info.csv",
        row=2,
        business_key=business_key,
        rule="code",
        field="sex",
        value=value,
        message="性别代码不在值域内",
    )


@pytest.mark.parametrize(
    "evil", ['=HYPERLINK("http://evil.example","点我")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
)
def test_spreadsheet_exports_neutralise_formulas(evil: str) -> None:
    items = [_problem(evil, business_key=evil)]
    text = export.problems_csv(items).decode("utf-8-sig")
    assert f"'{evil[:4]}" in text.replace('"', "") or f"'{evil}" in text
    batch = IntakeBatch(
        id="b1",
        institution_code="H001",
        channel="batch",
        status="committed",
        received=1,
        accepted=0,
        updated=0,
        revoked=0,
        duplicate=0,
        rejected=1,
    )
    wb = load_workbook(io.BytesIO(export.problems_xlsx(batch, items)))
    sheet = wb["问题清单"]
    cells = [c.value for c in sheet[2]]
    assert all(not (isinstance(v, str) and v.startswith(("=", "+", "-", "@", "\t", "\r"))) for v in cells), (
        cells
    )
    assert sheet.cell(2, 8).data_type == "s"


def test_exports_mask_id_numbers_in_values() -> None:
    text = export.problems_csv([_problem("32010219800101123X")]).decode("utf-8-sig")
    assert "32010219800101123X" not in text and "320102********123X" in text


def test_cda_with_a_doctype_in_utf16_is_refused(client: TestClient, auth: Auth) -> None:
    from rhip.registry import data

    inst = data.institutions()[0].code
    doc = (
        '<?xml version="1.0" encoding="UTF-16"?>'
        '<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&xxe;</title></ClinicalDocument>'
    )
    for encoded in (doc.encode("utf-16"), doc.encode("utf-16-be"), doc.replace("UTF-16", "UTF-8").encode()):
        r = client.post(
            "/api/v1/intake/cda",
            headers={**auth("uploader", institution=inst), "content-type": "application/xml"},
            content=encoded,
        )
        assert r.status_code == 400 and r.json()["code"] in ("xml-dtd", "bad-xml"), r.text[:300]
        assert "root:" not in r.text


def test_client_file_names_are_cleaned() -> None:
    assert uploads.client_filename("patient\x00_info\n.csv") == "patient_info.csv"
    assert uploads.client_filename("../../etc/passwd") == "passwd"
    assert uploads.client_filename("C:\\Users\\x\\p.csv") == "p.csv"
    assert uploads.client_filename("..") == "upload"
    assert len(uploads.client_filename("a" * 5000)) == 200


def test_nul_in_an_uploaded_file_name_is_not_kept(client: TestClient, auth: Auth) -> None:
    from rhip.registry import data

    inst = data.institutions()[0].code
    row = f"{inst},2025-03-02 10:00:00,2025-03-01 10:00:00,1,PNUL1,张三,7,1949-12-31,11010519491231002X"
    text = ",".join(PATIENT_COLS) + "\n" + row + "\n"
    r = client.post(
        "/api/v1/intake/batches",
        headers=auth("uploader", institution=inst),
        params={"table": "patient_info", "filename": "patient_info\x01.csv"},
        content=text.encode(),
    )
    assert r.status_code == 201, r.text[:300]
    assert "\x01" not in r.text


def test_bulletin_files_are_built_once_per_month_and_content(
    client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rhip.bulletin import render

    built: list[str] = []
    real = render.xlsx

    def spy(b: Any) -> bytes:
        built.append(b.month)
        return real(b)

    monkeypatch.setattr(render, "xlsx", spy)
    h = auth("uploader", institution="H001")
    first = client.get("/bulletin/2024-11.xlsx", headers=h)
    second = client.get("/bulletin/2024-11.xlsx", headers=h)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content and built == ["2024-11"]
    folder = client.app.state.settings.data_dir / "cache" / "bulletin"  # type: ignore[attr-defined]
    files = list(folder.glob("2024-11-*.xlsx"))
    assert files and (files[0].stat().st_mode & 0o077) == 0
