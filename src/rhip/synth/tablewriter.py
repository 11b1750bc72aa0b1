"""Writing one unit's table: valid rows, planted defects, duplicates and versions, and the ground truth."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rhip.registry.catalogue import Dataset
from rhip.synth import city, defects, tables, vec
from rhip.synth.defects import DefectRates
from rhip.synth.writer import CsvFile, FileEntry

KEY_SEP = "|"


FRESH_KEY_BASE = 9_000_000_000  # business-key numbers of extra (defective, revoked) records


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

    def close(self, *, tables_file: bool = True) -> None:
        """Finish the Parquet files and write the per-table counts (a cluster task's part: not)."""
        self.flush()
        self.defects.close()
        self.identities.close()
        if tables_file:
            self.write_tables(self.root, self.table_rows)

    @staticmethod
    def write_tables(root: Path, table_rows: list[dict[str, Any]]) -> None:
        """tables.parquet: per unit and table, rows, valid, duplicates, versions and defects."""
        rules = list(defects.ALL_RULES)
        cols: dict[str, list[Any]] = {
            k: [] for k in ["org_code", "table", "files", "rows", "valid", "realtime_rows", *rules]
        }
        for r in table_rows:
            for k in cols:
                cols[k].append(r.get(k, 0))
        pq.write_table(pa.table(cols), root / "tables.parquet")


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

    def _sent_on(self, collected: np.ndarray, rt: np.ndarray) -> None:
        """Count the month's days on which real-time rows were collected (a correction or revocation of a
        real-time row is sent in real time too, minutes later: past midnight, that is the next day)."""
        run = self.run
        in_month = rt & (collected >= run.month.start) & (collected < run.month.end)
        if in_month.any():
            self.rt_days.update(np.unique((collected[in_month] - run.month.start) // city.DAY).tolist())

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
        self._sent_on(collected, rt)

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
            self._sent_on(defects.seconds(later_parts[-1].column("collected_at")), rt[mod_idx])
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
                    self._sent_on(defects.seconds(later_parts[-1].column("collected_at")), rt[src])
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
