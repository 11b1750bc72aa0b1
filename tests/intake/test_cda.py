"""CDA shared documents (WS/T 500): 病历概要, 门（急）诊病历, 检验报告, 检查报告, 入院记录, 出院小结."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from rhip.clock import local_now
from tests.intake.conftest import unique

URL = "/api/v1/intake/cda"


def ts(dt: datetime) -> str:
    """HL7 TS with the +0800 offset."""
    return dt.strftime("%Y%m%d%H%M%S") + "+0800"


def cda(
    *,
    part: int,
    code: str,
    title: str,
    org: str,
    doc_id: str,
    patient_id: str,
    effective: datetime,
    encounter: str = "",
    event: str = "",
    body: str = "",
    version: int = 1,
) -> bytes:
    """A WS/T 500 shared document with the standard header (template 2.16.156.10011.2.1.1.<20+part>)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="CN"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_MT000040"/>
  <templateId root="2.16.156.10011.2.1.1.{20 + part}"/>
  <id root="2.16.156.10011.1.1" extension="{doc_id}"/>
  <code code="{code}" codeSystem="2.16.156.10011.2.4" codeSystemName="卫生信息共享文档规范编码体系"/>
  <title>{title}</title>
  <effectiveTime value="{ts(effective)}"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25" displayName="正常访问保密级别"/>
  <languageCode code="zh-CN"/>
  <setId/>
  <versionNumber value="{version}"/>
  <recordTarget typeCode="RCT" contextControlCode="OP">
    <patientRole classCode="PAT">
      <id root="2.16.156.10011.1.2" extension="{patient_id}"/>
      <addr use="H">江苏省南京市鼓楼区中山路 1 号</addr>
      <telecom value="13812345678"/>
      <patient classCode="PSN" determinerCode="INSTANCE">
        <id root="2.16.156.10011.1.3" extension="11010519491231002X"/>
        <name>张三</name>
        <administrativeGenderCode code="1" codeSystem="2.16.156.10011.2.3.3.4" displayName="男性"/>
        <birthTime value="19491231"/>
      </patient>
    </patientRole>
  </recordTarget>
  <author typeCode="AUT" contextControlCode="OP">
    <time value="{ts(effective)}"/>
    <assignedAuthor classCode="ASSIGNED">
      <id root="2.16.156.10011.1.7" extension="D001"/>
      <assignedPerson><name>李医生</name></assignedPerson>
      <representedOrganization><id root="2.16.156.10011.1.5" extension="{org}"/></representedOrganization>
    </assignedAuthor>
  </author>
  <custodian typeCode="CST">
    <assignedCustodian classCode="ASSIGNED">
      <representedCustodianOrganization classCode="ORG" determinerCode="INSTANCE">
        <id root="2.16.156.10011.1.5" extension="{org}"/>
        <name>南京市某医院</name>
      </representedCustodianOrganization>
    </assignedCustodian>
  </custodian>
  {event}
  {encounter}
  <component>
    <structuredBody>
      {body}
    </structuredBody>
  </component>
</ClinicalDocument>
""".encode()


def encounter(
    no: str, start: datetime, *, kind: str = "AMB", end: datetime | None = None, extra: str = ""
) -> str:
    high = f'<high value="{ts(end)}"/>' if end else ""
    return f"""<componentOf><encompassingEncounter>
    <id root="2.16.156.10011.1.11" extension="{no}"/>
    <code code="{kind}" codeSystem="2.16.840.1.113883.5.4"/>
    <effectiveTime><low value="{ts(start)}"/>{high}</effectiveTime>
    {extra}
    <location><healthCareFacility>
      <serviceProviderOrganization>
        <id root="2.16.156.10011.1.26" extension="03"/>
      </serviceProviderOrganization>
    </healthCareFacility></location>
  </encompassingEncounter></componentOf>"""


def service_event(no: str, code: str, name: str, at: datetime) -> str:
    return f"""<documentationOf><serviceEvent>
    <id root="2.16.156.10011.1.32" extension="{no}"/>
    <code code="{code}" displayName="{name}"/>
    <effectiveTime><low value="{ts(at)}"/></effectiveTime>
  </serviceEvent></documentationOf>"""


def section(code: str, title: str, entries: str) -> str:
    return f"""<component><section>
        <code code="{code}" codeSystem="2.16.840.1.113883.6.1"/><title>{title}</title>
        {entries}
      </section></component>"""


def obs(de: str, value: str) -> str:
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
          <code code="{de}" codeSystem="2.16.156.10011.2.2.1"/>{value}</observation></entry>"""


@pytest.fixture()
def visit_docs(inst):  # type: ignore[no-untyped-def]
    """A 病历概要 and a 门（急）诊病历 of one patient's visit an hour ago."""
    at = local_now().replace(tzinfo=None, microsecond=0) - timedelta(hours=1)
    pid, vno = unique("CP"), unique("CV")
    summary = cda(
        part=1, code="C0001", title="病历概要", org=inst, doc_id=unique("D"), patient_id=pid, effective=at
    )
    body = section(
        "10154-3",
        "主诉章节",
        obs("DE04.01.119.00", '<value xsi:type="ST">头痛 3 天</value>'),
    ) + section(
        "29548-5",
        "诊断记录章节",
        obs(
            "DE05.01.024.00",
            '<value xsi:type="CD" code="I10" displayName="原发性高血压"'
            ' codeSystem="2.16.156.10011.2.3.3.11"/>',
        )
        + obs("DE07.00.004.00", '<value xsi:type="MO" value="128.50" currency="元"/>'),
    )
    visit = cda(
        part=2,
        code="C0002",
        title="门（急）诊病历",
        org=inst,
        doc_id=unique("D"),
        patient_id=pid,
        effective=at + timedelta(minutes=20),
        encounter=encounter(vno, at),
        body=body,
    )
    return {"at": at, "pid": pid, "vno": vno, "summary": summary, "visit": visit}


def _post(client, h, doc: bytes):  # type: ignore[no-untyped-def]
    return client.post(URL, headers={**h, "content-type": "application/xml"}, content=doc)


def test_outpatient_lab_exam_documents(client, auth, inst, visit_docs):  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=inst)
    at, pid, vno = visit_docs["at"], visit_docs["pid"], visit_docs["vno"]
    r = _post(client, h, visit_docs["summary"])
    assert r.status_code == 201, r.text
    assert r.json()["doc_type"] == "C0001" and r.json()["receipt"]["totals"]["accepted"] == 1
    r = _post(client, h, visit_docs["visit"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["doc_type_label"] == "门（急）诊病历" and body["new_document"] is True
    assert body["receipt"]["channel"] == "cda"
    assert body["receipt"]["tables"][0]["table"] == "outpatient_visit"
    assert body["receipt"]["totals"]["accepted"] == 1, body["receipt"]["problems"]

    lab_body = section(
        "30954-2",
        "检验章节",
        """<entry><observation classCode="OBS" moodCode="EVN">
            <code code="HGB" displayName="血红蛋白" codeSystem="2.16.156.10011.2.3.2.26"/>
            <value xsi:type="PQ" value="135" unit="g/L"/>
            <interpretationCode code="N"/>
            <referenceRange><observationRange><value xsi:type="IVL_PQ">
              <low value="120" unit="g/L"/><high value="160" unit="g/L"/>
            </value></observationRange></referenceRange>
          </observation></entry>
          <entry><observation classCode="OBS" moodCode="EVN">
            <code code="WBC" displayName="白细胞计数"/><value xsi:type="PQ" value="11.2" unit="10^9/L"/>
            <interpretationCode code="H"/>
          </observation></entry>""",
    ) + section(
        "11450-4", "标本章节", obs("DE04.50.134.00", '<value xsi:type="CD" code="1" displayName="血液"/>')
    )
    lab = cda(
        part=7,
        code="C0007",
        title="检验报告",
        org=inst,
        doc_id=unique("D"),
        patient_id=pid,
        effective=at + timedelta(minutes=40),
        encounter=encounter(vno, at),
        event=service_event(unique("LR"), "CBC", "血常规", at + timedelta(minutes=25)),
        body=lab_body,
    )
    r = _post(client, h, lab)
    assert r.status_code == 201, r.text
    t = {x["table"]: x for x in r.json()["receipt"]["tables"]}
    assert t["lab_report"]["accepted"] == 1 and t["lab_result"]["accepted"] == 2, r.json()["receipt"][
        "problems"
    ]

    exam_body = section(
        "30954-2",
        "检查章节",
        obs("DE02.10.028.00", '<value xsi:type="CD" code="CT" displayName="CT"/>')
        + obs("DE04.30.009.00", '<value xsi:type="ST">颅内未见明显异常密度影。</value>')
        + obs("DE04.50.131.00", '<value xsi:type="ST">头颅 CT 平扫未见异常。</value>'),
    )
    exam = cda(
        part=6,
        code="C0006",
        title="检查报告",
        org=inst,
        doc_id=unique("D"),
        patient_id=pid,
        effective=at + timedelta(minutes=50),
        encounter=encounter(vno, at),
        event=service_event(unique("ER"), "CT001", "头颅 CT 平扫", at + timedelta(minutes=30)),
        body=exam_body,
    )
    r = _post(client, h, exam)
    assert r.status_code == 201, r.text
    assert r.json()["receipt"]["totals"]["accepted"] == 1, r.json()["receipt"]["problems"]

    # the same document again: kept once, its record a duplicate
    r = _post(client, h, exam)
    assert r.status_code == 201 and r.json()["new_document"] is False
    assert r.json()["receipt"]["totals"]["duplicate"] == 1

    counts = client.get(f"{URL}/counts", headers=h).json()["items"]
    got = {c["doc_type"]: c["documents"] for c in counts if c["institution_code"] == inst}
    assert all(got.get(k, 0) >= 1 for k in ("C0001", "C0002", "C0006", "C0007"))


def test_admission_and_discharge_summary(client, auth, inst, visit_docs):  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=inst)
    at, pid = visit_docs["at"] - timedelta(hours=5), visit_docs["pid"]
    assert _post(client, h, visit_docs["summary"]).status_code == 201
    ano = unique("CA")
    adm = cda(
        part=34,
        code="C0034",
        title="入院记录",
        org=inst,
        doc_id=unique("D"),
        patient_id=pid,
        effective=at + timedelta(minutes=30),
        encounter=encounter(ano, at, kind="IMP"),
        body=section(
            "11535-2",
            "入院诊断章节",
            obs("DE02.10.049.00", '<value xsi:type="CD" code="1" displayName="门诊"/>')
            + obs("DE05.01.024.00", '<value xsi:type="CD" code="J18.9" displayName="肺炎"/>'),
        ),
    )
    r = _post(client, h, adm)
    assert r.status_code == 201 and r.json()["receipt"]["totals"]["accepted"] == 1, r.text
    end = at + timedelta(hours=4)
    summary = cda(
        part=53,
        code="C0053",
        title="出院小结",
        org=inst,
        doc_id=unique("D"),
        patient_id=pid,
        effective=end + timedelta(minutes=10),
        encounter=encounter(ano, at, kind="IMP", end=end, extra='<dischargeDispositionCode code="1"/>'),
        body=section(
            "11535-2",
            "出院诊断章节",
            obs("DE05.01.024.00", '<value xsi:type="CD" code="J18.9" displayName="肺炎"/>')
            + obs("DE07.00.004.00", '<value xsi:type="MO" value="8650.20" currency="元"/>')
            + obs("DE06.00.296.00", '<value xsi:type="ST">抗感染治疗，好转出院。</value>')
            + obs("DE06.00.287.00", '<value xsi:type="ST">注意休息，一周后门诊复查。</value>'),
        ),
    )
    r = _post(client, h, summary)
    assert r.status_code == 201, r.text
    t = r.json()["receipt"]["tables"]
    assert t[0]["table"] == "discharge_summary" and t[0]["accepted"] == 1, r.json()["receipt"]["problems"]


def test_record_problems_are_listed(client, auth, inst, visit_docs):  # type: ignore[no-untyped-def]
    """A document whose record breaks a rule is still kept; the record is rejected with its rule."""
    h = auth("uploader", institution=inst)
    bad = visit_docs["visit"].replace(b'code="I10"', b'code="ZZZ"')  # no patient stored, bad ICD-10 code
    r = _post(client, h, bad)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["new_document"] is True and body["receipt"]["totals"]["rejected"] == 1
    assert body["receipt"]["problems"][0]["rule"] in ("code", "orphan")


def test_bad_documents_get_precise_problems(client, auth, inst, inst2, visit_docs):  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=inst)

    def check(content: bytes, status: int, code: str) -> None:
        r = _post(client, h, content)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == code, r.json()
        assert r.json()["detail"]

    check(b"<ClinicalDocument><unclosed></ClinicalDocument>", 400, "bad-xml")
    check(b"", 400, "empty-body")
    check(b"<?xml version='1.0'?><Bundle xmlns='http://hl7.org/fhir'/>", 422, "not-cda")
    check(
        b'<ClinicalDocument xmlns="urn:hl7-org:v3"><templateId root="1.2.3"/></ClinicalDocument>',
        422,
        "cda-type",
    )
    lol = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b'<ClinicalDocument xmlns="urn:hl7-org:v3">&lol2;</ClinicalDocument>'
    )
    check(lol, 400, "xml-dtd")
    xxe = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    check(xxe, 400, "xml-dtd")
    other = visit_docs["visit"].replace(f'extension="{inst}"'.encode(), f'extension="{inst2}"'.encode())
    check(other, 403, "other-institution")
    r = client.post(URL, headers={**h, "content-length": str(10**9)}, content=b"<x/>")
    assert r.status_code == 413
    # nothing of the refused documents was kept
    counts = client.get(f"{URL}/counts", headers=h).json()["items"]
    assert all(c["institution_code"] == inst for c in counts)


def test_uploader_of_another_institution_is_refused(client, auth, inst, inst2, visit_docs):  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=inst)
    r = client.post(URL, headers=h, params={"institution": inst2}, content=visit_docs["summary"])
    assert r.status_code == 403 and r.json()["code"] == "other-institution"
