"""The assistant 宁宁: crisis always wins, hand-off with the transcript, the optional LLM step against a local
server speaking the chat-completions protocol (good, slow, garbage and ungrounded answers)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.config import Settings
from rhip.errors import Invalid
from rhip.hotline import assistant, kb, llm, nlp
from rhip.hotline.models import Conversation, WorkOrder
from rhip.security.roles import Role
from rhip.security.service import Principal
from tests.conftest import SECRET

CRISIS = [p for p in nlp.lexicon()["crisis"]]
FILLER = st.text(
    alphabet="今天我们医院挂号排队好累老师孩子工作家里压力大真的一点都没有意思吗呢啊，。！？ ", max_size=30
)


@given(before=FILLER, after=FILLER, phrase=st.sampled_from(CRISIS), spaced=st.booleans())
@hsettings(max_examples=300, deadline=None)
def test_crisis_phrase_anywhere_in_a_sentence_always_escalates(
    before: str, after: str, phrase: str, spaced: bool
) -> None:
    inserted = " ".join(phrase) if spaced else phrase  # letters split by spaces are still found
    assert nlp.alarm(before + inserted + after) == "crisis"


def test_crisis_beats_every_other_intent(session: Session) -> None:
    for text in ("帮我取消预约，我不想活了", "鼓楼医院在哪 想自杀", "醫保怎麼報銷 想死"):
        turn = assistant.answer(session, message=text, actor=None, settings=None)
        assert turn.crisis and "12356" in turn.answer and "120" in turn.answer
    session.rollback()


def test_crisis_chat_opens_p0_order_with_transcript(session: Session) -> None:
    with session.begin():
        reply = assistant.chat(
            session, message="活着没意思，不想活了", conversation=None, actor=None, settings=None
        )
        assert reply.crisis and reply.order_number and reply.order_number.startswith("WJ")
        order = session.scalar(select(WorkOrder).where(WorkOrder.number == reply.order_number))
        assert order is not None and order.priority == "P0" and order.transcript
        assert order.transcript[0]["text"] == "活着没意思，不想活了"


def test_unknown_question_goes_to_a_person(session: Session) -> None:
    with session.begin():
        first = assistant.chat(session, message="怎么预约挂号", conversation=None, actor=None, settings=None)
        assert not first.handed_off and first.sources and first.sources[0].id == "bk001"
        second = assistant.chat(
            session,
            message="帮我订一张去上海的高铁票",
            conversation=first.conversation,
            actor=None,
            settings=None,
        )
        assert second.handed_off and second.order_number and second.order_number in second.answer
        conv = session.scalar(select(Conversation).where(Conversation.token == first.conversation))
        assert conv is not None and conv.turns == 2 and conv.outcome == "handoff"
        order = session.scalar(select(WorkOrder).where(WorkOrder.number == second.order_number))
        assert order is not None and [t["role"] for t in order.transcript or []] == [
            "user",
            "assistant",
            "user",
        ]


def test_answered_turns_append_to_the_callers_own_conversation(session: Session) -> None:
    resident = Principal(subject="r-1", role=Role.resident)
    with session.begin():
        first = assistant.chat(
            session, message="怎么预约挂号", conversation=None, actor=resident, settings=None
        )
        assert not first.handed_off and not first.crisis
        for _ in range(2):
            again = assistant.chat(
                session,
                message="怎么预约挂号",
                conversation=first.conversation,
                actor=resident,
                settings=None,
            )
            assert again.conversation == first.conversation
    for stranger in (None, Principal(subject="r-2", role=Role.resident)):
        with pytest.raises(Invalid), session.begin():
            assistant.chat(
                session,
                message="怎么预约挂号",
                conversation=first.conversation,
                actor=stranger,
                settings=None,
            )
    with pytest.raises(Invalid), session.begin():
        assistant.chat(session, message="怎么预约挂号", conversation="0" * 32, actor=resident, settings=None)
    with session.begin():
        q = select(Conversation).where(Conversation.token == first.conversation)
        conv = session.scalar(q.execution_options(populate_existing=True))
        assert conv is not None and conv.turns == 3 and conv.subject == "r-1" and conv.outcome == "answered"
        assert [t["role"] for t in conv.transcript] == ["user", "assistant"] * 3
        assert [t["text"] for t in conv.transcript[::2]] == ["怎么预约挂号"] * 3
        assert conv.transcript[-1]["text"] == first.answer and conv.last_intent == first.intent
        # a hand-off after answered turns carries them all to the person who takes it over
        handed = assistant.chat(
            session,
            message="帮我订一张去上海的高铁票",
            conversation=first.conversation,
            actor=resident,
            settings=None,
        )
        order = session.scalar(select(WorkOrder).where(WorkOrder.number == handed.order_number))
        assert order is not None and len(order.transcript or []) == 7


def test_institution_look_up_from_the_registry(session: Session) -> None:
    turn = assistant.answer(session, message="鼓楼医院在哪个区", actor=None, settings=None)
    session.rollback()
    assert (
        turn.intent == "institution" and "鼓楼" in turn.answer and turn.sources[0].id.startswith("registry:")
    )


def test_retrieval_handles_traditional_characters_typos_and_initials() -> None:
    ix = kb.index()
    for text, want in (("醫保怎麼報銷", "ins001"), ("娃要打疫描去哪", "ph005"), ("gh要提前几天", "bk002")):
        hit = ix.search(text)
        assert hit is not None and hit.entry.id == want, (text, hit)


# ------------------------------------------------------------------ the LLM step against a local server

MODE: dict[str, Any] = {"mode": "good"}


class FakeChat(BaseHTTPRequestHandler):
    """Speaks POST /v1/chat/completions like an OpenAI-compatible server."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length))
        MODE["seen"] = body
        mode = MODE["mode"]
        if mode == "slow":
            time.sleep(1.5)
        if mode == "garbage":
            payload = b"<html>oops"
        elif mode == "error":
            self.send_response(500)
            self.end_headers()
            return
        else:
            passage = body["messages"][1]["content"]
            text = "您好！" + (
                "打 95555 就行" if mode == "invented" else "可以拨打 12320 电话预约，坐席会帮您。"
            )
            assert "资料" in passage
            payload = json.dumps(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                }
            ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@pytest.mark.parametrize(
    ("mode", "rephrased"),
    [("good", True), ("slow", False), ("garbage", False), ("error", False), ("invented", False)],
)
def test_llm_rephrases_or_falls_back(session: Session, fake_llm: str, mode: str, rephrased: bool) -> None:
    MODE["mode"] = mode
    s = Settings(secret_key=SECRET, llm_url=fake_llm, llm_model="deepseek-chat", llm_timeout_s=0.5)
    turn = assistant.answer(session, message="12320 能预约挂号吗", actor=None, settings=s)
    session.rollback()
    entry = next(e for e in kb.entries() if e.id == turn.sources[0].id)
    assert turn.rephrased is rephrased
    assert turn.answer == ("您好！可以拨打 12320 电话预约，坐席会帮您。" if rephrased else entry.answer)
    assert MODE["seen"]["model"] == "deepseek-chat"


def test_llm_never_sees_a_crisis(session: Session, fake_llm: str) -> None:
    MODE["mode"], MODE["seen"] = "good", None
    s = Settings(secret_key=SECRET, llm_url=fake_llm)
    turn = assistant.answer(session, message="我想自杀", actor=None, settings=s)
    session.rollback()
    assert turn.crisis and MODE["seen"] is None and not turn.rephrased


def test_grounded_check() -> None:
    assert llm.grounded("请拨打 12320 预约。", ["拨打 12320 可以预约"])
    assert not llm.grounded("请拨打 12345 预约。", ["拨打 12320 可以预约"])
    assert not llm.grounded("ok", ["拨打 12320 可以预约"])
