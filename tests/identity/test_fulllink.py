"""The full re-link on the EMPI test city: persons recovered, ids stable, decisions kept."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.identity import evaluate, features as feat, fulllink, relink_io, service as svc, train
from rhip.identity.linker import CAND_COLUMNS, features_of
from rhip.identity.models import PatientRecord
from rhip.identity.scoring import BLOCKING_RULES, DATA, MODEL_FILE, MODEL_VERSION
from rhip.synth import identities

BANDS = svc.Bands(auto=0.995, review=0.5)


def test_full_link_recovers_persons_and_keeps_ids(ids: Session, inst: str) -> None:
    city = identities.make(300, seed=5)
    recs = city.records.to_pylist()
    items = [
        svc.Incoming(
            institution_code=inst + r["institution_code"],
            local_id=r["local_id"],
            source="test",
            id_number=r["id_number"],
            name=r["name"],
            birth_date=r["birth_date"],
            sex=r["sex"],
            phone=r["phone"],
            district=r["district"],
        )
        for r in recs
    ]
    with ids.begin():
        incremental = svc.link_records(ids, items, bands=BANDS)
        summary = fulllink.relink_all(ids, bands=BANDS)
    assert summary.records >= len(recs)
    with ids.begin():
        stored = {
            (r.institution_code, r.local_id): r.person_id
            for r in ids.scalars(select(PatientRecord).where(PatientRecord.institution_code.startswith(inst)))
        }
    full = [stored[(it.institution_code, it.local_id)] for it in items]
    truth = [r["person"] for r in recs]
    acc = evaluate.accuracy(full, truth)
    assert acc.precision >= 0.999 and acc.recall >= 0.95, acc
    inc = evaluate.accuracy([x.person_id for x in incremental], truth)
    assert inc.precision >= 0.999 and inc.recall >= 0.95, inc
    # person ids are stable: most records keep the person the incremental link gave them
    same = sum(a == b.person_id for a, b in zip(full, incremental, strict=True))
    assert same / len(full) > 0.95
    # a second full link changes nothing
    with ids.begin():
        fulllink.relink_all(ids, bands=BANDS)
        again = {
            (r.institution_code, r.local_id): r.person_id
            for r in ids.scalars(select(PatientRecord).where(PatientRecord.institution_code.startswith(inst)))
        }
    assert again == stored
    assert Counter(full).most_common(1)[0][1] < 10


def test_accuracy_counts_pairs_and_clusters() -> None:
    a = evaluate.accuracy(["x", "x", "y", "z"], [1, 1, 1, 2])
    assert (a.true_pairs, a.predicted_pairs, a.correct_pairs) == (3, 1, 1)
    assert a.precision == 1.0 and abs(a.recall - 1 / 3) < 1e-9
    assert a.cluster_precision == 1 / 3 and a.cluster_recall == 1 / 2
    base = evaluate.exact_id_baseline(["1", "1", None, None])
    assert base[0] == base[1] and base[2] != base[3]


def test_relink_read_gives_the_same_splink_input_as_the_features(ids: Session, inst: str) -> None:
    """The vectorised read (COPY on PostgreSQL) and the per-record Features path give one table."""
    recs = identities.make(150, seed=11).records.to_pylist()
    recs[0] = {**recs[0], "name": "  李 静 ", "phone": "+86 139-0000-1111", "birth_date": None}
    recs[1] = {**recs[1], "id_number": "32010519800101123", "name": None, "district": ""}  # malformed ID
    recs[2] = {**recs[2], "name": 'O"Brien, 区·小明', "sex": None}  # quotes and commas survive the CSV
    items = [
        svc.Incoming(
            institution_code=inst + r["institution_code"],
            local_id=r["local_id"],
            source="test",
            **{k: r[k] for k in ("id_number", "name", "birth_date", "sex", "phone", "district")},
        )
        for r in recs
    ]
    with ids.begin():
        svc.link_records(ids, items, bands=BANDS)
        got = relink_io.read_records(ids.connection())
        rows = ids.execute(select(*CAND_COLUMNS).order_by(PatientRecord.id)).all()
    cols: dict[str, list[Any]] = {c: [] for c in train.SPLINK_COLUMNS}
    for i, r in enumerate(rows):
        train.append_features(cols, i, features_of(r))
    assert relink_io.splink_input(got).equals(train.splink_table(cols))
    assert got.column("id").to_pylist() == [r.id for r in rows]
    assert got.column("person_id").to_pylist() == [r.person_id for r in rows]
    assert got.column("pinned").to_pylist() == [bool(r.pinned) for r in rows]
    mine = [i for i, r in enumerate(rows) if r.institution_code.startswith(inst)]
    assert len(mine) == len(recs)
    names = {got.column("name")[i].as_py() for i in mine}
    assert 'O"BRIEN区小明' in names and None in names  # quotes survive the CSV; NULL stays NULL


def test_model_file_blocks_as_the_incremental_linker() -> None:
    """The saved model carries the code's blocking rules; the previous version's file stays for the
    links that name it; the incremental birth-date + district block asks for sex and initial too."""
    saved = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    rules = [r["blocking_rule"] for r in saved["blocking_rules_to_generate_predictions"]]
    assert rules == list(BLOCKING_RULES) and saved["rhip_model_version"] == MODEL_VERSION
    assert (DATA / "model-2026.12-1.json").exists()
    base: dict[str, Any] = dict(id_number=None, birth_date=date(1980, 5, 6), phone=None, district="320102")
    a = feat.derive(name="王伟", sex="1", **base)
    assert a.birth_district_block(feat.derive(name="汪玮", sex="1", **base))
    assert not a.birth_district_block(feat.derive(name="王伟", sex="2", **base))
    assert not a.birth_district_block(feat.derive(name="李伟", sex="1", **base))
    assert not a.birth_district_block(feat.derive(name=None, sex="1", **base))
    assert feat.derive(name="刘洋", sex="2", **base).birth_district_block(
        feat.derive(name="牛洋", sex="2", **base)
    )
