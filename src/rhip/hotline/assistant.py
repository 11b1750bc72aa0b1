"""The assistant 宁宁: an intent cascade over one message, and the conversation it belongs to.

1. Crisis and emergency lexicon first (always wins): the fixed answer with 12356 / 120; a crisis opens the
   P0 crisis order for a person to follow up within 24 hours. Nothing else runs, the LLM never does.
2. Transactional rules: cancel or see my bookings, open slots, an institution's level and place, departments.
3. Retrieval over the knowledge base (rjieba + bm25s), with a confidence threshold: below it the conversation
   goes to a human agent as a work order carrying the transcript.
4. Optionally, an OpenAI-compatible model rephrases the retrieved passage (sources shown); any failure falls
   back to the passage itself.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import JSON, Table, bindparam, cast, func, insert, or_, select, true, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from rhip.booking import service as booking
from rhip.clock import SHANGHAI, now
from rhip.config import Settings
from rhip.errors import Invalid
from rhip.hotline import kb, llm, nlp, service as svc
from rhip.hotline.models import Conversation
from rhip.hotline.schemas import ChatReply, Source
from rhip.registry import data as reg_data, directories
from rhip.security.roles import Role
from rhip.security.service import Principal

THRESHOLD = 0.45  # below this retrieval confidence the conversation goes to a person (tuned on the eval set)
BOT = Principal(subject="宁宁", role=Role.agent)
CRISIS_ANSWER = (
    "听到你这样说，我很担心你。你并不孤单，现在就可以和专业的人聊一聊：请拨打 24 小时心理援助热线 12356；"
    "如果你正处在危险中或已经伤害了自己，请立刻拨打 120 或 110。12320 的工作人员会在 24 小时内联系你。"
)
EMERGENCY_ANSWER = (
    "这可能是危急情况，请立即拨打 120 急救电话，说清地址、病人情况和联系电话；在等待时保持病人安全，"
    "不要随意搬动。宁宁不能代替急救。"
)
HANDOFF_ANSWER = (
    "这个问题宁宁还答不好，已为您转给 12320 人工客服（工单号 {number}），"
    "工作人员会尽快联系您；急事请直接拨打 12320。"
)
RULES: list[tuple[str, re.Pattern[str]]] = [
    ("cancel", re.compile(r"(取消|退掉?|不去了).{0,6}(预约|挂号|号)|退号")),
    ("my_appointments", re.compile(r"(我的|我|查).{0,4}(预约|挂的号)|约了哪|预约记录")),
    ("slots", re.compile(r"(还有|有没有|剩|余).{0,4}(号|号源)|号源")),
    ("departments", re.compile(r"(有哪些|有什么|都有啥).{0,2}科室")),
    ("institution", re.compile(r"在哪|地址|怎么走|几级|是几甲|哪个区|什么级别|三甲")),
]


@dataclass
class Turn:
    """One exchange's outcome before it is stored."""

    intent: str
    answer: str
    confidence: float
    sources: list[Source]
    data: dict[str, Any] | None = None
    crisis: bool = False
    handoff: bool = False
    rephrased: bool = False


@cache
def _institution_names() -> list[tuple[str, str]]:
    """(normalised name or alias, code), longest first, for Nanjing's institutions."""
    names: list[tuple[str, str]] = []
    for inst in reg_data.institutions():
        if inst.kind in ("district_platform",):
            continue
        for n in (inst.name, *inst.aliases):
            key = nlp.normalize(n)
            if len(key) >= 4:
                names.append((key, inst.code))
    return sorted(names, key=lambda x: -len(x[0]))


def find_institution(text: str) -> reg_data.InstitutionRecord | None:
    """The institution a message names (longest name or alias found in it)."""
    norm = nlp.normalize(text)
    for key, code in _institution_names():
        if key in norm:
            return next((i for i in reg_data.institutions() if i.code == code), None)
    return None


def _institution_turn(inst: reg_data.InstitutionRecord) -> Turn:
    place = f"位于{inst.district}" if inst.district else f"在{inst.city}"
    level = f"{inst.level}{'（三级）' if inst.tertiary and '三' not in inst.level else ''}"
    answer = (
        f"{inst.name}是{level}医疗机构，{place}。号源可通过 12320 平台预约，具体地址和交通请以医院公布为准。"
    )
    return Turn(
        "institution",
        answer,
        1.0,
        [Source(id=f"registry:{inst.code}", title="机构注册库")],
        {"code": inst.code, "name": inst.name, "level": inst.level, "district": inst.district},
    )


def _slots_turn(session: Session, inst: reg_data.InstitutionRecord) -> Turn:
    t = now()
    slots = booking.find_slots(
        session,
        hospital_code=inst.code,
        start_from=t,
        start_to=t + timedelta(days=7),
        free_only=True,
        limit=200,
    )
    open_ = [s for s in slots if booking.availability(s, at=t).public_open]
    places = sum(booking.availability(s, at=t).public_left for s in open_)
    src = [Source(id=f"booking:{inst.code}", title="预约平台实时号源")]
    if not open_:
        return Turn(
            "slots", f"{inst.name}未来 7 天暂无可预约的公众号源，可以登记候补或选择其他医院。", 1.0, src
        )
    first = min(open_, key=lambda s: s.starts_at)
    when = first.starts_at.astimezone(SHANGHAI).strftime("%m月%d日 %H:%M")
    answer = f"{inst.name}未来 7 天还有 {places} 个可预约号源，最近一个在 {when}。"
    answer += "请在 12320 平台选择科室和医生预约。"
    return Turn("slots", answer, 1.0, src, {"code": inst.code, "places": places, "slots": len(open_)})


def _my_turn(session: Session, actor: Principal | None, intent: str) -> Turn:
    src = [Source(id="booking:me", title="我的预约")]
    if actor is None or actor.role is not Role.resident:
        return Turn(intent, "查看或取消本人的预约需要先登录（实名），登录后在“我的预约”里操作。", 1.0, src)
    appts = booking.get_all_appointments(session, actor=actor, limit=5)
    upcoming = [a for a in appts if a.status in ("held", "booked") and a.starts_at > now()]
    if not upcoming:
        return Turn(intent, "您目前没有待就诊的预约。", 1.0, src, {"appointments": []})
    lines = [
        f"{a.starts_at.astimezone(SHANGHAI):%m月%d日 %H:%M} {booking.hospital(a.hospital_code).name}"
        for a in upcoming
    ]
    tip = "请在就诊前一天 18 点前在“我的预约”里取消。" if intent == "cancel" else ""
    return Turn(
        intent,
        "您待就诊的预约：" + "；".join(lines) + "。" + tip,
        1.0,
        src,
        {"appointments": [a.id for a in upcoming]},
    )


def _rule(session: Session, message: str, actor: Principal | None) -> Turn | None:
    for intent, pattern in RULES:
        if not pattern.search(nlp.normalize(message)):
            continue
        if intent in ("cancel", "my_appointments"):
            return _my_turn(session, actor, intent)
        inst = find_institution(message)
        if intent == "slots" and inst is not None:
            return _slots_turn(session, inst)
        if intent == "institution" and inst is not None:
            return _institution_turn(inst)
        if intent == "departments":
            top = [d.name for d in directories.departments() if d.parent_code is None][:30]
            return Turn("departments", "可预约的诊疗科目包括：" + "、".join(top) + "等。", 1.0, [])
    inst = find_institution(message)
    if inst is not None and len(nlp.squeeze(message)) <= len(nlp.normalize(inst.name)) + 6:
        return _institution_turn(inst)  # a message that is little more than a name asks about the place
    return None


def _llm_config(settings: Settings | None) -> llm.LlmConfig | None:
    if settings is None or not settings.llm_url:
        return None
    return llm.LlmConfig(settings.llm_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout_s)


def answer(session: Session, *, message: str, actor: Principal | None, settings: Settings | None) -> Turn:
    """The cascade for one message (no side effects: the caller opens orders and stores the turn)."""
    kind = nlp.alarm(message)
    if kind == "crisis":
        return Turn(
            "crisis", CRISIS_ANSWER, 1.0, [Source(id="fixed:crisis", title="心理危机固定答复")], crisis=True
        )
    if kind == "emergency":
        return Turn("emergency", EMERGENCY_ANSWER, 1.0, [Source(id="fixed:emergency", title="急救固定答复")])
    ruled = _rule(session, message, actor)
    if ruled is not None:
        return ruled
    hit = kb.index().search(message)
    if hit is None or hit.confidence < THRESHOLD:
        return Turn("handoff", "", hit.confidence if hit else 0.0, [], handoff=True)
    src = [Source(id=hit.entry.id, title=hit.entry.source)]
    turn = Turn(f"kb:{hit.entry.topic}", hit.entry.answer, hit.confidence, src)
    config = _llm_config(settings)
    if config is not None:
        better = llm.rephrase(config, question=message, passages=[hit.entry.answer])
        if better is not None:
            turn.answer, turn.rephrased = better, True
    return turn


def _conversation(session: Session, token: str | None, actor: Principal | None) -> Conversation:
    if token:
        # populate_existing: the answered turns are written by plain statements, which an ORM object loaded
        # earlier in the same session (expire_on_commit is off) would not see
        q = select(Conversation).where(Conversation.token == token).execution_options(populate_existing=True)
        conv = session.scalar(q)
        if conv is None or not _may_continue(conv.subject, actor):
            raise Invalid("会话不存在或已过期，请重新开始", code="conversation-not-found")
        return conv
    t = now()
    conv = Conversation(
        token=uuid.uuid4().hex,
        started_at=t,
        updated_at=t,
        subject=_owner(actor),
        transcript=[],
        turns=0,
        outcome="answered",
        last_intent="",
    )
    session.add(conv)
    return conv


def _owner(actor: Principal | None) -> str | None:
    """Whose conversation a new one is: a signed-in resident's, or nobody's (anyone holding the token)."""
    return actor.subject if actor and actor.role is Role.resident else None


def _may_continue(subject: str | None, actor: Principal | None) -> bool:
    return not subject or (actor is not None and actor.subject == subject)


CONV: Table = Conversation.__table__  # type: ignore[assignment]
NEW_ROW = ["token", "started_at", "updated_at", "subject", "turns", "outcome", "last_intent", "transcript"]


@cache
def _statements(dialect: str) -> tuple[Any, Any]:
    """The two statements of an answered turn, built once per dialect (plain Core on the table: no ORM
    bookkeeping): a new conversation's INSERT, and the UPDATE that appends a turn to the caller's own one."""
    c = CONV.c
    row = [bindparam(k, type_=c[k].type) for k in NEW_ROW]
    if dialect == "postgresql":
        # an answered turn is a log line, not a commitment: it need not wait for the WAL flush (a crash may
        # lose the last fraction of a second of such turns); crisis and hand-off orders commit durably. The
        # condition is always true and does SET LOCAL synchronous_commit = off without a round trip of its own
        lazy: list[Any] = [
            select(func.set_config("synchronous_commit", "off", true())).scalar_subquery().is_not(None)
        ]
        added = bindparam("added", type_=JSONB)
        transcript: Any = cast(cast(c.transcript, JSONB).op("||")(added), JSON)
    else:
        lazy = []
        transcript = func.json_insert(
            c.transcript, "$[#]", func.json(bindparam("said")), "$[#]", func.json(bindparam("back"))
        )
    add = insert(CONV).from_select(NEW_ROW, select(*row).where(*lazy))
    mine = or_(c.subject.is_(None), c.subject == "", c.subject == bindparam("me"))
    turn = (
        update(CONV)
        .where(c.token == bindparam("tok"), mine, *lazy)
        .values(
            transcript=transcript,
            turns=c.turns + 1,
            updated_at=bindparam("t"),
            last_intent=bindparam("intent"),
        )
        .returning(c.id)
    )
    return add, turn


def _log_answered(
    session: Session,
    token: str | None,
    actor: Principal | None,
    turn: Turn,
    said: dict[str, Any],
    t: datetime,
) -> str:
    """Store an answered turn in one statement (a new conversation's INSERT, or an UPDATE appending to the
    transcript of the caller's own conversation); the conversation's token. Its outcome does not change
    (answered is the lowest)."""
    dialect = session.get_bind().dialect.name
    add, append = _statements(dialect)
    back = {"role": "assistant", "text": turn.answer, "intent": turn.intent, "at": t.isoformat()}
    if token is None:
        token = uuid.uuid4().hex
        row = [token, t, t, _owner(actor), 1, "answered", turn.intent, [said, back]]
        session.execute(add, dict(zip(NEW_ROW, row, strict=True)))
        return token
    params: dict[str, Any] = {
        "tok": token,
        "me": actor.subject if actor else None,
        "t": t,
        "intent": turn.intent,
    }
    if dialect == "postgresql":
        params["added"] = [said, back]
    else:
        params["said"], params["back"] = (json.dumps(x, ensure_ascii=False) for x in (said, back))
    if session.execute(append, params).first() is None:
        raise Invalid("会话不存在或已过期，请重新开始", code="conversation-not-found")
    return token


def chat(
    session: Session,
    *,
    message: str,
    conversation: str | None,
    actor: Principal | None,
    settings: Settings | None,
) -> ChatReply:
    """Answer one message in its conversation: crisis and hand-off open work orders; the turn is stored."""
    text = message.strip()
    if not text:
        raise Invalid("请输入您的问题", code="empty-message")
    turn = answer(session, message=text, actor=actor, settings=settings)
    t = now()
    said = {"role": "user", "text": text, "at": t.isoformat()}
    order_number = None
    if turn.crisis or turn.handoff:
        token, order_number = _escalate(session, conversation, actor, turn, said, t)
    else:
        token = _log_answered(session, conversation, actor, turn, said, t)
    return ChatReply(
        conversation=token,
        intent=turn.intent,
        answer=turn.answer,
        sources=turn.sources,
        confidence=turn.confidence,
        handed_off=turn.handoff,
        crisis=turn.crisis,
        order_number=order_number,
        rephrased=turn.rephrased,
        data=turn.data,
    )


def _escalate(
    session: Session,
    token: str | None,
    actor: Principal | None,
    turn: Turn,
    said: dict[str, Any],
    t: datetime,
) -> tuple[str, str]:
    """A crisis or a hand-off: the work order (with the transcript so far) and the turn stored; the
    conversation's token and the order's number."""
    conv = _conversation(session, token, actor)
    transcript = [*conv.transcript, said]
    session.flush()
    if turn.crisis:
        order = svc.open_crisis(
            session,
            actor=BOT,
            risk_level="unassessed",
            note="智慧客服宁宁识别到危机表述，已给出 12356/120 固定答复，须人工在 24 小时内回访。",
            transcript=transcript,
        )
    else:
        order = svc.create_order(
            session,
            actor=BOT,
            source="assistant",
            title=f"宁宁转人工：{said['text'][:40]}",
            content="智慧客服未能可靠回答，请人工跟进。",
            transcript=transcript,
        )
        turn.answer = HANDOFF_ANSWER.format(number=order.number)
    conv.order_id = order.id
    transcript.append({"role": "assistant", "text": turn.answer, "intent": turn.intent, "at": t.isoformat()})
    conv.transcript = transcript
    conv.turns += 1
    conv.updated_at = t
    conv.last_intent = turn.intent
    # a conversation's outcome only escalates: answered → handoff → crisis
    if turn.crisis or conv.outcome == "answered":
        conv.outcome = "crisis" if turn.crisis else "handoff"
    session.flush()
    return conv.token, order.number
