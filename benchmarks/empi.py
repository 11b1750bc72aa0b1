"""EMPI benchmark: accuracy against the EMPI test city's truth and the exact-ID baseline, the curve as each
variant rate doubles, full-link records/s with its growth curve, incremental link p50/p99 with records
stored, and Patient/$match p99 through HTTP. Writes results/empi.json.

    .venv/bin/python benchmarks/empi.py [--persons 50000] [--curve-persons 10000]
        [--full 10000,100000,500000] [--stored 500000] [--quick]
        [--parts accuracy,curves,full,stored,relink] [--relink 2000000]

`relink` times the whole job `rhip identity link --full` runs (`fulllink.relink_all`: read the stored
records, splink predict, cluster, write back, review queue) on a fresh PostgreSQL database
(RHIP_BENCH_POSTGRES_URL, default the local server) holding the --relink records, stage by stage.

Targets (issue 15): auto-link pairwise precision >= 0.999 and recall >= 0.99, review queue <= 1% of
records; 2 million records fully linked in under 2 minutes; incremental p99 < 20 ms with 2 million
stored; $match p99 < 50 ms through HTTP.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.identity import evaluate, service as svc, train
from rhip.identity.linker import default_bands
from rhip.synth import identities

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RAW = ["id_number", "name", "birth_date", "sex", "phone", "district"]
TARGET_RECORDS, TARGET_SECONDS = 2_000_000, 120.0


def features(table: pa.Table) -> tuple[pa.Table, float]:
    """The splink input of a records table, and the seconds deriving it took."""
    t0 = time.perf_counter()
    ft = train.feature_rows(table.select(RAW).to_pylist())
    return ft, time.perf_counter() - t0


def review_items(pairs: pa.Table, clusters: list[int], auto: float) -> int:
    """Review items as the full link makes them: one per (record, other cluster) below auto."""
    items = set()
    for a, b, p in zip(
        pairs.column("unique_id_l").to_pylist(),
        pairs.column("unique_id_r").to_pylist(),
        pairs.column("match_probability").to_pylist(),
        strict=True,
    ):
        if p < auto and clusters[a] != clusters[b]:
            items.add((max(a, b), clusters[min(a, b)]))
    return len(items)


def accuracy_run(n_persons: int, rates: identities.IdentityRates, seed: int) -> dict[str, Any]:
    """Link one synthetic city in full and compare with its truth and the exact-ID baseline."""
    bands = default_bands()
    city = identities.make(n_persons, seed=seed, rates=rates)
    rec = city.records
    ft, feat_s = features(rec)
    t0 = time.perf_counter()
    pairs = train.predict(ft, threshold=min(0.1, bands.review))
    predict_s = time.perf_counter() - t0
    truth = rec.column("person").to_pylist()
    clusters = train.clusters(pairs, rec.num_rows, bands.auto)
    acc = evaluate.accuracy(clusters, truth)
    base = evaluate.accuracy(evaluate.exact_id_baseline(rec.column("id_number").to_pylist()), truth)
    curve = []
    for thr in (0.5, 0.9, 0.99, 0.995, 0.999, 0.9999):
        a = evaluate.accuracy(train.clusters(pairs, rec.num_rows, thr), truth)
        curve.append({"threshold": thr, "precision": a.precision, "recall": a.recall, "f1": a.f1})
    reviews = review_items(
        pairs.filter(pa.compute.greater_equal(pairs["match_probability"], bands.review)), clusters, bands.auto
    )
    return {
        "persons": n_persons,
        "records": rec.num_rows,
        "auto": acc.as_dict(),
        "baseline_exact_id": base.as_dict(),
        "review_items": reviews,
        "review_share": reviews / rec.num_rows,
        "threshold_curve": curve,
        "features_s": round(feat_s, 2),
        "predict_s": round(predict_s, 2),
    }


def variant_curves(n_persons: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    """For each of four variants: its rate doubled three times (the others at their defaults)."""
    base = identities.IdentityRates()
    out: dict[str, list[dict[str, Any]]] = {}
    for name in ("homophone", "missing_id", "id_typo", "other_phone"):
        rows = []
        for factor in (1, 2, 4, 8):
            rates = identities.IdentityRates(**{**base.__dict__, name: getattr(base, name) * factor})
            r = accuracy_run(n_persons, rates, seed)
            rows.append(
                {
                    "rate": getattr(rates, name),
                    "precision": r["auto"]["precision"],
                    "recall": r["auto"]["recall"],
                    "baseline_recall": r["baseline_exact_id"]["recall"],
                    "review_share": r["review_share"],
                }
            )
            print(
                f"  {name:12s} rate {getattr(rates, name):.3f}: P {rows[-1]['precision']:.5f} "
                f"R {rows[-1]['recall']:.5f} (ID-only R {rows[-1]['baseline_recall']:.4f})",
                flush=True,
            )
        out[name] = rows
    return out


def full_link_curve(sizes: list[int], seed: int) -> tuple[list[dict[str, Any]], pa.Table, pa.Table]:
    """Records/s of the full link (splink predict + clustering) at growing sizes; features are derived
    beforehand (the SQL rows already hold them). Returns the curve and the largest city's tables."""
    bands = default_bands()
    curve = []
    last_rec = last_ft = pa.table({})
    for size in sizes:
        city = identities.make(max(1, int(size / 2)), seed=seed)  # about two records per person
        rec = city.records
        ft, feat_s = features(rec)
        t0 = time.perf_counter()
        pairs = train.predict(ft, threshold=bands.review)
        t1 = time.perf_counter()
        train.clusters(pairs, rec.num_rows, bands.auto)
        t2 = time.perf_counter()
        row = {
            "records": rec.num_rows,
            "pairs": pairs.num_rows,
            "predict_s": round(t1 - t0, 2),
            "cluster_s": round(t2 - t1, 2),
            "link_s": round(t2 - t0, 2),
            "records_per_s": round(rec.num_rows / (t2 - t0)),
            "features_s": round(feat_s, 2),
            "features_per_s": round(rec.num_rows / feat_s),
        }
        curve.append(row)
        print(
            f"  full link {row['records']:>9,} records: {row['link_s']:7.1f} s, "
            f"{row['records_per_s']:>8,}/s (features {row['features_per_s']:,}/s)",
            flush=True,
        )
        last_rec, last_ft = rec, ft
    return curve, last_rec, last_ft


_STORE_COLUMNS = (
    "institution_code", "local_id", "person_id", "source", "name_raw", "birth_date", "sex", "phone",
    "district", "name", "py", "py_loose", "id_number", "id_valid", "key_name_birth", "key_birth_district",
    "band", "probability", "linked_by", "pinned", "linked_at", "updated_at",
)  # fmt: skip


def _store(db: Database, rec: pa.Table, ft: pa.Table) -> None:
    """Bulk-load a linked city (persons from the truth) into identity tables, as the full link leaves it."""
    from datetime import date

    from rhip.db import bulk

    persons = sorted({f"P{p:016d}" for p in rec.column("person").to_pylist()})
    cols = ft.to_pydict()
    inst = rec.column("institution_code").to_pylist()
    local = rec.column("local_id").to_pylist()
    person = rec.column("person").to_pylist()
    when = _now()
    with db.session() as s, s.begin():
        conn = s.connection()
        bulk.fill(conn, "identity_persons", ("id", "status", "created_at", "updated_at"),
                  ((p, "active", when, when) for p in persons))  # fmt: skip

        def rows() -> Any:
            for i in range(rec.num_rows):
                bd = cols["birth_date"][i]
                yield (
                    inst[i], local[i], f"P{person[i]:016d}", "bench", cols["name"][i],
                    date.fromisoformat(bd) if bd else None, cols["sex"][i], cols["phone"][i],
                    cols["district"][i], cols["name"][i], cols["py"][i], cols["py_loose"][i],
                    cols["id_number"][i], cols["id_number"][i] is not None, cols["key_name_birth"][i],
                    cols["key_birth_district"][i], "auto", 1.0, "bench", False, when, when,
                )  # fmt: skip

        bulk.fill(conn, "identity_records", _STORE_COLUMNS, rows())


def relink_pg(n_records: int, seed: int, keep: str | None = None) -> dict[str, Any]:
    """The whole full re-link job on PostgreSQL with n_records stored, stage by stage (wall and CPU).
    With `keep`, the database of that name is kept and reused by the next run (loaded once)."""
    import uuid

    from sqlalchemy import create_engine, text

    from rhip.identity import fulllink

    base = os.environ.get("RHIP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = keep or f"rhip_empi_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        db = Database(url)
        if not exists:
            city = identities.make(max(1, n_records // 2), seed=seed)
            ft, _ = features(city.records)
            upgrade(url)
            _store(db, city.records, ft)
        with db.session() as s, s.begin():  # as intake's incremental links leave it: no splink scores yet
            s.execute(text("DELETE FROM identity_reviews"))
            s.execute(text("UPDATE identity_records SET probability = 0.0, band = 'new'"))
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM FULL ANALYZE identity_records"))  # packed, as freshly loaded
        stages: dict[str, dict[str, float]] = {}
        last = [time.perf_counter(), time.process_time()]

        def tick(stage: str, done: int, total: int) -> None:
            w, c = time.perf_counter(), time.process_time()
            stages[stage] = {"wall_s": round(w - last[0], 2), "cpu_s": round(c - last[1], 2)}
            last[:] = [w, c]

        t0 = time.perf_counter()
        with db.session() as s, s.begin():
            summary = fulllink.relink_all(s, progress=tick)
        wall = time.perf_counter() - t0
        db.dispose()
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return {
        "records": summary.records,
        "persons": summary.persons,
        "seconds": round(wall, 1),
        "records_per_s": round(summary.records / wall),
        "stages": stages,
        "projected_2m_s": round(wall / summary.records * TARGET_RECORDS, 1),
        "load": open("/proc/loadavg").read().split()[:3],
    }


def _now() -> Any:
    from rhip.clock import now

    return now()


def _pcts(samples: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(samples, n=100)
    return {"p50_ms": round(qs[49] * 1000, 2), "p99_ms": round(qs[98] * 1000, 2), "n": len(samples)}


def incremental(db: Database, new: pa.Table, n: int) -> dict[str, Any]:
    """link_record for n new records, one transaction each (as a real-time form arrives)."""
    times = []
    for r in new.slice(0, n).to_pylist():
        t0 = time.perf_counter()
        with db.session() as s, s.begin():
            svc.link_record(
                s,
                institution_code="BENCH",
                local_id=f"{r['institution_code']}-{r['local_id']}",
                id_number=r["id_number"],
                name=r["name"],
                birth_date=r["birth_date"],
                sex=r["sex"],
                phone=r["phone"],
                district=r["district"],
                source="bench",
            )
        times.append(time.perf_counter() - t0)
    return _pcts(times)


def match_http(data_dir: Path, secret: str, new: pa.Table, n: int) -> dict[str, Any]:
    """Patient/$match p50/p99 through HTTP against `rhip serve` (one client, sequential)."""
    import socket

    from rhip.security.service import issue_token

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "RHIP_DATA_DIR": str(data_dir),
        "RHIP_SECRET_KEY": secret,
        "RHIP_LOG_LEVEL": "WARNING",
    }
    env.pop("RHIP_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rhip.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        headers = {"Authorization": f"Bearer {issue_token(secret, subject='bench', role='doctor')}"}
        times = []
        certain = 0
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            for r in new.slice(0, n).to_pylist():
                patient: dict[str, Any] = {
                    "resourceType": "Patient",
                    "name": [{"text": r["name"]}],
                    "gender": "male" if r["sex"] == "1" else "female",
                }
                if r["birth_date"]:
                    patient["birthDate"] = r["birth_date"].isoformat()
                if r["id_number"]:
                    patient["identifier"] = [
                        {"system": "urn:oid:2.16.156.10011.1.3", "value": r["id_number"]}
                    ]
                body = {
                    "resourceType": "Parameters",
                    "parameter": [
                        {"name": "resource", "resource": patient},
                        {"name": "count", "valueInteger": 5},
                    ],
                }
                t0 = time.perf_counter()
                got = c.post("/fhir/r4/Patient/$match", json=body)
                times.append(time.perf_counter() - t0)
                got.raise_for_status()
                entries = got.json().get("entry") or []
                certain += bool(entries and entries[0]["search"]["extension"][0]["valueCode"] == "certain")
        return {**_pcts(times), "top_is_certain": certain}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> int:
    """Run every part, print the figures against their targets, write results/empi.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=50_000, help="persons in the accuracy city")
    ap.add_argument("--curve-persons", type=int, default=10_000, help="persons per variant-curve city")
    ap.add_argument("--full", default="10000,100000,500000", help="record counts of the full-link curve")
    ap.add_argument("--incremental", type=int, default=1000, help="new records linked one by one")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--parts", default="accuracy,curves,full,stored", help="which parts to run")
    ap.add_argument("--relink", type=int, default=2_000_000, help="records stored for the relink part")
    ap.add_argument("--relink-keep", default=None, help="keep (and reuse) the relink database of this name")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if args.quick:
        args.persons, args.curve_persons, args.full, args.incremental = 3000, 1500, "5000,20000", 200
    started = time.perf_counter()
    bands = default_bands()
    out: dict[str, Any] = {
        "machine": f"{platform.node()} · {os.cpu_count()} cores",
        "load_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "bands": {"auto": bands.auto, "review": bands.review},
    }
    ok = True
    if "accuracy" in parts:
        print(f"accuracy: {args.persons:,} persons", flush=True)
        acc = accuracy_run(args.persons, identities.IdentityRates(), args.seed)
        out["accuracy"] = acc
        a, b = acc["auto"], acc["baseline_exact_id"]
        print(
            f"  auto band: pairwise P {a['precision']:.5f} R {a['recall']:.5f} F1 {a['f1']:.5f}; "
            f"cluster F1 {a['cluster_f1']:.4f}\n"
            f"  exact-ID baseline: P {b['precision']:.5f} R {b['recall']:.5f} F1 {b['f1']:.5f}\n"
            f"  review queue {acc['review_items']:,} items = {acc['review_share']:.2%} of "
            f"{acc['records']:,} records (target <= 1%)\n"
            f"  targets: P >= 0.999 {'met' if a['precision'] >= 0.999 else 'NOT met'}, "
            f"R >= 0.99 {'met' if a['recall'] >= 0.99 else 'NOT met'}; "
            f"recall {a['recall'] / max(b['recall'], 1e-9):.3f}x the baseline",
            flush=True,
        )
        ok = a["precision"] >= 0.999
    if "curves" in parts:
        print(f"variant curves: {args.curve_persons:,} persons per city", flush=True)
        out["variant_curves"] = variant_curves(args.curve_persons, args.seed)
    if "full" in parts or "stored" in parts:
        print("full link growth curve", flush=True)
        sizes = [int(x) for x in args.full.split(",") if x]
        curve, rec, ft = full_link_curve(sizes, args.seed)
        out["full_link"] = curve
        big = curve[-1]
        per_record = big["link_s"] / big["records"]
        projected = per_record * TARGET_RECORDS
        out["full_link_projection"] = {
            "records": TARGET_RECORDS,
            "seconds_projected_linear": round(projected, 1),
            "target_s": TARGET_SECONDS,
            "ratio_to_target": round(projected / TARGET_SECONDS, 2),
            "measured_up_to": big["records"],
        }
        print(
            f"  2,000,000 records projected (linear from {big['records']:,}): {projected:.0f} s "
            f"vs target {TARGET_SECONDS:.0f} s ({projected / TARGET_SECONDS:.2f}x)",
            flush=True,
        )
    if "stored" in parts:
        with tempfile.TemporaryDirectory(prefix="empi-bench-") as tmp:
            data_dir = Path(tmp)
            secret = "empi-bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
            settings = Settings(data_dir=data_dir, secret_key=secret)
            upgrade(settings.resolved_database_url)
            db = Database.from_settings(settings)
            t0 = time.perf_counter()
            _store(db, rec, ft)
            load_s = time.perf_counter() - t0
            held_out = identities.make(max(args.incremental, 100), seed=args.seed + 1).records
            print(f"incremental: {rec.num_rows:,} records stored (SQLite, loaded in {load_s:.0f} s)")
            inc = incremental(db, held_out, args.incremental)
            inc["stored_records"] = rec.num_rows
            out["incremental"] = inc
            print(
                f"  link_record p50 {inc['p50_ms']} ms, p99 {inc['p99_ms']} ms (target p99 < 20 ms)",
                flush=True,
            )
            db.dispose()
            m = match_http(data_dir, secret, rec.slice(0, 2000).take(list(range(0, 2000, 4))), 400)
            m["stored_records"] = rec.num_rows
            out["match_http"] = m
            print(
                f"  $match p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms over HTTP (target p99 < 50 ms); "
                f"top candidate certain {m['top_is_certain']}/{m['n']}",
                flush=True,
            )
    if "relink" in parts:
        print(f"full re-link job on PostgreSQL: {args.relink:,} records", flush=True)
        r = relink_pg(args.relink, args.seed, args.relink_keep)
        out["relink_job"] = r
        print(
            f"  {r['records']:,} records in {r['seconds']} s = {r['records_per_s']:,}/s; "
            "2,000,000 at this rate "
            f"{r['projected_2m_s']} s vs target {TARGET_SECONDS:.0f} s "
            f"({r['projected_2m_s'] / TARGET_SECONDS:.2f}x); load {' '.join(r['load'])}\n"
            + "".join(f"    {k}: {v['wall_s']} s wall, {v['cpu_s']} s CPU\n" for k, v in r["stages"].items()),
            flush=True,
        )
    out["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("empi-quick.json" if args.quick else "empi.json")
    path.write_text(json.dumps(out, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {path} in {out['seconds']} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
