"""Settings: the only way configuration reaches the code (RHIP_* environment variables)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
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
    # the lake on S3-compatible object storage (docs/scale.md): s3://bucket/prefix instead of lake_dir; the
    # keys are secrets (SecretStr: never printed with the settings) and reach only deltalake, Polars and
    # PyArrow's S3 clients
    lake_uri: str | None = Field(
        default=None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,62}(/.*)?$", description="RHIP_LAKE_URI"
    )
    lake_s3_endpoint: str | None = Field(default=None, description="e.g. https://minio.example:9000")
    lake_s3_region: str = "us-east-1"
    lake_s3_access_key_id: SecretStr | None = None
    lake_s3_secret_access_key: SecretStr | None = None
    lake_s3_allow_http: bool = Field(default=False, description="Plain http to the endpoint (tests)")
    # concurrent writers' commits: "etag" (If-None-Match / If-Match conditional writes: AWS S3, MinIO, R2,
    # Ceph RGW); "" leaves it to deltalake's default for the store
    lake_s3_conditional_put: str = Field(default="etag", pattern=r"^(etag)?$")
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
    max_upload_bytes: int = Field(
        default=512 * 1024**2, ge=1, description="Largest accepted batch file upload (512 MiB)"
    )
    max_fhir_bundle_bytes: int = Field(
        default=32 * 1024**2, ge=1, description="Largest accepted FHIR bundle or resource body (32 MiB)"
    )
    max_fhir_entries: int = Field(default=20_000, ge=1, description="Most entries in one FHIR bundle")
    ecg_max_bytes: int = Field(
        default=8 * 1024**2, ge=1, description="Largest accepted ECG upload (a WFDB record or a DICOM file)"
    )
    secure_cookies: bool = Field(
        default=False, description="Served over HTTPS: Secure cookies and HSTS (set it behind TLS)"
    )
    trusted_origins: list[str] = Field(
        default_factory=list,
        description="Origins besides the request's own host whose forms may post (e.g. the public URL)",
    )
    sms_url: str | None = Field(default=None, description="SMS gateway URL; unset: texts stay in the outbox")
    sms_token: str | None = Field(default=None, description="Bearer token for the SMS gateway")
    timezone: str = TIMEZONE
    # identity (EMPI) bands: a record's best match at or above auto is linked, at or above review is
    # queued for a data steward (and gets a new person meanwhile), below is a new person
    identity_auto_threshold: float = Field(default=0.995, gt=0, lt=1)
    identity_review_threshold: float = Field(default=0.5, gt=0, lt=1)
    # the assistant's optional LLM step (an OpenAI-compatible chat-completions endpoint); off without llm_url
    llm_url: str | None = Field(default=None, description="RHIP_LLM_URL, e.g. https://api.deepseek.com/v1")
    llm_model: str = Field(default="deepseek-chat", description="RHIP_LLM_MODEL")
    llm_api_key: str | None = Field(default=None, description="RHIP_LLM_API_KEY")
    llm_timeout_s: float = Field(default=8.0, gt=0, le=60)
    orthanc_url: str | None = Field(
        default=None,
        description="A running Orthanc (PACS) to use; default: rhip starts its own under data_dir",
    )
    # the FHIR server's public base URL: every link the facade writes (Bundle links, fullUrl, the
    # CapabilityStatement, $bulk-publish) is built from it, never from the request's Host header
    # the lake's batch jobs (recount, rollup rebuild, compaction) on a Dask cluster: tcp://host:8786;
    # unset, they run in-process unless a command asks for --workers N
    dask_scheduler: str | None = Field(default=None, description="RHIP_DASK_SCHEDULER")
    # the demo's lake job on a local cluster of this many worker processes (`rhip demo --workers N`)
    dask_workers: int | None = Field(default=None, ge=1, le=64, description="RHIP_DASK_WORKERS")
    fhir_base_url: str = Field(default="http://127.0.0.1:8000/fhir/r4", max_length=500)
    # the canonical base of our StructureDefinitions and extension URLs (default: fhir_base_url, so each
    # canonical URL resolves on this server); set it once and keep it: uploaded data carries these URLs
    fhir_canonical: str | None = Field(default=None, max_length=500)
    # fault injection for the crash test (tests/intake/test_crash.py): seconds a batch pauses after each of
    # its Delta commits, so a test can kill it between two of them. 0 (always, outside that test): no pause
    intake_crash_pause: float = Field(default=0.0, ge=0, le=600)

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

    @property
    def lake_storage_options(self) -> dict[str, str]:
        """deltalake's / Polars' object-store options for the lake (empty for a local folder)."""
        if not self.lake_uri:
            return {}
        opts = {"aws_region": self.lake_s3_region, "aws_allow_http": str(self.lake_s3_allow_http).lower()}
        if self.lake_s3_endpoint:
            opts["aws_endpoint_url"] = self.lake_s3_endpoint
        if self.lake_s3_access_key_id:
            opts["aws_access_key_id"] = self.lake_s3_access_key_id.get_secret_value()
        if self.lake_s3_secret_access_key:
            opts["aws_secret_access_key"] = self.lake_s3_secret_access_key.get_secret_value()
        if self.lake_s3_conditional_put:
            opts["aws_conditional_put"] = self.lake_s3_conditional_put
        return opts

    @cached_property
    def resolved_secret_key(self) -> str:
        """The token signing key; generated and kept in data_dir when not configured."""
        if self.secret_key:
            return self.secret_key
        import secrets

        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = secrets.token_urlsafe(48)
        # created 0600 from the start (not chmod-ed afterwards: someone could open it in between)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key

    @property
    def resolved_fhir_canonical(self) -> str:
        """The canonical base URL of our FHIR profiles and extensions."""
        return (self.fhir_canonical or self.fhir_base_url).rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        """Whether the services database is SQLite."""
        return self.resolved_database_url.startswith("sqlite")
