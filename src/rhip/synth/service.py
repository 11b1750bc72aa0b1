"""The synthetic city: generate a month of uploads calibrated to the bulletin, with a ground truth.

Output folder layout (see docs in the module docstring of each part):

    uploads/<org_code>/<table>.csv            the month's upload of one catalogue table (header = field names)
    uploads/<org_code>/<table>_<yyyymmdd>.csv the month-end correction batch: re-sends, 修改 (2), 撤销 (3)
    residents.parquet                          every resident of the synthetic city
    statistics_report.csv                      the 卫统 monthly report: each unit's TRUE visits and discharges
    record_usage.csv                           reported record-browser / smart-reminder usage (synth.usage)
    ground_truth/          what the platform must find (it never reads this folder)
        institutions.json  per unit: calibrated valid figures, rows sent, real-time days and forms
        tables.parquet     per unit and table: rows, valid, duplicates, modifications, revocations, defects
        defects.parquet    one row per planted defect or version event: unit, table, key, rule, field, file
        identities.parquet each patient record (unit + patient_id) → the person it truly is, its variant
        summary.json       totals, rates and the definitions used
    manifest.json          month, scale, seed, versions, every file with encoding, rows, sha256

One CSV per unit per table (not per day): real-time uploads are visible in 数据采集时间, which is
30 s–5 min after the event for rows sent in real time and 3–20 h after it for the scheduled batch.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rhip.errors import Invalid
from rhip.registry import catalogue
from rhip.registry.catalogue import Dataset
from rhip.synth import calibration, city, defects, residents, tables, usage, vec
from rhip.synth.defects import DefectRates
from rhip.synth.writer import CsvFile, FileEntry, sha256_file

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
RESIDENTS_PER_SCALE = 3_000_000  # residents of the synthetic city at scale 1.0
MIN_RESIDENTS = 5_000
KEY_SEP = "|"
FRESH_KEY_BASE = 9_000_000_000  # business-key numbers of extra (defective, revoked) records


@dataclass
class UnitResult:
    """One uploading unit's outcome (valid figures are what the platform should compute)."""

    code: str
    name: str
    kind: str
    encoding: str
    rows: int
    uploads_target: int
    visits: int
    visit_revenue_fen: int
    discharges: int
    inpatient_revenue_fen: int
    upload_days: list[int]
    forms: list[str]
    defects: dict[str, int]


@dataclass
class SynthResult:
    """What generate() made."""

    month: str
    source_month: str
    scale: float
    seed: int
    out: Path
    gbk_share: float
    residents: int
    rows: int
    files: int
    gbk_files: int
    seconds: float
    units: list[UnitResult] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    defects: dict[str, int] = field(default_factory=dict)


def _check_args(month: str, scale: float, out: Path, gbk_share: float) -> None:
    if not isinstance(month, str) or not MONTH_RE.match(month):
        raise Invalid(f"月份格式错误：{month!r}，应为 YYYY-MM（如 2025-03）", code="bad-month")
    if not isinstance(scale, int | float) or not np.isfinite(scale) or scale <= 0:
        raise Invalid(f"规模必须大于 0：{scale!r}", code="bad-scale")
    if scale > 2:
        raise Invalid(f"规模 {scale} 过大：最大为 2（1.0 即简报的全市数据量）", code="bad-scale")
    if not 0 <= gbk_share <= 1:
        raise Invalid(f"GBK 文件比例必须在 0 到 1 之间：{gbk_share!r}", code="bad-gbk-share")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".rhip-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise Invalid(f"输出目录不可写：{out}（{exc.strerror or exc}）", code="unwritable-output") from None


def _sround(x: float, gen: np.random.Generator) -> int:
    """Stochastic rounding: the expected value is x."""
    base = int(np.floor(x))
    return base + int(gen.random() < x - base)


def _keys(t: pa.Table, key: tuple[str, ...]) -> list[str]:
    if len(key) == 1:
        return [str(v) for v in t.column(key[0]).to_pylist()]
    cols = [t.column(k).cast(pa.string()) for k in key]
    return [str(v) for v in pc.binary_join_element_wise(*cols, KEY_SEP).to_pylist()]


def _runs(values: list[str]) -> list[tuple[str, int]]:
    """Run-length encoding of a list."""
    out: list[tuple[str, int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1] = (v, out[-1][1] + 1)
        else:
            out.append((v, 1))
    return out


class Truth:
    """Ground-truth sinks: defects and identities (Parquet, streamed), per-table counts."""

    DEFECT_SCHEMA = pa.schema(
        [
            ("org_code", pa.string()),
            ("table", pa.string()),
            ("business_key", pa.string()),
            ("rule", pa.string()),
            ("field", pa.string()),
            ("file", pa.string()),
        ]
    )
    IDENTITY_SCHEMA = pa.schema(
        [
            ("org_code", pa.string()),
            ("patient_id", pa.string()),
            ("person_id", pa.int64()),
            ("variant", pa.string()),
            ("valid", pa.bool_()),
        ]
    )

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.defects = pq.ParquetWriter(root / "defects.parquet", self.DEFECT_SCHEMA)
        self.identities = pq.ParquetWriter(root / "identities.parquet", self.IDENTITY_SCHEMA)
        self.table_rows: list[dict[str, Any]] = []
        self._defects: dict[str, list[str]] = {name: [] for name in self.DEFECT_SCHEMA.names}

    def defect(self, org: str, table: str, keys: list[str], rule: str, fields: list[str], file: str) -> None:
        """Record planted defects (one per key); buffered, written per unit by flush()."""
        n = len(keys)
        if n == 0:
            return
        buf = self._defects
        buf["org_code"].extend([org] * n)
        buf["table"].extend([table] * n)
        buf["business_key"].extend(keys)
        buf["rule"].extend([rule] * n)
        buf["field"].extend(fields)
        buf["file"].extend([file] * n)

    def flush(self) -> None:
        """Write the buffered defects."""
        if self._defects["org_code"]:
            self.defects.write_table(pa.table(self._defects, schema=self.DEFECT_SCHEMA))
        self._defects = {name: [] for name in self.DEFECT_SCHEMA.names}

    def identity(
        self,
        org: str,
        patient_ids: pa.Array,
        persons: np.ndarray,
        variants: list[str] | pa.Array,
        valid: bool,
    ) -> None:
        """Record which person each patient record is."""
        n = len(persons)
        if n == 0:
            return
        self.identities.write_table(
            pa.table(
                {
                    "org_code": [org] * n,
                    "patient_id": patient_ids,
                    "person_id": pa.array(persons, pa.int64()),
                    "variant": variants,
                    "valid": [valid] * n,
                },
                schema=self.IDENTITY_SCHEMA,
            )
        )

    def close(self) -> None:
        """Finish the Parquet files and write the per-table counts."""
        self.flush()
        self.defects.close()
        self.identities.close()
        rules = list(defects.ALL_RULES)
        cols: dict[str, list[Any]] = {
            k: [] for k in ["org_code", "table", "files", "rows", "valid", "realtime_rows", *rules]
        }
        for r in self.table_rows:
            for k in cols:
                cols[k].append(r.get(k, 0))
        pq.write_table(pa.table(cols), self.root / "tables.parquet")


class TableWriter:
    """Writes one unit's table: valid rows plus planted extras, versions and re-sends."""

    def __init__(self, run: Run, plan: city.Plan, unit: tables.Unit, ds: Dataset) -> None:
        self.run, self.plan, self.unit, self.ds = run, plan, unit, ds
        self.t = defects.targets(ds)
        self.main_rel = f"uploads/{plan.code}/{ds.name}.csv"
        last = np.datetime64(f"{run.month.month}-01") + np.timedelta64(run.month.days - 1, "D")
        self.later_rel = f"uploads/{plan.code}/{ds.name}_{str(last).replace('-', '')}.csv"
        self.main = CsvFile(
            run.out,
            self.main_rel,
            list(ds.field_names),
            encoding=plan.encoding,
            org_code=plan.code,
            table=ds.name,
        )
        self.later: CsvFile | None = None
        self.counter = 0
        self.ghost_next = unit.act.n_stays
        self.counts: Counter[str] = Counter()
        self.valid = 0
        self.rt_rows = 0
        self.rt_days: set[int] = set()

    # -------------------------------------------------------------- helpers

    def _later(self) -> CsvFile:
        if self.later is None:
            self.later = CsvFile(
                self.run.out,
                self.later_rel,
                list(self.ds.field_names),
                encoding=self.plan.encoding,
                org_code=self.plan.code,
                table=self.ds.name,
            )
        return self.later

    def _fresh(self, rows: pa.Table) -> pa.Table:
        """New business keys for copies (extra records), keeping every link intact."""
        key, n = self.t.key, rows.num_rows
        if n == 0:
            return rows
        if self.t.key_is_link:
            ghosts = len(self.unit.act.s_admit)
            take = min(n, ghosts - self.ghost_next)
            rows = rows.slice(0, max(take, 0))
            ids = np.arange(self.ghost_next, self.ghost_next + rows.num_rows)
            self.ghost_next += rows.num_rows
            name = key[0]
            return rows.set_column(rows.schema.get_field_index(name), name, vec.padded(ids + 1, 10, "ZY"))
        if len(key) == 1:
            name = key[0]
            col = rows.column(name).combine_chunks()
            prefix = pc.utf8_slice_codeunits(col, 0, -10)
            num = vec.padded(FRESH_KEY_BASE + self.counter + np.arange(n), 10)
            self.counter += n
            return rows.set_column(
                rows.schema.get_field_index(name), name, pc.binary_join_element_wise(prefix, num, "")
            )
        name = key[-1]
        f = self.ds.field(name)
        col = rows.column(name).combine_chunks()
        if f.type == "integer":
            new = vec.text(np.asarray(pc.cast(col, pa.int64())) + 500)
        else:
            new = pc.binary_join_element_wise(col, pa.scalar("-R"), "")
        return rows.set_column(rows.schema.get_field_index(name), name, new)

    def _later_times(self, rows: pa.Table, gen: np.random.Generator, flag: str) -> pa.Table:
        """The same records sent again later: newer 数据采集时间 and 数据更新时间, a change flag."""
        n = rows.num_rows
        c = defects.seconds(rows.column("collected_at"))
        new_c = c + gen.integers(30, 240, size=n)
        new_u = new_c - gen.integers(1, 20, size=n)
        rows = rows.set_column(
            rows.schema.get_field_index("collected_at"), "collected_at", vec.datetimes(new_c)
        )
        rows = rows.set_column(rows.schema.get_field_index("updated_at"), "updated_at", vec.datetimes(new_u))
        return rows.set_column(
            rows.schema.get_field_index("change_flag"), "change_flag", pa.array([flag] * n, pa.string())
        )

    def _older(self, rows: pa.Table) -> pa.Table:
        """A modified record's first version: differs from the final one in one field."""
        name = self.t.alter
        if name is None or rows.num_rows == 0:
            return rows
        f = self.ds.field(name)
        col = rows.column(name).combine_chunks()
        if f.type == "decimal":
            v = np.asarray(pc.cast(col, pa.float64()).fill_null(0.0))
            new = vec.decimal(np.abs(v) * 0.9, 2)
        else:
            new = pc.binary_join_element_wise(
                pc.utf8_slice_codeunits(col.fill_null(""), 0, 40), pa.scalar("（待修改）"), ""
            )
        return rows.set_column(rows.schema.get_field_index(name), name, new)

    # -------------------------------------------------------------- one chunk

    def add(
        self, tbl: pa.Table, rt: np.ndarray, collected: np.ndarray, patient: np.ndarray | None, lo: int
    ) -> None:
        """Write a chunk of valid rows and everything planted on top of it."""
        run, ds, rates = self.run, self.ds, self.run.rates
        gen = vec.rng(run.seed, "defects", self.plan.code, ds.name, lo)
        n = tbl.num_rows
        self.valid += n
        in_month = rt & (collected >= run.month.start) & (collected < run.month.end)
        self.rt_rows += int(in_month.sum())
        if in_month.any():
            self.rt_days.update(np.unique((collected[in_month] - run.month.start) // city.DAY).tolist())

        perm = gen.permutation(n)
        k_mod = min(n, _sround(n * rates.modified, gen))
        k_dup = min(n - k_mod, _sround(n * rates.duplicate, gen))
        mod_idx, dup_idx = np.sort(perm[:k_mod]), np.sort(perm[k_mod : k_mod + k_dup])

        main_parts: list[pa.Table] = []
        later_parts: list[pa.Table] = []
        keep = np.ones(n, dtype=bool)
        keep[mod_idx] = False
        main_parts.append(tbl.filter(pa.array(keep)))
        if k_mod:
            src = tbl.take(pa.array(mod_idx))
            main_parts.append(self._older(src))
            later_parts.append(self._later_times(src, gen, "2"))
            run.truth.defect(
                self.plan.code,
                ds.name,
                _keys(src, self.t.key),
                "modified",
                [self.t.alter or ""] * k_mod,
                self.later_rel,
            )
            self.counts["modified"] += k_mod

        # extra rows, one rule each, copied from distinct valid rows (one take, fresh keys once)
        order = gen.permutation(n)
        used = 0
        plan: list[tuple[str, int]] = []
        picks: list[np.ndarray] = []
        for rule in (*defects.ROW_RULES, "revoked"):
            if rule != "revoked" and not self.t.by_rule[rule]:
                continue
            k = _sround(n * rates.rate(rule), gen)
            if k == 0:
                continue
            if rule == "id_checksum":
                ok = np.flatnonzero(np.asarray(pc.is_valid(tbl.column(self.t.by_rule[rule][0]))))
                src = (
                    gen.choice(ok, size=min(k, len(ok)), replace=False) if len(ok) else np.zeros(0, np.int64)
                )
            else:
                src = order[used : used + k]
                used += len(src)
            if len(src):
                plan.append((rule, len(src)))
                picks.append(src)
        if picks:
            src_all = np.concatenate(picks)
            copies = self._fresh(tbl.take(pa.array(src_all)))
            bad_parts: list[pa.Table] = []
            bad_rules: list[str] = []
            bad_fields: list[str] = []
            at = 0
            for rule, k in plan:
                part = copies.slice(at, max(0, min(k, copies.num_rows - at)))
                src = src_all[at : at + part.num_rows]
                at += k
                if part.num_rows == 0:
                    continue
                if rule == "revoked":
                    main_parts.append(part)
                    later_parts.append(self._later_times(part, gen, "3"))
                    run.truth.defect(
                        self.plan.code,
                        ds.name,
                        _keys(part, self.t.key),
                        "revoked",
                        [""] * part.num_rows,
                        self.later_rel,
                    )
                    fixed = part
                else:
                    fixed, fields = defects.corrupt(ds, rule, part, gen)
                    bad_parts.append(fixed)
                    bad_rules.extend([rule] * fixed.num_rows)
                    bad_fields.extend(fields)
                self.counts[rule] += fixed.num_rows
                if ds.name == "patient_info" and patient is not None:
                    label = "revoked" if rule == "revoked" else f"defect:{rule}"
                    run.truth.identity(
                        self.plan.code,
                        fixed.column("patient_id").combine_chunks(),
                        run.act.p_person[patient[src]],
                        [label] * fixed.num_rows,
                        False,
                    )
            if bad_parts:
                bad = pa.concat_tables(bad_parts)
                main_parts.append(bad)
                keys = _keys(bad, self.t.key)
                j = 0
                for rule, k in _runs(bad_rules):
                    run.truth.defect(
                        self.plan.code, ds.name, keys[j : j + k], rule, bad_fields[j : j + k], self.main_rel
                    )
                    j += k

        if k_dup:
            dups = tbl.take(pa.array(dup_idx))
            half = k_dup // 2
            main_parts.append(dups.slice(0, half))
            later_parts.append(dups.slice(half))
            keys = _keys(dups, self.t.key)
            run.truth.defect(self.plan.code, ds.name, keys[:half], "duplicate", [""] * half, self.main_rel)
            run.truth.defect(
                self.plan.code, ds.name, keys[half:], "duplicate", [""] * (k_dup - half), self.later_rel
            )
            self.counts["duplicate"] += k_dup

        self.main.write(pa.concat_tables(main_parts))
        if later_parts:
            self._later().write(pa.concat_tables(later_parts))

    def close(self) -> list[FileEntry]:
        """Close the files; record the table's counts."""
        entries = [self.main.close()]
        if self.later is not None:
            entries.append(self.later.close())
        row = {
            "org_code": self.plan.code,
            "table": self.ds.name,
            "files": len(entries),
            "rows": sum(e.rows for e in entries),
            "valid": self.valid,
            "realtime_rows": self.rt_rows,
            **{r: self.counts.get(r, 0) for r in defects.ALL_RULES},
        }
        self.run.truth.table_rows.append(row)
        return entries


@dataclass
class Run:
    """State shared by the writers of one generate() call."""

    out: Path
    month: city.Month
    seed: int
    rates: DefectRates
    truth: Truth
    act: city.Activity = field(init=False)


def _factors(rates: DefectRates) -> dict[str, float]:
    """Rows sent per valid record, per table (extras for the rules that apply, versions, re-sends)."""
    out = {}
    for ds in catalogue.datasets():
        t = defects.targets(ds)
        extra = sum(rates.rate(r) for r in defects.ROW_RULES if t.by_rule[r])
        out[ds.name] = 1 + extra + rates.duplicate + rates.modified + 2 * rates.revoked
    return out


def _ghosts(n_stays: int, rates: DefectRates) -> int:
    """Extra stays whose admission numbers key the extra rows of tables keyed by 住院流水号."""
    if not n_stays:
        return 0
    per = 0.0
    for ds in catalogue.datasets():
        t = defects.targets(ds)
        if t.key_is_link:
            per = max(per, sum(rates.rate(r) for r in defects.ROW_RULES if t.by_rule[r]) + rates.revoked)
    return int(np.ceil(n_stays * per * 1.5)) + 3


def generate(
    *,
    month: str,
    scale: float,
    seed: int,
    out: Path,
    gbk_share: float = 0.1,
    console: Console | None = None,
    defects: DefectRates | None = None,
    institutions: Sequence[str] | None = None,
) -> SynthResult:
    """Synthesise a city month: residents, every uploading unit's files and the ground truth.

    `institutions` (机构代码) limits the output to those units; each unit's files are the same bytes
    as in a full run, since every random draw is keyed by seed, unit and table.
    """
    out = Path(out)
    _check_args(month, scale, out, gbk_share)
    started = time.perf_counter()
    rates = defects or DefectRates()
    m = city.Month.of(month)
    targets = calibration.targets(month, scale)
    plans = city.plans(m, targets, seed=seed, gbk_share=gbk_share, rates=rates)
    if institutions is not None:
        wanted = set(institutions)
        unknown = wanted - {p.code for p in plans}
        if unknown:
            raise Invalid(f"本月没有这些接入单位：{'、'.join(sorted(unknown))}", code="unknown-institution")
        plans = [p for p in plans if p.code in wanted]
    n_res = max(MIN_RESIDENTS, round(scale * RESIDENTS_PER_SCALE))
    pop = residents.make(n_res, ref_day=m.start_day, seed=seed)

    uploads = out / "uploads"
    if uploads.exists():
        for p in sorted(uploads.rglob("*.csv")):
            p.unlink()
    pq.write_table(pop.table(), out / "residents.parquet")
    truth = Truth(out / "ground_truth")
    run = Run(out=out, month=m, seed=seed, rates=rates, truth=truth)
    factors = _factors(rates)
    entries: list[FileEntry] = []
    units: list[UnitResult] = []
    table_rows: Counter[str] = Counter()
    defect_counts: Counter[str] = Counter()
    total = sum(p.target.uploads for p in plans)

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(
        *columns, console=console or Console(quiet=True), disable=console is None, transient=False
    ) as progress:
        task = progress.add_task(f"合成 {month}", total=total)
        for plan in plans:
            progress.update(task, description=f"合成 {month} · {plan.name}")
            act = city.activity(
                plan, pop, m, seed=seed, rates=rates, ghosts=_ghosts(plan.target.discharges, rates)
            )
            run.act = act
            unit = tables.Unit(plan, act, pop, m, seed=seed, factors=factors)
            truth.identity(
                plan.code,
                vec.padded(np.arange(1, len(act.p_person) + 1), 10, "P"),
                act.p_person,
                vec.take(["", "homophone", "missing_id", "other_phone"], act.p_variant),
                True,
            )
            rows_before = sum(e.rows for e in entries)
            days: set[int] = set()
            forms: list[str] = []
            unit_defects: Counter[str] = Counter()
            for ds in catalogue.datasets():
                n = unit.size(ds.name)
                if n == 0:
                    continue
                w = TableWriter(run, plan, unit, ds)
                for lo in range(0, n, tables.CHUNK):
                    hi = min(n, lo + tables.CHUNK)
                    rows = unit.rows(ds.name, lo, hi)
                    tgen = vec.rng(seed, "timing", plan.code, ds.name, lo)
                    tbl, rt, collected = tables.text_table(ds, unit, rows, tgen)
                    w.add(tbl, rt, collected, rows.patient, lo)
                    progress.advance(task, tbl.num_rows)
                new = w.close()
                truth.flush()
                entries.extend(new)
                table_rows[ds.name] += sum(e.rows for e in new)
                unit_defects.update(w.counts)
                if ds.realtime and w.rt_rows:
                    days |= w.rt_days
                    forms.append(ds.name)
            defect_counts.update(unit_defects)
            units.append(
                UnitResult(
                    code=plan.code,
                    name=plan.name,
                    kind=plan.target.kind,
                    encoding=plan.encoding,
                    rows=sum(e.rows for e in entries) - rows_before,
                    uploads_target=plan.target.uploads,
                    visits=len(act.v_time),
                    visit_revenue_fen=int(act.v_fee.sum()),
                    discharges=act.n_stays,
                    inpatient_revenue_fen=int(act.s_fee[: act.n_stays].sum()),
                    upload_days=sorted(int(d) + 1 for d in days),
                    forms=forms,
                    defects=dict(sorted(unit_defects.items())),
                )
            )
        progress.update(task, description=f"合成 {month} · 完成", completed=total)
    truth.close()

    _write_statistics(out, month, plans)
    usage.write_record_usage(out, month, plans, seed=seed)
    result = SynthResult(
        month=month,
        source_month=calibration.source_month(month),
        scale=scale,
        seed=seed,
        out=out,
        gbk_share=gbk_share,
        residents=n_res,
        rows=sum(e.rows for e in entries),
        files=len(entries),
        gbk_files=sum(e.encoding == "gbk" for e in entries),
        seconds=0.0,
        units=units,
        tables=dict(table_rows),
        defects=dict(sorted(defect_counts.items())),
    )
    _write_institutions(out, result, plans, m)
    _write_summary(out, result, rates)
    _write_manifest(out, result, entries, rates)
    result.seconds = time.perf_counter() - started
    return result


def _qianyuan(fen: int) -> str:
    return f"{fen // 100_000}.{fen % 100_000 // 1000:02d}" if fen % 1000 == 0 else f"{fen / 100_000:.5f}"


def _write_statistics(out: Path, month: str, plans: list[city.Plan]) -> None:
    """The 卫统 monthly report: each unit's true outpatient visits and discharges."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["month", "org_code", "name", "kind", "outpatient_visits", "discharges"])
    for p in plans:
        w.writerow([month, p.code, p.record.name, p.target.kind, p.stats_visits, p.stats_discharges])
    (out / "statistics_report.csv").write_text(buf.getvalue(), encoding="utf-8")


def _write_institutions(out: Path, result: SynthResult, plans: list[city.Plan], m: city.Month) -> None:
    by_code = {p.code: p for p in plans}
    items = []
    for u in result.units:
        p = by_code[u.code]
        items.append(
            {
                "org_code": u.code,
                "name": u.name,
                "registry_name": p.record.name,
                "kind": u.kind,
                "encoding": u.encoding,
                "valid": {
                    "outpatient_visits": u.visits,
                    "outpatient_revenue_fen": u.visit_revenue_fen,
                    "outpatient_revenue_qianyuan": _qianyuan(u.visit_revenue_fen),
                    "discharges": u.discharges,
                    "inpatient_revenue_fen": u.inpatient_revenue_fen,
                    "inpatient_revenue_qianyuan": _qianyuan(u.inpatient_revenue_fen),
                },
                "rows_uploaded": u.rows,
                "rows_target": u.uploads_target,
                "realtime_upload_days": u.upload_days,
                "realtime_upload_days_count": len(u.upload_days),
                "realtime_upload_days_target": p.target.upload_days,
                "realtime_forms": u.forms,
                "realtime_forms_count": f"{len(u.forms)}/{len(catalogue.realtime_datasets())}",
                "realtime_forms_target": p.forms,
                "statistics_report": {"outpatient_visits": p.stats_visits, "discharges": p.stats_discharges},
                "defects": u.defects,
            }
        )
    _json(
        out / "ground_truth" / "institutions.json",
        {"month": result.month, "days": m.days, "institutions": items},
    )


def _write_summary(out: Path, result: SynthResult, rates: DefectRates) -> None:
    _json(
        out / "ground_truth" / "summary.json",
        {
            "month": result.month,
            "source_month": result.source_month,
            "scale": result.scale,
            "seed": result.seed,
            "residents": result.residents,
            "rows": result.rows,
            "files": result.files,
            "tables": result.tables,
            "defects": result.defects,
            "rates": asdict(rates),
            "definitions": {
                "realtime_row": f"实时表记录，事件后 {city.REALTIME_LAG[1] // 60} 分钟内采集（同一天）",
                "batch_row": "定时批量：事件后 {}–{} 小时采集".format(*(h // 3600 for h in city.BATCH_LAG)),
                "late": f"事件后 24 小时以上采集（埋点 {defects.LATE_DAYS[0]}–{defects.LATE_DAYS[1]} 天）",
                "realtime_upload_days": "当月有实时记录（实时表且采集时间在事件后数分钟内）的不同日期数",
                "realtime_forms": "当月有实时记录的实时表数（x/12）",
                "valid": "去除埋点缺陷行、重复、撤销后的记录；修改记录计一次，以修改标志 2 的版本为准",
                "extra_rows": "缺陷行都是在有效记录之外另加的行（新业务主键），从不替换有效记录",
            },
        },
    )


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("rhip", "numpy", "pyarrow"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _write_manifest(out: Path, result: SynthResult, entries: list[FileEntry], rates: DefectRates) -> None:
    truth = sorted(f"ground_truth/{p.name}" for p in (out / "ground_truth").iterdir() if p.is_file())
    extra = ["residents.parquet", "statistics_report.csv", usage.FILE, *truth]
    _json(
        out / "manifest.json",
        {
            "month": result.month,
            "source_month": result.source_month,
            "scale": result.scale,
            "seed": result.seed,
            "gbk_share": result.gbk_share,
            "rates": asdict(rates),
            "versions": _versions(),
            "rows": result.rows,
            "uploads": [e.as_dict() for e in entries],
            "files": [
                {"path": p, "sha256": sha256_file(out / p), "bytes": os.path.getsize(out / p)} for p in extra
            ],
        },
    )


def _json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------ presentation


def _wan(n: int) -> str:
    return f"{n / 10_000:.1f} 万" if n >= 100_000 else f"{n:,}"


def one_line(result: SynthResult) -> str:
    """A Chinese one-line summary for the demo table."""
    total_defects = sum(v for k, v in result.defects.items() if k not in defects.VERSION_RULES)
    return (
        f"{result.month}（规模 {result.scale}，种子 {result.seed}）：{len(result.units)} 家接入单位，"
        f"{result.files} 个文件（GBK {result.gbk_files}），{_wan(result.rows)} 行，"
        f"居民 {_wan(result.residents)}，埋点缺陷 {total_defects:,} 条，用时 {result.seconds:.1f} 秒"
    )


def print_summary(result: SynthResult, console: Console) -> None:
    """Print what was made: per unit, per table, defects planted, files, GBK share, time."""
    t = Table(title=f"合成城市 {result.month}（按 {result.source_month} 简报校准，规模 {result.scale}）")
    for col, just in [
        ("接入单位", "left"),
        ("代码", "left"),
        ("编码", "left"),
        ("上传行数", "right"),
        ("门急诊人次", "right"),
        ("门急诊收入（千元）", "right"),
        ("出院人次", "right"),
        ("住院收入（千元）", "right"),
        ("实时天数", "right"),
        ("实时表单", "right"),
        ("缺陷", "right"),
    ]:
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    n_forms = len(catalogue.realtime_datasets())
    for u in result.units:
        t.add_row(
            u.name,
            u.code,
            "GBK" if u.encoding == "gbk" else "UTF-8",
            f"{u.rows:,}",
            f"{u.visits:,}",
            f"{u.visit_revenue_fen / 100_000:,.2f}",
            f"{u.discharges:,}",
            f"{u.inpatient_revenue_fen / 100_000:,.2f}",
            str(len(u.upload_days)),
            f"{len(u.forms)}/{n_forms}",
            f"{sum(v for k, v in u.defects.items() if k not in defects.VERSION_RULES):,}",
        )
    console.print(t)

    tt = Table(title="各数据表行数与埋点")
    tt.add_column("数据表")
    tt.add_column("行数", justify="right")
    for name, n in sorted(result.tables.items(), key=lambda kv: -kv[1]):
        tt.add_row(name, f"{n:,}")
    dt = Table(title="埋点（按规则）")
    dt.add_column("规则")
    dt.add_column("条数", justify="right")
    for rule, n in result.defects.items():
        dt.add_row(rule, f"{n:,}")
    console.print(tt)
    console.print(dt)
    share = result.gbk_files / result.files if result.files else 0.0
    console.print(
        f"文件 {result.files} 个（GBK {result.gbk_files}，占 {share:.0%}），共 {result.rows:,} 行；"
        f"居民 {result.residents:,} 人；输出目录 {result.out}；用时 {result.seconds:.1f} 秒"
    )
