"""Streaming upload bodies to disk: multipart/form-data or a raw body, with a size limit (413)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from rhip.errors import BadRequest, TooLarge

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class Received:
    """Files written to a folder plus the form's text fields."""

    files: list[tuple[str, Path]] = field(default_factory=list)  # (client file name, path)
    fields: dict[str, str] = field(default_factory=dict)
    bytes: int = 0


def too_large(limit: int) -> TooLarge:
    """The 413 error for an upload over the limit."""
    return TooLarge(
        f"上传内容超过上限 {limit:,} 字节；请拆分文件后分批上传", code="upload-too-large", limit=limit
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def client_filename(name: str | None, default: str = "upload") -> str:
    """A client's file name as we keep and show it: the last path part, no control characters (NUL,
    newlines), at most 200 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _CONTROL.sub("", base).strip()[:200]
    return base if base not in ("", ".", "..") else default


def _safe_name(name: str, n: int) -> str:
    base = _SAFE.sub("_", Path(name).name)[:100] or "upload"
    return f"{n:03d}_{base}"


async def receive_multipart(
    stream: AsyncIterator[bytes], *, content_type: str, folder: Path, limit: int
) -> Received:
    """Parse a multipart body chunk by chunk, writing each file part straight to `folder`."""
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise BadRequest("请使用 multipart/form-data 上传文件", code="not-multipart")
    out = Received()
    state: dict[str, Any] = {"headers": {}, "field": b"", "value": b"", "fh": None, "name": None, "buf": []}

    def on_part_begin() -> None:
        state["headers"] = {}
        state["fh"], state["name"], state["buf"] = None, None, []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _disp, opts = parse_options_header(state["headers"].get("content-disposition", b""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        filename = opts.get(b"filename")
        state["name"] = name
        if filename is not None:
            client = client_filename(filename.decode("utf-8", "replace"))
            path = folder / _safe_name(client, len(out.files))
            state["fh"] = path.open("wb")
            out.files.append((client, path))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["fh"] is not None:
            state["fh"].write(data[start:end])
        else:
            state["buf"].append(data[start:end])
            if sum(len(b) for b in state["buf"]) > 65536:
                raise BadRequest("表单字段过长", code="field-too-long")

    def on_part_end() -> None:
        if state["fh"] is not None:
            state["fh"].close()
            state["fh"] = None
        elif state["name"]:
            out.fields[state["name"]] = b"".join(state["buf"]).decode("utf-8", "replace").strip()

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in stream:
            out.bytes += len(chunk)
            if out.bytes > limit:
                raise too_large(limit)
            parser.write(chunk)
        parser.finalize()
    except (BadRequest, TooLarge):
        raise
    except Exception as exc:  # python-multipart raises its own parse errors
        raise BadRequest(f"multipart 请求体格式错误：{str(exc)[:120]}", code="bad-multipart") from None
    finally:
        if state["fh"] is not None:
            state["fh"].close()
    return out


async def receive_raw(stream: AsyncIterator[bytes], *, path: Path, limit: int) -> int:
    """Write a raw request body to `path`; returns its size."""
    total = 0
    with path.open("wb") as fh:
        async for chunk in stream:
            total += len(chunk)
            if total > limit:
                raise too_large(limit)
            fh.write(chunk)
    return total
