"""Chinese text for the assistant: normalisation (full-width, traditional characters, common typos, pinyin
initials), the crisis and emergency lexicon, and segmentation with rjieba plus our medical and Nanjing words.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from pathlib import Path

import rjieba
import yaml

from rhip.registry import data as reg_data, directories

DATA = Path(__file__).with_name("data")
# traditional → simplified for the characters residents' questions use (a full table is not needed: the
# knowledge base is simplified and retrieval only needs the words it knows)
TRAD = str.maketrans(
    "醫號預約掛診療檢驗報告衛藥臨區養護兒婦幼產嬰檔費險務處發復體壓糖電話線聯絡機構門問題網頁證書圖點鐘時間費用憑卡辦開關"
    "們這裡麼會說請謝邊還沒過樣麼頭腦臟髒腎膽腸聽覺齒牙齡歲親屬導轉針劑療癒應對歡選擇結實歷紀錄讀寫東條負責專屬幫員購銷",
    "医号预约挂诊疗检验报告卫药临区养护儿妇幼产婴档费险务处发复体压糖电话线联络机构门问题网页证书图点钟时间费用凭卡办开关"
    "们这里么会说请谢边还没过样么头脑脏脏肾胆肠听觉齿牙龄岁亲属导转针剂疗愈应对欢选择结实历纪录读写东条负责专属帮员购销",
)
TYPOS = {
    "挂好": "挂号",
    "卦号": "挂号",
    "guahao": "挂号",
    "医宝": "医保",
    "预越": "预约",
    "预定": "预约",
    "取笑预约": "取消预约",
    "健康挡案": "健康档案",
    "挡案": "档案",
    "疫描": "疫苗",
    "体捡": "体检",
    "报吿": "报告",
    "看病的卡": "就诊卡",
    "小孩": "儿童",
    "娃": "儿童",
    "宝宝": "儿童",
    "咋": "怎么",
    "咋个": "怎么",
    "啥": "什么",
    "哪儿": "哪里",
    "哪块": "哪里",
    "木有": "没有",
    "晓得": "知道",
    "号子": "号",
}
# pinyin initials residents type for common words (checked as whole tokens of Latin letters)
INITIALS = {
    "gh": "挂号",
    "yy": "医院",
    "yb": "医保",
    "yyue": "预约",
    "yyuegh": "预约挂号",
    "qx": "取消",
    "tj": "体检",
    "bg": "报告",
    "ym": "疫苗",
    "jkda": "健康档案",
    "jtys": "家庭医生",
    "dzjkk": "电子健康卡",
    "sbk": "社保卡",
    "xl": "心理",
}
PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


@lru_cache(maxsize=8192)
def normalize(text: str) -> str:
    """NFKC, lower case, traditional characters and common typos and pinyin initials replaced."""
    t = unicodedata.normalize("NFKC", text).lower().translate(TRAD)
    t = re.sub(r"[a-z]+", lambda m: INITIALS.get(m.group(0), m.group(0)), t)
    for wrong, right in TYPOS.items():
        t = t.replace(wrong, right)
    return t


def squeeze(text: str) -> str:
    """Normalised text without spaces or punctuation (a phrase split by them is still found)."""
    return PUNCT.sub("", normalize(text))


@cache
def lexicon() -> dict[str, tuple[str, ...]]:
    """The crisis and emergency phrases, normalised."""
    raw = yaml.safe_load((DATA / "lexicon.yaml").read_text(encoding="utf-8"))
    return {k: tuple(squeeze(p) for p in v) for k, v in raw.items()}


def alarm(text: str) -> str | None:
    """ "crisis" or "emergency" when the text holds a phrase of the lexicon (crisis first), else None."""
    s = squeeze(text)
    for kind in ("crisis", "emergency"):
        if any(p in s for p in lexicon()[kind]):
            return kind
    return None


@cache
def _tokenizer() -> rjieba.Jieba:
    """rjieba with the user dictionary and the registry's institution and department names."""
    jb = rjieba.Jieba()
    for row in (DATA / "userdict.txt").read_text(encoding="utf-8").splitlines():
        parts = row.split()
        if parts:
            jb.add_word(parts[0], int(parts[1]) if len(parts) > 1 else 5000, None)
    for inst in reg_data.institutions():
        for name in (inst.name, *inst.aliases):
            jb.add_word(normalize(name), 3000, None)
    for dept in directories.departments():
        jb.add_word(dept.name, 3000, None)
    return jb


STOP = frozenset(
    [
        "的",
        "了",
        "吗",
        "呢",
        "啊",
        "吧",
        "呀",
        "么",
        "我",
        "你",
        "他",
        "她",
        "它",
        "们",
        "是",
        "在",
        "有",
        "和",
        "与",
        "或",
        "就",
        "都",
        "也",
        "还",
        "要",
        "想",
        "请",
        "问",
        "一下",
        "一个",
        "怎么",
        "怎样",
        "如何",
        "什么",
        "哪里",
        "哪个",
        "怎么样",
        "今天",
        "明天",
        "可以",
        "能",
        "能不能",
        "可不可以",
        "需要",
        "应该",
        "多少",
        "几",
        "为什么",
        "这",
        "那",
        "个",
        "下",
        "吧",
        "嘛",
        "哦",
        "呃",
        "嗯",
        "谢谢",
        "您好",
        "你好",
        "请问",
        "宁宁",
    ]
)


def tokens(text: str) -> list[str]:
    """Content words of a text (segmented, stop words dropped), and its Chinese runs' bigrams."""
    norm = normalize(text)
    words = [
        w for w in _tokenizer().cut(norm, True) if w.strip() and not PUNCT.fullmatch(w) and w not in STOP
    ]
    # character bigrams make retrieval robust to segmentation differences and typos
    grams = []
    for run in re.findall(r"[\u4e00-\u9fff]+", norm):
        grams += [run[i : i + 2] for i in range(len(run) - 1)]
    return words + [f"#{g}" for g in grams if g not in STOP]
