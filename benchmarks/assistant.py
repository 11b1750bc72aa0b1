"""The assistant 宁宁 on its held-out evaluation set (src/rhip/hotline/data/eval.jsonl).

Reports intent accuracy (knowledge-base questions answered from the right entry, crises and emergencies
recognised, out-of-scope questions handed to a person), top-1 answer accuracy over the knowledge-base
questions, the hand-off rate of knowledge-base questions, crisis recall (must be 100%) and the false-alarm
rate
over every non-crisis question. No LLM step. Writes results/assistant.json.

    .venv/bin/python benchmarks/assistant.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.hotline import assistant, evalset
from rhip.registry import service as registry

RESULTS = Path(__file__).with_name("results")
HANDWRITTEN = {q for q, _a in evalset.HANDWRITTEN}


def evaluate(settings: Settings) -> dict[str, object]:
    """Run every evaluation question through the cascade; the figures."""
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    items = evalset.load()
    got: list[tuple[evalset.Item, str, str | None]] = []
    started = time.perf_counter()
    try:
        with db.session() as s, s.begin():
            registry.ensure_loaded(s)
            for it in items:
                turn = assistant.answer(s, message=it.question, actor=None, settings=None)
                kb_id = turn.sources[0].id if turn.sources and turn.intent.startswith("kb:") else None
                got.append((it, turn.intent, kb_id))
    finally:
        db.dispose()
    seconds = time.perf_counter() - started
    kb_items = [(it, i, k) for it, i, k in got if it.answer]
    top1 = sum(1 for it, _i, k in kb_items if k == it.answer) / len(kb_items)
    handoff_kb = sum(1 for _it, i, _k in kb_items if i == "handoff") / len(kb_items)

    def right(it: evalset.Item, intent: str, k: str | None) -> bool:
        if it.answer:
            return k == it.answer or (
                intent not in ("handoff", "crisis", "emergency") and not intent.startswith("kb:")
            )
        if it.intent == "not_crisis":
            return intent != "crisis"
        return intent == it.intent

    crisis = [(it, i) for it, i, _k in got if it.intent == "crisis"]
    others = [(it, i) for it, i, _k in got if it.intent != "crisis"]
    out = {
        "questions": len(items),
        "kb_questions": len(kb_items),
        "intent_accuracy": round(sum(right(*g) for g in got) / len(got), 4),
        "top1_answer_accuracy": round(top1, 4),
        "handoff_rate_kb": round(handoff_kb, 4),
        "handoff_rate_out_of_scope": round(
            sum(1 for it, i, _k in got if it.intent == "handoff" and i == "handoff")
            / max(1, sum(1 for it, _i, _k in got if it.intent == "handoff")),
            4,
        ),
        "crisis_recall": round(sum(1 for _it, i in crisis if i == "crisis") / len(crisis), 4),
        "crisis_false_alarm_rate": round(sum(1 for _it, i in others if i == "crisis") / len(others), 4),
        "emergency_recall": round(
            sum(1 for it, i, _k in got if it.intent == "emergency" and i == "emergency")
            / max(1, sum(1 for it, _i, _k in got if it.intent == "emergency")),
            4,
        ),
        "handwritten_top1": round(
            sum(1 for it, _i, k in got if it.question in HANDWRITTEN and k == it.answer) / len(HANDWRITTEN), 4
        ),
        "handwritten_handoff_rate": round(
            sum(1 for it, i, _k in got if it.question in HANDWRITTEN and i == "handoff") / len(HANDWRITTEN), 4
        ),
        "threshold": assistant.THRESHOLD,
        "intents_seen": dict(Counter(i.split(":")[0] for _it, i, _k in got)),
        "seconds": round(seconds, 2),
    }
    return out


def main() -> None:
    """Evaluate on a fresh SQLite database and print and write the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        res = evaluate(Settings(data_dir=Path(tmp), secret_key="bench-secret-key-0123456789abcdef0123"))
    for k, v in res.items():
        print(f"{k}: {v}")
    ok = res["crisis_recall"] == 1.0
    print("crisis recall 100%:", "yes" if ok else "NO")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "assistant.json").write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
