"""Writing many requests at once (the synthetic city's month): each request's timeline is checked against
the Task state machine in Python, then requests, their history, reports, studies and specimens go to the
database in a few multi-row INSERTs instead of one flush per row."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from rhip.telemed.models import History, Report, Request, Specimen, Study
from rhip.telemed.workflow import check_transition

Step = tuple[str, datetime, str, str | None]  # to, at, actor, reason


@dataclass
class Batch:
    """Requests waiting to be written, with the rows that hang off them."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    timelines: list[list[Step]] = field(default_factory=list)
    reports: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    children: list[tuple[int, type[Any], dict[str, Any]]] = field(default_factory=list)

    def add(self, row: dict[str, Any], steps: list[Step], report: dict[str, Any] | None = None) -> int:
        """Queue a request (filed at row['requested_at']) and its transitions; its index in the batch."""
        status = "requested"
        row = {**row, "status": "requested", "priority": row.get("priority", "routine")}
        for to, at, actor, reason in steps:
            check_transition(status, to, reason)
            status = to
            if to == "accepted":
                row["accepted_at"], row["assignee"] = at, actor
            elif to == "in_progress":
                row["started_at"] = at
            else:
                row["ended_at"], row["status_reason"], row["notified_at"] = at, reason, at
        row["status"] = status
        if report is not None and status != "completed":
            raise ValueError("a report needs a completed timeline")
        self.requests.append(row)
        self.timelines.append(steps)
        idx = len(self.requests) - 1
        if report is not None:
            self.reports.append((idx, report))
        return idx

    def child(self, idx: int, model: type[Any], row: dict[str, Any]) -> None:
        """A row of another table that references request `idx` (request_id filled at write time)."""
        self.children.append((idx, model, row))

    def write(self, session: Session) -> list[int]:
        """Insert everything; the new requests' ids in order."""
        if not self.requests:
            return []
        keys = sorted({k for r in self.requests for k in r})
        rows = [{k: r.get(k) for k in keys} for r in self.requests]
        ids = list(session.scalars(insert(Request).returning(Request.id, sort_by_parameter_order=True), rows))
        hist = []
        for rid, row, steps in zip(ids, self.requests, self.timelines, strict=True):
            hist.append(
                {
                    "request_id": rid,
                    "from_status": None,
                    "to_status": "requested",
                    "actor": "synth",
                    "reason": None,
                    "at": row["requested_at"],
                }
            )
            prev = "requested"
            for to, at, actor, reason in steps:
                hist.append(
                    {
                        "request_id": rid,
                        "from_status": prev,
                        "to_status": to,
                        "actor": actor,
                        "reason": reason,
                        "at": at,
                    }
                )
                prev = to
        session.execute(insert(History), hist)
        if self.reports:
            session.execute(insert(Report), [{**rep, "request_id": ids[i]} for i, rep in self.reports])
        for model in (Study, Specimen):
            mine = [{**row, "request_id": ids[i]} for i, m, row in self.children if m is model]
            if mine:
                keys = sorted({k for r in mine for k in r})
                session.execute(insert(model), [{k: r.get(k) for k in keys} for r in mine])
        self.__init__()  # type: ignore[misc]
        return ids
