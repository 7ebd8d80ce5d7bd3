"""Watering rules, loaded before watering.py as a `dependencies` entry of the script step."""

from datetime import date

DRY_BELOW_PCT = 25  # soil moisture under this means water now, whatever the calendar says


def days_between(earlier: str, later: str) -> int:
    return (date.fromisoformat(later) - date.fromisoformat(earlier)).days


def reason_to_water(every_days: int, days_since: int, moisture_pct: float) -> str | None:
    if moisture_pct < DRY_BELOW_PCT:
        return "dry soil"
    if days_since >= every_days:
        return f"every {every_days} day(s)"
    return None
