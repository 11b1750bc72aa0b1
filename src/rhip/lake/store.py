"""Delta tables under one lake root: a local folder, or a prefix on S3-compatible object storage
(`RHIP_LAKE_URI=s3://bucket/prefix` with the `RHIP_LAKE_S3_*` settings; docs/scale.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import DeltaTable, write_deltalake

from rhip.errors import Unavailable
from rhip.lake.sql import ident

if TYPE_CHECKING:
    from rhip.config import Settings


class LakeUnavailable(Unavailable):
    """The lake's object store refused or could not be reached (credentials, bucket, network)."""

    code = "lake-unavailable"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# what an object store's error text says, in the order to test it, and what a person is told
_CAUSES = (
    (re.compile(r"No_?Such_?Bucket|bucket does not exist", re.I), "存储桶不存在"),
    (
        re.compile(
            r"Invalid_?Access_?Key_?Id|Signature_?Does_?Not_?Match|Access_?Denied|\b403\b"
            r"|lacked the necessary",
            re.I,
        ),
        "访问密钥无效或无权访问",
    ),
    (re.compile(r"connect|dns|resolve|timed? ?out|unreachable", re.I), "无法连接对象存储"),
    (re.compile(r"\b404\b|Not Found", re.I), "存储桶或路径不存在"),
)


class Lake:
    """The lake root: `<root>/<table>/` is a Delta table; `root` a folder or an `s3://` URI."""

    def __init__(self, root: Path | str, storage_options: Mapping[str, str] | None = None) -> None:
        text = str(root)
        self.remote = "://" in text
        self.uri = text.rstrip("/") if self.remote else str(Path(root))
        self.storage_options: dict[str, str] = dict(storage_options or {})
        self._fs: pafs.FileSystem | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        """The configured lake: `RHIP_LAKE_URI` with its storage options, else the local folder."""
        if settings.lake_uri:
            return cls(settings.lake_uri, settings.lake_storage_options)
        return cls(settings.resolved_lake_dir)

    def __repr__(self) -> str:  # never the storage options: they hold the keys
        return f"Lake({self.uri!r})"

    def __getstate__(self) -> dict[str, object]:
        # a job's tasks carry the lake to the workers; the PyArrow client is rebuilt there
        return {"remote": self.remote, "uri": self.uri, "storage_options": self.storage_options, "_fs": None}

    @property
    def root(self) -> Path:
        """The local folder of the lake (only a local lake has one)."""
        if self.remote:
            raise LakeUnavailable(f"此操作需要本地数据湖目录，当前数据湖在对象存储 {self.uri}")
        return Path(self.uri)

    def uri_of(self, table: str) -> str:
        """The location of a table as deltalake, Polars and DuckDB take it."""
        ident(table)
        return f"{self.uri}/{table}"

    def path(self, table: str) -> Path:
        """The folder of a table in a local lake (the name must be a plain identifier)."""
        ident(table)
        return self.root / table

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn an object store's refusal into `LakeUnavailable` with its cause in Chinese (a local lake's
        errors pass as they are); the keys are never in the message."""
        try:
            yield
        except OSError as exc:
            if not self.remote:
                raise
            raise self.unavailable(exc) from None

    def unavailable(self, exc: BaseException) -> LakeUnavailable:
        """The domain error for an object store's error."""
        text = str(exc)
        cause = next((c for pattern, c in _CAUSES if pattern.search(text)), "对象存储返回错误")
        for secret in (
            self.storage_options.get("aws_secret_access_key"),
            self.storage_options.get("aws_access_key_id"),
        ):
            if secret:
                text = text.replace(secret, "***")
        # the first line of the store's own words, without terminal colours or rich-markup brackets
        text = _ANSI.sub("", text).replace("[", "(").replace("]", ")").strip()
        first = text.splitlines()[0][:200] if text else type(exc).__name__
        return LakeUnavailable(f"数据湖 {self.uri} 不可用：{cause}（{first}）")

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """A PyArrow file system for the lake's files and the root's path in it."""
        if not self.remote:
            return pafs.LocalFileSystem(), self.uri
        if self._fs is None:
            o = self.storage_options
            endpoint = o.get("aws_endpoint_url")
            scheme = endpoint.split("://", 1)[0] if endpoint else "https"
            self._fs = pafs.S3FileSystem(
                access_key=o.get("aws_access_key_id"),
                secret_key=o.get("aws_secret_access_key"),
                region=o.get("aws_region"),
                endpoint_override=endpoint.split("://", 1)[-1] if endpoint else None,
                scheme=scheme,
            )
        return self._fs, self.uri.split("://", 1)[1]

    def put(self, table: str, rel: str, data: bytes) -> None:
        """Write one file under a table (the Parquet files intake commits itself)."""
        fs, base = self.filesystem()
        with self.guard():
            if not self.remote:
                fs.create_dir(f"{base}/{table}/{rel}".rsplit("/", 1)[0], recursive=True)
            with fs.open_output_stream(f"{base}/{table}/{rel}") as out:
                out.write(data)

    def delete(self, table: str, rel: str) -> None:
        """Remove one file under a table (files written for a batch that is not committed)."""
        fs, base = self.filesystem()
        with self.guard(), suppress(FileNotFoundError):
            fs.delete_file(f"{base}/{table}/{rel}")

    def exists(self, table: str) -> bool:
        """Whether the table has been written at least once."""
        if not self.remote:
            return (self.path(table) / "_delta_log").is_dir()
        with self.guard():
            return bool(DeltaTable.is_deltatable(self.uri_of(table), storage_options=self.storage_options))

    def tables(self) -> list[str]:
        """Names of the tables in the lake."""
        if not self.remote:
            root = self.root
            if not root.is_dir():
                return []
            return sorted(p.name for p in root.iterdir() if (p / "_delta_log").is_dir())
        fs, base = self.filesystem()
        with self.guard():
            # a missing prefix is an empty lake, but a missing bucket is a wrong setting
            bucket = base.split("/", 1)[0]
            if fs.get_file_info(bucket).type == pafs.FileType.NotFound:
                raise LakeUnavailable(f"数据湖 {self.uri} 不可用：存储桶不存在（{bucket}）")
            found = fs.get_file_info(pafs.FileSelector(base, recursive=False, allow_not_found=True))
            folders = [i.base_name for i in found if i.type == pafs.FileType.Directory]
            logs = fs.get_file_info([f"{base}/{name}/_delta_log" for name in folders])
        return sorted(n for n, i in zip(folders, logs, strict=True) if i.type == pafs.FileType.Directory)

    def write(
        self,
        table: str,
        data: pa.Table,
        *,
        partition_by: list[str] | None = None,
        mode: Literal["append", "overwrite"] = "append",
    ) -> int:
        """Commit `data` to the table in one Delta transaction; returns the new table version."""
        if not self.remote:
            self.root.mkdir(parents=True, exist_ok=True)
        with self.guard():
            write_deltalake(
                self.uri_of(table),
                data,
                mode=mode,
                partition_by=partition_by,
                storage_options=self.storage_options or None,
            )
            return int(self.dataset(table).version())

    def dataset(self, table: str) -> DeltaTable:
        """The Delta table handle."""
        with self.guard():
            return DeltaTable(self.uri_of(table), storage_options=self.storage_options or None)

    def count(self, table: str) -> int:
        """Number of rows in the table's current version (0 when absent)."""
        if not self.exists(table):
            return 0
        with self.guard():
            return int(self.dataset(table).to_pyarrow_dataset().count_rows())
