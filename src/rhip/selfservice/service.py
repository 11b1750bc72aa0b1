"""Self-service services, the domain's facade: the terminals' registry (terminals.py), their keys (keys.py),
transactions (transactions.py),
file imports (imports.py), cards and the electronic health card (cards.py), money in fen (money.py).

Every function takes a Session and keyword arguments and never commits: the entry point owns the
transaction."""

from __future__ import annotations

from rhip.selfservice.cards import (
    CHANNELS as CARD_CHANNELS,
    DYNAMIC_TTL as DYNAMIC_TTL,
    Resolved as Resolved,
    card_counts as card_counts,
    cards_to_date as cards_to_date,
    dynamic_code as dynamic_code,
    get_health_card as get_health_card,
    issue_cards as issue_cards,
    issue_health_card as issue_health_card,
    resolve as resolve,
    set_card_baseline as set_card_baseline,
    static_code as static_code,
    uses_by_channel as uses_by_channel,
)
from rhip.selfservice.imports import ImportResult as ImportResult, import_csv as import_csv
from rhip.selfservice.keys import (
    TerminalRef as TerminalRef,
    forget_key as forget_key,
    get_terminal as get_terminal,
    terminal_principal as terminal_principal,
    verify_key as verify_key,
    verify_key_cached as verify_key_cached,
)
from rhip.selfservice.models import (
    CardIssue as CardIssue,
    HealthCard as HealthCard,
    Terminal as Terminal,
    TerminalTransaction as TerminalTransaction,
)
from rhip.selfservice.money import fen_to_yuan as fen_to_yuan, yuan_to_fen as yuan_to_fen
from rhip.selfservice.terminals import (
    STATUSES as STATUSES,
    check_staff as check_staff,
    create_terminal as create_terminal,
    create_terminals as create_terminals,
    get_terminals as get_terminals,
    issue_key as issue_key,
    set_status as set_status,
    today_slots as today_slots,
)
from rhip.selfservice.transactions import (
    KINDS as KINDS,
    Posted as Posted,
    TxnIn as TxnIn,
    get_transactions as get_transactions,
    plain_row as plain_row,
    post as post,
    post_many as post_many,
    resolve_terminal as resolve_terminal,
    resolve_terminal_cached as resolve_terminal_cached,
)

__all__ = ["CARD_CHANNELS"]
