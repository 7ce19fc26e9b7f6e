"""The reader's times, kept once formatted: a kept text is reused only for the same time, zone, language, day."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from webapp import rendering
from webapp.rendering import DISPLAY_TIMEZONE

AT = datetime(2026, 12, 5, 8, 30, tzinfo=UTC)  # 15:30 in Vietnam


def test_a_compact_time_is_the_time_alone_on_its_own_day_and_with_its_date_on_any_other() -> None:
    that_day = AT.astimezone(DISPLAY_TIMEZONE).date()
    assert rendering._compact_datetime(AT, DISPLAY_TIMEZONE, "en_US", today=that_day) == "3:30\u202fPM"
    later = rendering._compact_datetime(AT, DISPLAY_TIMEZONE, "en_US", today=that_day + timedelta(days=1))
    assert later == "12/5/26, 3:30\u202fPM"


def test_a_time_is_formatted_for_its_own_zone_and_language() -> None:
    vietnam = rendering._medium_datetime(AT, DISPLAY_TIMEZONE, "en_US")
    assert vietnam == "Dec 5, 2026, 3:30:00\u202fPM (GMT+07:00)"
    assert rendering._medium_datetime(AT, ZoneInfo("UTC"), "en_US") == "Dec 5, 2026, 8:30:00\u202fAM (GMT+00:00)"
    assert rendering._medium_datetime(AT, DISPLAY_TIMEZONE, "vi_VN") != vietnam
