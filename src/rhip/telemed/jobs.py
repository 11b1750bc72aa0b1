"""Background work while `rhip serve` runs: following the PACS's change feed, and draining the report
outbox into intake (the shared record) — woken at once by a new report, otherwise every few seconds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.db.models_registry import import_all_models
from rhip.errors import RhipError
from rhip.lake.store import Lake
from rhip.telemed import delivery, imaging, pacs as pacs_mod

log = logging.getLogger(__name__)


class Follower(threading.Thread):
    """Reads Orthanc's /changes every `interval` seconds and records the new stable studies."""

    def __init__(self, settings: Settings, client: pacs_mod.Pacs, interval: float = 2.0) -> None:
        super().__init__(name="telemed-pacs-follower", daemon=True)
        self.settings, self.client, self.interval = settings, client, interval
        self.stopping = threading.Event()
        self.passes = 0

    def run(self) -> None:
        """Follow until stopped; a failed pass is logged and retried at the next tick."""
        import_all_models()  # the thread may start before the app has imported every mapped class
        db = Database.from_settings(self.settings)
        try:
            while not self.stopping.is_set():
                try:
                    with db.session() as s, s.begin():
                        res = imaging.follow(s, pacs=self.client)
                    if res.recorded or res.problems:
                        log.info("pacs feed: recorded=%d problems=%d", len(res.recorded), len(res.problems))
                except (RhipError, OSError, SQLAlchemyError) as exc:
                    log.warning("pacs feed pass failed: %s", type(exc).__name__)
                self.passes += 1
                self.stopping.wait(self.interval)
        finally:
            db.dispose()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it."""
        self.stopping.set()
        self.join(10)


class Drainer(threading.Thread):
    """Sends the report outbox to intake; a failed pass leaves the rows for the next (they carry backoff)."""

    def __init__(self, settings: Settings, interval: float = 5.0) -> None:
        super().__init__(name="telemed-outbox-drainer", daemon=True)
        self.settings, self.interval = settings, interval
        self.stopping = threading.Event()
        self.passes = 0

    def run(self) -> None:
        """Drain until stopped."""
        import_all_models()
        db = Database.from_settings(self.settings)
        lake = Lake.from_settings(self.settings)
        try:
            while not self.stopping.is_set():
                try:
                    res = delivery.drain(db, lake)
                    if res.sent or res.failed or res.retried:
                        log.info(
                            "report outbox: sent=%d retried=%d failed=%d",
                            len(res.sent),
                            len(res.retried),
                            len(res.failed),
                        )
                except (RhipError, OSError, SQLAlchemyError) as exc:
                    log.warning("report outbox pass failed: %s", type(exc).__name__)
                self.passes += 1
                delivery.wait_for_kick(self.interval)
        finally:
            db.dispose()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it."""
        self.stopping.set()
        delivery.kick()
        self.join(30)


@contextmanager
def pacs_for_serving(settings: Settings) -> Iterator[pacs_mod.Pacs | None]:
    """For `rhip serve`: the configured Orthanc or one rhip starts (None when none is installed), followed;
    and the report outbox drained for the server's lifetime."""
    upgrade(settings.resolved_database_url)  # the jobs write before the app would migrate
    drainer = Drainer(settings)
    drainer.start()
    try:
        if not settings.orthanc_url and not pacs_mod.installed():
            log.warning("Orthanc is not installed: imaging uploads answer 503")
            yield None
            return
        with pacs_mod.managed(settings.data_dir, settings.orthanc_url) as client:
            follower = Follower(settings, client)
            follower.start()
            try:
                yield client
            finally:
                follower.stop()
    finally:
        drainer.stop()
