"""Refusal codes become Chinese refusals; a code this version does not know is still a refusal (409)."""

from __future__ import annotations

import pytest

from rhip.booking.refusals import refuse
from rhip.errors import Conflict


def test_unknown_refusal_code_is_a_generic_refusal_not_a_key_error() -> None:
    with pytest.raises(Conflict) as exc:
        refuse("rule-from-a-newer-database", "public")
    assert exc.value.status == 409 and exc.value.code == "refused" and "预约未成功" in exc.value.detail
    assert exc.value.extra["rule"] == "rule-from-a-newer-database"


def test_refusals_without_a_time_still_read_well() -> None:
    with pytest.raises(Conflict) as exc:
        refuse("not-released", "public")
    assert exc.value.code == "not-released" and "None" not in exc.value.detail
    with pytest.raises(Conflict) as exc:
        refuse("suspended", "public")
    assert "None" not in exc.value.detail
