"""The password policy: 8 to 128 characters, not a common password, not the user's own name or number."""

from __future__ import annotations

from functools import cache

from rhip.errors import Invalid

MIN_LENGTH = 8
MAX_LENGTH = 128
# passwords common on Chinese sites that the (English-weighted) zxcvbn list misses
_CHINESE_COMMON = [
    "woaini1314",
    "5201314",
    "woaini520",
    "woaini",
    "1qaz2wsx",
    "1q2w3e4r",
    "a123456",
    "a123456789",
    "aa123456",
    "qq123456",
    "123qwe",
    "123qweasd",
    "qweasdzxc",
    "zxcvbnm",
    "88888888",
    "66666666",
    "11223344",
    "147258369",
    "123456aa",
    "abc123456",
    "iloveyou1314",
    "password1",
    "admin123",
    "root1234",
    "nanjing",
    "nanjing123",
    "12320",
    "123456abc",
]


@cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords (zxcvbn's list, from leaked password sets) and Chinese ones."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"]) | frozenset(_CHINESE_COMMON)


def check_password(password: str, *, username: str | None = None) -> None:
    """Raise Invalid (weak-password) unless the password passes the policy."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"密码至少 {MIN_LENGTH} 位", code="weak-password")
    if len(password) > MAX_LENGTH:
        raise Invalid(f"密码最多 {MAX_LENGTH} 位", code="weak-password")
    low = password.lower()
    if low in common_passwords() or len(set(low)) <= 2:
        raise Invalid("密码过于常见或简单，请换一个不易猜到的密码", code="weak-password")
    if low.isdigit() and (low in "01234567890123456789" or low in "98765432109876543210"):
        raise Invalid("密码不能是连续数字", code="weak-password")
    if username and len(username) >= 4 and (username.lower() in low or low in username.lower()):
        raise Invalid("密码不能包含用户名或身份证号", code="weak-password")
