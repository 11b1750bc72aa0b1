"""The hotline's public API, the module other domains, the web and the CLI import. The logic lives by
responsibility: calls.py (desk, CDR, caller identification, 电话预约), orders.py (work orders and their state
machine), order_list.py (the list: keyset pages, capped counts), order_files.py (12345 orders by file),
crisis.py (心理危机干预), followup.py (回访), personal.py (ID numbers: checked, masked, audited),
sla_job.py (the SLA job's statements).

Functions take a Session and keyword arguments and never commit: the entry point owns the transaction.
"""

from __future__ import annotations

from rhip.hotline.calls import (
    CATEGORY_LABELS,
    PHONE_RE,
    CdrReport,
    book_for_caller,
    get_all_calls,
    get_call,
    identify_caller,
    import_cdr,
    log_call,
)
from rhip.hotline.crisis import RISK_LEVELS, open_crisis
from rhip.hotline.followup import callback
from rhip.hotline.order_files import ORDER_FILE_COLUMNS, OrderImportReport, import_orders
from rhip.hotline.order_list import (
    COUNT_CAP,
    Count,
    OrderPage,
    filtered_orders,
    get_all_orders,
    search_orders,
)
from rhip.hotline.orders import (
    ACTION_LABELS,
    ACTIONS,
    CENTRE_ROLES,
    OPEN_STATES,
    READERS,
    SOURCES,
    STATE_LABELS,
    STATES,
    act,
    create_order,
    get_order,
    order_events,
)
from rhip.hotline.personal import check_id_number, read_personal
from rhip.hotline.sla_job import (
    CHUNK,
    PASSES,
    Cursor,
    Progress,
    notify_chunk,
    pending,
    record_run,
    run_sla,
    run_sla_step,
    run_walks,
    sla_counts,
    sla_summary,
    window_start,
)

__all__ = [
    "ACTIONS",
    "ACTION_LABELS",
    "CATEGORY_LABELS",
    "CENTRE_ROLES",
    "CHUNK",
    "COUNT_CAP",
    "OPEN_STATES",
    "ORDER_FILE_COLUMNS",
    "PASSES",
    "PHONE_RE",
    "READERS",
    "RISK_LEVELS",
    "SOURCES",
    "STATES",
    "STATE_LABELS",
    "CdrReport",
    "Count",
    "Cursor",
    "OrderImportReport",
    "OrderPage",
    "Progress",
    "act",
    "book_for_caller",
    "callback",
    "check_id_number",
    "create_order",
    "filtered_orders",
    "get_all_calls",
    "get_all_orders",
    "get_call",
    "get_order",
    "identify_caller",
    "import_cdr",
    "import_orders",
    "log_call",
    "notify_chunk",
    "open_crisis",
    "order_events",
    "pending",
    "read_personal",
    "record_run",
    "run_sla",
    "run_sla_step",
    "run_walks",
    "search_orders",
    "sla_counts",
    "sla_summary",
    "window_start",
]
