"""Settings: the only way configuration reaches the code (RHIP_* environment variables)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

TIMEZONE = "Asia/Shanghai"


class Settings(BaseSettings):
    """Runtime configuration; embedded defaults keep everything under ./var/."""

    model_config = SettingsConfigDict(env_prefix="RHIP_", env_file=None, extra="ignore")

    data_dir: Path = Field(
        default=Path("var"), description="Root for the embedded database, lake and outputs"
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file under data_dir"
    )
    lake_dir: Path | None = Field(default=None, description="Delta lake root; default data_dir/lake")
    secret_key: str | None = Field(
        default=None, description="JWT signing key; default is generated once into data_dir/secret.key"
    )
    token_ttl_minutes: int = Field(default=60 * 12, ge=1)
    log_level: str = "INFO"
    log_json: bool = False
    # FastAPI's native OpenTelemetry instrumentation (traces, metrics, logs to the providers configured
    # in the process). Off by default: with no provider configured it only looks the providers up, on
    # every request (~4 us, a tenth of the trivial endpoint's time in the app)
    telemetry: bool = False
    max_upload_bytes: int = Field(default=8 * 1024**3, description="Largest accepted upload (8 GiB)")
    timezone: str = TIMEZONE
    orthanc_url: str | None = Field(
        default=None,
        description="A running Orthanc (PACS) to use; default: rhip starts its own under data_dir",
    )
    # identity (EMPI) bands: a record's best match at or above auto is linked, at or above review is
    # queued for a data steward (and gets a new person meanwhile), below is a new person
    identity_auto_threshold: float = Field(default=0.995, gt=0, lt=1)
    identity_review_threshold: float = Field(default=0.5, gt=0, lt=1)

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'rhip.db').resolve()}"

    @cached_property
    def resolved_lake_dir(self) -> Path:
        """The lake root folder."""
        return (self.lake_dir or self.data_dir / "lake").resolve()

    @cached_property
    def resolved_secret_key(self) -> str:
        """The token signing key; generated and kept in data_dir when not configured."""
        if self.secret_key:
            return self.secret_key
        import secrets

        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key

    @property
    def is_sqlite(self) -> bool:
        """Whether the services database is SQLite."""
        return self.resolved_database_url.startswith("sqlite")
