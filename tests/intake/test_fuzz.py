"""Random bytes at every way in: always a 4xx problem body, never a 500."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.intake.conftest import csv_text, make_row

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
HEADER = csv_text([make_row("patient_info", org_code="X", patient_id="P1")]).split("\n")[0].encode()
blobs = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=400).map(lambda b: HEADER + b"\n" + b),
    st.text(max_size=300).map(lambda t: HEADER + b"\n" + t.encode("utf-8", "surrogatepass")),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _ok(r) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), r.text
        assert r.json()["detail"]


@FUZZ
@given(
    data=blobs,
    name=st.sampled_from(["patient_info.csv", "patient_info.parquet", "x.jsonl", "a.zip", "diagnosis"]),
)
def test_fuzz_batches(client, auth, inst, data, name) -> None:  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=inst)
    _ok(client.post("/api/v1/intake/batches", headers=h, files={"file": (name, data, "text/csv")}))
    _ok(
        client.post(
            "/api/v1/intake/batches",
            headers={**h, "content-type": "multipart/form-data; boundary=zz"},
            content=data,
        )
    )
    _ok(client.post("/api/v1/intake/batches", headers=h, params={"table": "patient_info"}, content=data))


@FUZZ
@given(data=blobs)
def test_fuzz_realtime(client, auth, inst, data) -> None:  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=inst)
    _ok(client.post("/api/v1/intake/realtime/patient_info", headers=h, content=data))


@FUZZ
@given(
    rec=st.dictionaries(
        st.sampled_from(
            ["org_code", "patient_id", "sex", "birth_date", "updated_at", "collected_at", "change_flag", "zz"]
        ),
        st.one_of(
            st.none(),
            st.text(max_size=30),
            st.integers(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.lists(st.integers(), max_size=2),
        ),
    )
)
def test_fuzz_realtime_json(client, auth, inst, rec) -> None:  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=inst)
    _ok(client.post("/api/v1/intake/realtime/patient_info", headers=h, json=[rec]))


CDA_HEAD = b'<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3">'
xml_blobs = st.one_of(
    blobs,
    st.binary(max_size=400).map(lambda b: CDA_HEAD + b),
    st.text(max_size=300).map(
        lambda t: CDA_HEAD + t.encode("utf-8", "surrogatepass") + b"</ClinicalDocument>"
    ),
    st.lists(
        st.sampled_from(
            [
                b'<templateId root="2.16.156.10011.2.1.1.22"/>',
                b'<templateId root="2.16.156.10011.2.1.1.73"/>',
                b'<code code="C0007"/>',
                b'<id extension="D1"/>',
                b"<custodian><assignedCustodian><representedCustodianOrganization>"
                b'<id extension="X"/></representedCustodianOrganization></assignedCustodian></custodian>',
                b'<effectiveTime value="2025"/>',
                b"<componentOf><encompassingEncounter><id extension='V'/>"
                b"</encompassingEncounter></componentOf>",
                b"&amp;",
                b"<!ENTITY x 'y'>",
            ]
        ),
        max_size=8,
    ).map(lambda parts: CDA_HEAD + b"".join(parts) + b"</ClinicalDocument>"),
)


@FUZZ
@given(data=xml_blobs)
def test_fuzz_cda(client, auth, inst, data) -> None:  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=inst)
    _ok(client.post("/api/v1/intake/cda", headers=h, content=data))
    _ok(
        client.post(
            "/api/v1/intake/cda", headers=h, content=data.replace(b'"X"', b'"' + inst.encode() + b'"')
        )
    )
