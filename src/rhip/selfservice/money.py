"""Money as integer fen (分): parsing yuan text exactly and printing fen as yuan, never through a float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from rhip.errors import Invalid

MAX_FEN = 10**13  # a hundred billion yuan: far above any one terminal transaction


def yuan_to_fen(value: str | int | Decimal) -> int:
    """Yuan ('12.50', 12, Decimal('0.1')) to integer fen; more than two decimals or a float is refused."""
    if isinstance(value, bool | float):
        raise Invalid("金额必须以文本或定点数给出（元，至多两位小数），不接受浮点数", code="bad-amount")
    try:
        d = Decimal(str(value).strip().replace(",", "")) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise Invalid(f"金额格式错误：{value}", code="bad-amount") from None
    if not d.is_finite():
        raise Invalid(f"金额格式错误：{value}", code="bad-amount")
    fen = d * 100
    if fen != fen.to_integral_value():
        raise Invalid(f"金额至多两位小数（分）：{value}", code="bad-amount")
    out = int(fen)
    if abs(out) >= MAX_FEN:
        raise Invalid(f"金额超出范围：{value}", code="bad-amount")
    return out


def fen_to_yuan(fen: int) -> str:
    """Integer fen as yuan text with two decimals: 820622972 -> '8206229.72'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"
