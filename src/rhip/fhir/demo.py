"""The intake step of `rhip demo` with its FHIR share (cli.DEMO_STEPS).

intake's demo cannot import the FHIR facade (a higher layer), so this step drives it and passes in a
sender: a share of each institution's lab results goes in as FHIR `batch` Bundles of Observations, the
way a hospital's LIS would send them, through the same code as `POST /fhir/r4`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.fhir.elements import LOINC, extension_url
from rhip.fhir.intake import ingest_bundle
from rhip.intake import demo as intake_demo, service
from rhip.lake.store import Lake

BUNDLE_SIZE = 1000
POST_OBSERVATION = {"method": "POST", "url": "Observation"}
LOCAL_ITEMS = "urn:oid:2.16.156.10011.2.3.2.26"  # the hospital's own lab item codes


def _num(text: Any) -> int | float | None:
    """A FHIR decimal from text (integers stay integers, so '143' does not come back as '143.0')."""
    if text in (None, ""):
        return None
    s = str(text)
    try:
        return int(s) if s.lstrip("-").isdigit() else float(s)
    except ValueError:
        return None


def _instant(text: Any) -> str | None:
    """'YYYY-MM-DD HH:MM:SS' (Asia/Shanghai) → FHIR instant with +08:00."""
    return f"{str(text).replace(' ', 'T')}+08:00" if text else None


def observation(rec: dict[str, Any], n: int, *, canonical: str) -> dict[str, Any]:
    """A lab_result record as a FHIR R4 Observation (laboratory, final)."""
    coding = [{"system": LOCAL_ITEMS, "code": rec["item_code"], "display": rec.get("item_name")}]
    if rec.get("loinc_code"):
        coding.append({"system": LOINC, "code": rec["loinc_code"]})
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"{rec['report_no']}-{n}",
        "meta": {"lastUpdated": _instant(rec.get("updated_at"))},
        "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": coding, "text": rec.get("item_name")},
        "issued": _instant(rec.get("reported_at")),
        "extension": [{"url": extension_url(canonical, "report-no"), "valueString": rec["report_no"]}],
    }
    numeric = _num(rec.get("result_numeric"))
    if numeric is not None:
        res["valueQuantity"] = {"value": numeric, "unit": rec.get("unit")}
    else:
        res["valueString"] = rec.get("result_value")
    rng: dict[str, Any] = {}
    if rec.get("reference_low"):
        rng["low"] = {"value": _num(rec["reference_low"])}
    if rec.get("reference_high"):
        rng["high"] = {"value": _num(rec["reference_high"])}
    if rec.get("reference_range"):
        rng["text"] = rec["reference_range"]
    if rng:
        res["referenceRange"] = [rng]
    if rec.get("abnormal_flag"):
        res["interpretation"] = [{"coding": [{"code": rec["abnormal_flag"]}]}]
    return res


def sender(settings: Settings) -> intake_demo.FhirSender:
    """Send an institution's rows as FHIR batch Bundles (replaying each record's own 数据采集时间)."""
    db = Database.from_settings(settings)
    lake = Lake.from_settings(settings)
    canonical = settings.resolved_fhir_canonical

    def send(org: str, rows: pl.DataFrame) -> list[service.Receipt]:
        out = []
        for start in range(0, rows.height, BUNDLE_SIZE):
            recs = rows.slice(start, BUNDLE_SIZE).to_dicts()
            body = {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {"resource": observation(r, start + i, canonical=canonical), "request": POST_OBSERVATION}
                    for i, r in enumerate(recs)
                ],
            }
            got = ingest_bundle(
                db,
                lake,
                body,
                institution_code=org,
                submitted_by="demo",
                collected_at=[str(r["collected_at"]) for r in recs],
            )
            if got.receipt is not None:
                out.append(got.receipt)
        return out

    return send


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """Demo step: intake of the synthetic month, with its FHIR share."""
    return intake_demo.run(settings=settings, synth_dir=synth_dir, console=console, fhir_factory=sender)
