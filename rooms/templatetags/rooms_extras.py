from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import quote

from django import template

from rooms.rendering import role_text

register = template.Library()


@register.filter
def from_ms(value: int) -> datetime:
    """Milliseconds since the epoch (the state's timestamps) as an aware datetime."""
    return datetime.fromtimestamp(value / 1000, tz=UTC)


@register.filter
def fill(text: str, name: str) -> str:
    """A config text with ``%0`` standing for a user's name (the seed's innerText style)."""
    return text.replace("%0", name)


@register.filter
def avatar_for(url: str, user_id: str) -> str:
    """The config's avatar URL for one user: ``{userID}`` becomes their ID, URL-encoded."""
    return url.replace("{userID}", quote(user_id, safe=""))


@register.filter
def role_name(role: str, texts: dict) -> str:
    return role_text(texts, role)


@register.filter
def elapsed(started_at_ms: int) -> str:
    """Time since a moment (ms since the epoch) as H:MM:SS: the room timer's first value."""
    seconds = max(0, int(time.time() - started_at_ms / 1000))
    return f"{seconds // 3600}:{seconds // 60 % 60:02}:{seconds % 60:02}"
