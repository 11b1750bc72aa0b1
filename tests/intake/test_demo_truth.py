"""The synthetic month through intake, checked against the synthetic city's ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import or_, select

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.intake import demo, reading
from rhip.intake.models import IntakeBatch, IntakeProblem
from rhip.registry import catalogue

pytestmark = pytest.mark.slow
ROW_RULES = catalogue.validation().row_rules


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rhip.synth import service as synth

    out = tmp_path_factory.mktemp("synth")
    synth.generate(month="2025-03", scale=0.001, seed=11, out=out, gbk_share=0.3, console=None)
    return out


def _parents_missing(synth_dir: Path, orgs: set[str]) -> set[tuple[str, str, str]]:
    """(org, table, key) of rows whose linked parent is in no upload file at all (a synthetic-city gap)."""
    out: set[tuple[str, str, str]] = set()
    for org in orgs:
        folder = synth_dir / "uploads" / org
        frames = {
            p.name: pl.read_csv(p, infer_schema=False, encoding="utf8-lossy")
            for p in sorted(folder.glob("*.csv"))
        }
        by_table: dict[str, list[pl.DataFrame]] = {}
        for name, df in frames.items():
            by_table.setdefault(reading.table_for_filename(name), []).append(df)
        for table, dfs in by_table.items():
            ds = catalogue.get(table)
            df = pl.concat(dfs, how="diagonal")
            for link in ds.links:
                if link.dataset not in by_table or len(link.fields) != 1:
                    continue
                parent = pl.concat(by_table[link.dataset], how="diagonal").get_column(link.target_fields[0])
                bad = df.filter(
                    pl.col(link.fields[0]).is_not_null() & ~pl.col(link.fields[0]).is_in(parent.implode())
                )
                for key in (
                    bad.select(pl.concat_str(list(ds.business_key), separator="|")).to_series().to_list()
                ):
                    out.add((org, table, key))
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_month_matches_ground_truth(
    synth_dir: Path, settings: Settings, tmp_path: Path, workers: int
) -> None:
    """Every planted defect rejected with its rule, nothing else; every file row received once — in one
    process, and with institutions side by side in two (`rhip demo`'s workers)."""
    own = Settings(data_dir=tmp_path / "var", database_url=settings.database_url, secret_key="x" * 40)
    from rhip.db.engine import upgrade
    from rhip.registry import service as registry

    upgrade(own.resolved_database_url)
    setup = Database.from_settings(own)
    with setup.session() as s, s.begin():
        registry.ensure_loaded(s)
    setup.dispose()
    truth = pl.read_parquet(synth_dir / "ground_truth" / "defects.parquet")
    orgs = set(truth.get_column("org_code").unique().sort().to_list()[:4])
    truth = truth.filter(pl.col("org_code").is_in(list(orgs)))
    from rhip.fhir.demo import sender

    # every way in: batch files, real-time posts, FHIR Bundles, CDA documents (as `rhip demo` runs it)
    ways: dict[str, Any] = {"fhir": sender(own)} if workers == 1 else {"fhir_factory": sender}
    got = demo.ingest_month(
        settings=own,
        synth_dir=synth_dir,
        institutions=orgs,
        cda_per_org=2,
        fhir_rows=150,
        workers=workers,
        **ways,
    )
    assert len(got["receipts"]) == len(set(got["receipts"]))
    assert got["channels"]["fhir"] > 0 and got["channels"]["cda"] > 0 and got["channels"]["realtime"] > 0
    assert got["cda_documents"] == got["channels"]["cda"] and got["fhir_resources"] > 0
    db = Database.from_settings(own)
    with db.session() as s:
        rows = s.execute(
            select(
                IntakeBatch.institution_code,
                IntakeProblem.table_name,
                IntakeProblem.business_key,
                IntakeProblem.rule,
            )
            .join(IntakeBatch, IntakeBatch.id == IntakeProblem.batch_id)
            .where(IntakeBatch.id.in_(got["receipts"]))
        ).all()
    db.dispose()
    found = {tuple(r) for r in rows}
    gap = _parents_missing(synth_dir, orgs)
    planted = {
        tuple(r)
        for r in truth.filter(pl.col("rule").is_in(ROW_RULES))
        .select("org_code", "table", "business_key", "rule")
        .iter_rows()
    }
    # every planted defect rejected with the right rule (rows with no parent anywhere are orphans first)
    missing = {p for p in planted if p not in found and (p[0], p[1], p[2]) not in gap}
    assert not missing, sorted(missing)[:10]
    # nothing valid rejected
    extra = {f for f in found if f not in planted and not (f[3] == "orphan" and (f[0], f[1], f[2]) in gap)}
    assert not extra, sorted(extra)[:10]
    t = got["totals"]
    gap_events = truth.filter(
        pl.struct("org_code", "table", "business_key").map_elements(
            lambda r: (r["org_code"], r["table"], r["business_key"]) in gap, return_dtype=pl.Boolean
        )
    )
    n = dict(truth.group_by("rule").len().iter_rows())
    g = dict(gap_events.group_by("rule").len().iter_rows())
    assert t.duplicate == n.get("duplicate", 0) - g.get("duplicate", 0)
    assert t.updated == n.get("modified", 0) - g.get("modified", 0)
    assert t.revoked == n.get("revoked", 0) - g.get("revoked", 0)
    # the records that went in as CDA/FHIR are stored once, as clean records (every file row accounted for)
    rows = sum(
        pl.scan_csv(p, infer_schema=False, encoding="utf8-lossy").select(pl.len()).collect().item()
        for org in orgs
        for p in (synth_dir / "uploads" / org).glob("*.csv")
    )
    assert t.received == rows
    from rhip.intake.models import CdaDocument

    db = Database.from_settings(own)
    with db.session() as s:
        # by institution, not receipt: on PostgreSQL the database outlives one parametrised run, and a
        # document already kept (same institution and id) is not kept again
        demo_docs = or_(*[CdaDocument.document_id.startswith(f"{o}-") for o in orgs])  # ids the demo gives
        kept = s.scalars(
            select(CdaDocument.doc_type).where(CdaDocument.institution_code.in_(orgs), demo_docs)
        ).all()
    db.dispose()
    assert kept == ["C0053"] * got["cda_documents"]
