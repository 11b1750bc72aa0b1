"""Blind appends to a local Delta table, committed by writing the next `_delta_log` entry ourselves.

Why: deltalake's `create_write_transaction` cost 10–40 ms of CPU per commit on this machine, growing with the
table's versions (measured on a two-row table: 12 ms at version 50, 42 ms at 400), and intake makes one commit
per table of every batch — ~4,000 in the demo's month at scale 0.01, most of a small batch's time. A blind
append (new files only, no read of the table) is, by the Delta protocol, a JSON file `<version>.json` holding
a `commitInfo` and the `add` actions, created only if absent: that is what this module writes (a temporary
file linked to the commit's name, which fails when another writer took the version: then the next version is
tried, unless that commit changed the table's protocol or metadata). Every 100th version gets a checkpoint, as
deltalake's own commits do (`delta.checkpointInterval`).

Only plain tables take this path (reader 1, writer ≤ 2, no writer features, no column invariants, local
files); anything else, and a concurrent change of metadata, is left to deltalake (`append` returns None).

The handle this process keeps (`store.handle`) is not moved by these commits: `known(log)` is the newest
version this process knows to be a plain append since, so `store.handle` refreshes a handle only when a commit
it did not write appears, and readers that need the file list refresh it themselves (`store.fresh`).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import unquote

from deltalake import DeltaTable
from deltalake.transaction import AddAction

CHECKPOINT_EVERY = 100
# per log folder: the handle that committed and the newest version written by hand through it (a new handle —
# the table replaced, the handles dropped — starts from its own version)
_known: dict[str, tuple[DeltaTable, int]] = {}
_lock = threading.Lock()


def log_dir(dt: DeltaTable) -> Path | None:
    """The table's `_delta_log` folder, when the table is on the local file system."""
    uri = str(dt.table_uri)
    if uri.startswith("file://"):
        uri = unquote(uri.removeprefix("file://"))
    elif "://" in uri:
        return None
    log = Path(uri) / "_delta_log"
    return log if log.is_dir() else None


def commit_path(log: Path, version: int) -> Path:
    """The commit file of a version."""
    return log / f"{version:020d}.json"


def known(log: Path, dt: DeltaTable) -> int:
    """The newest version known to be reachable from the handle's by plain appends only."""
    with _lock:
        got = _known.get(str(log))
    mine = got[1] if got is not None and got[0] is dt else -1
    return max(int(dt.version()), mine)


def latest(log: Path, start: int) -> int:
    """The newest committed version, looking forward from `start` (versions are consecutive files)."""
    while commit_path(log, start + 1).exists():
        start += 1
    return start


def plain(dt: DeltaTable) -> bool:
    """Whether a blind append may be committed by hand (no protocol feature or invariant to honour)."""
    p = dt.protocol()
    if p.min_reader_version > 1 or p.min_writer_version > 2 or p.writer_features or p.reader_features:
        return False
    return not any("delta.invariants" in (f.metadata or {}) for f in dt.schema().fields)


def _changes_table(path: Path) -> bool:
    """Whether a commit changed the table's protocol or metadata (a concurrent schema change)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and ({"metaData", "protocol"} & set(json.loads(line))):
            return True
    return False


def append(dt: DeltaTable, actions: list[AddAction], *, parts: list[str], batch_id: str) -> int | None:
    """Commit the files of `actions` (already written under the table) as the next version; returns the
    version, or None when deltalake must commit them instead (see the module doc)."""
    log = log_dir(dt)
    if not actions or log is None or not plain(dt):
        return None
    now = int(time.time() * 1000)
    info = {
        "timestamp": now,
        "operation": "WRITE",
        "operationParameters": {"mode": "Append", "partitionBy": json.dumps(parts)},
        "engineInfo": "rhip",
        "rhip.batch": batch_id,
        "isBlindAppend": True,
    }
    lines = [json.dumps({"commitInfo": info})]
    for a in actions:
        add = {
            "path": a.path,
            "partitionValues": dict(a.partition_values),
            "size": int(a.size),
            "modificationTime": int(a.modification_time),
            "dataChange": bool(a.data_change),
            "stats": a.stats,
        }
        lines.append(json.dumps({"add": add}))
    tmp = log / f"_commit_{uuid.uuid4().hex}.json.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        version = known(log, dt) + 1
        while True:
            try:
                os.link(tmp, commit_path(log, version))  # atomic create-if-absent
                break
            except FileExistsError:
                if _changes_table(commit_path(log, version)):
                    return None
                version += 1
    finally:
        tmp.unlink(missing_ok=True)
    with _lock:
        got = _known.get(str(log))
        if got is None or got[0] is not dt or got[1] < version:
            _known[str(log)] = (dt, version)
    if version % CHECKPOINT_EVERY == 0:
        dt.update_incremental()
        dt.create_checkpoint()
    return version
