"""The domain exception tree; web/ maps each to RFC 9457 problem+json and the CLI to one line."""

from __future__ import annotations

from typing import Any


class RhipError(Exception):
    """Base of every error a user may see; `detail` is Chinese text for people."""

    status: int = 400
    title: str = "请求错误"
    code: str = "bad-request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.extra = extra


class Invalid(RhipError):
    """Input that breaks a rule (422)."""

    status = 422
    title = "数据校验未通过"
    code = "invalid"


class BadRequest(RhipError):
    """Malformed request (400)."""

    status = 400
    title = "请求格式错误"
    code = "bad-request"


class Unauthorized(RhipError):
    """No or bad credentials (401)."""

    status = 401
    title = "未登录或凭证无效"
    code = "unauthorized"


class Forbidden(RhipError):
    """Authenticated but not allowed (403)."""

    status = 403
    title = "无权访问"
    code = "forbidden"


class NotFound(RhipError):
    """The thing does not exist (404)."""

    status = 404
    title = "未找到"
    code = "not-found"


class Conflict(RhipError):
    """State conflict: already exists, sold out, rule refuses (409)."""

    status = 409
    title = "状态冲突"
    code = "conflict"


class TooLarge(RhipError):
    """Upload over the configured limit (413)."""

    status = 413
    title = "上传内容过大"
    code = "too-large"


class UnsupportedMedia(RhipError):
    """A file format we do not take (415)."""

    status = 415
    title = "不支持的文件格式"
    code = "unsupported-media-type"


class Unavailable(RhipError):
    """A dependency the answer needs is down, and answering without it is not allowed (503)."""

    status = 503
    title = "服务暂不可用"
    code = "unavailable"


class TooManyRequests(RhipError):
    """Too many attempts in a while: sign-in, codes (429; `retry_after` seconds in extra)."""

    status = 429
    title = "请求过于频繁"
    code = "too-many-requests"
