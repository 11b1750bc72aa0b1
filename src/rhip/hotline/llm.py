"""The optional large-language-model step: an OpenAI-compatible chat-completions endpoint (DeepSeek's API
is one), set by RHIP_LLM_URL / RHIP_LLM_MODEL / RHIP_LLM_API_KEY; off when no URL is set.

It only rephrases the retrieved passages: the prompt gives the passages and forbids anything beyond them, and
the answer is checked before use — it must be text of sensible length that keeps every phone number and
figure of the passages it cites and adds none. A timeout, an error status, malformed JSON or an answer that
fails the check returns None and the assistant answers with the retrieved passage itself. Never called on the
crisis or emergency path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

SYSTEM = (
    "你是南京卫生 12320 的智慧客服“宁宁”。只根据给出的资料，用简洁亲切的中文改写成对居民问题的回答；"
    "不得添加资料以外的事实、电话号码、数字或医疗建议；资料没有答案时只回答“转人工”。"
)
NUMBER = re.compile(r"\d[\d\-]*\d|\d")


@dataclass(frozen=True)
class LlmConfig:
    """Where the endpoint is and how long to wait."""

    url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 8.0


def _numbers(text: str) -> set[str]:
    return set(NUMBER.findall(text))


def grounded(answer: str, passages: list[str]) -> bool:
    """An answer is usable when it is sensible text adding no number the passages do not hold."""
    text = answer.strip()
    if not 4 <= len(text) <= 600 or "转人工" in text:
        return False
    if not re.search(r"[\u4e00-\u9fff]", text):
        return False
    return _numbers(text) <= set().union(*(_numbers(p) for p in passages))


def rephrase(
    config: LlmConfig, *, question: str, passages: list[str], client: httpx.Client | None = None
) -> str | None:
    """The endpoint's rephrasing of the passages for the question, or None to fall back to retrieval."""
    body = {
        "model": config.model,
        "temperature": 0.2,
        "max_tokens": 400,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": "资料：\n" + "\n".join(f"- {p}" for p in passages) + f"\n\n问题：{question}",
            },
        ],
    }
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    url = config.url.rstrip("/") + "/chat/completions"
    own = client is None
    http = client or httpx.Client(timeout=config.timeout_s)
    try:
        r = http.post(url, json=body, headers=headers, timeout=config.timeout_s)
        if r.status_code != 200:
            return None
        content = r.json()["choices"][0]["message"]["content"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        return None
    finally:
        if own:
            http.close()
    if not isinstance(content, str) or not grounded(content, passages):
        return None
    return content.strip()
