"""预约挂号服务统计's columns by era: phone bookings (the hotline's, channel phone_12320) counted once."""

from __future__ import annotations

from rhip.booking import stats
from rhip.registry import directories

COUNTS = {
    ("H020", "quick_12320"): 5,
    ("H020", "phone_12320"): 7,
    ("H020", "jkn_app"): 3,
    ("H029", "in_clinic"): 2,
    ("H029", "phone_12320"): 1,
    ("H020", "hospital_own"): 4,  # not platform booking: in no column, not in the note
}


def _groups() -> dict[str, str]:
    return {c.code: c.group for c in directories.channels()}


def test_since_2022_quick_alone_and_phone_bookings_in_the_note_once() -> None:
    columns, per, apart = stats.hospital_rows(COUNTS, _groups(), "2025-03")
    assert columns == ["12320 在线预约", "快速预约", "诊间预约", "第三方"]
    assert per["H020"] == {"12320 在线预约": 3, "快速预约": 5, "诊间预约": 0, "第三方": 0}
    assert per["H029"] == {"12320 在线预约": 0, "快速预约": 0, "诊间预约": 2, "第三方": 0}
    assert apart == 8  # every phone booking once, outside the columns (as in 2022-08, 2025-02, 2025-03)


def test_until_2021_the_phone_column_holds_the_hotline_bookings_and_quick_is_online() -> None:
    columns, per, apart = stats.hospital_rows(COUNTS, _groups(), "2020-05")
    assert columns == ["12320 在线预约", "电话预约", "诊间预约", "第三方"]
    assert per["H020"] == {"12320 在线预约": 8, "电话预约": 7, "诊间预约": 0, "第三方": 0}
    assert per["H029"]["电话预约"] == 1 and apart == 0
    # each booking counted at most once, whatever the era
    for month in ("2018-03", "2022-08", "2025-03"):
        _c, rows, rest = stats.hospital_rows(COUNTS, _groups(), month)
        assert sum(sum(r.values()) for r in rows.values()) + rest == sum(COUNTS.values()) - 4
