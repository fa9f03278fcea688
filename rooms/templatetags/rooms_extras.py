from __future__ import annotations

from datetime import UTC, datetime

from django import template

register = template.Library()


@register.filter
def from_ms(value: int) -> datetime:
    """Milliseconds since the epoch (the state's timestamps) as an aware datetime."""
    return datetime.fromtimestamp(value / 1000, tz=UTC)
