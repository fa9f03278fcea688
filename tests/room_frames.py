"""The room socket's frames as a client reads them."""

from __future__ import annotations


def with_members(shown: dict | None, frame: dict) -> dict:
    """A ``room.update``'s state with its ``members`` changes applied to the list of the state
    shown before it, as the page does (room.js ``withMembers``)."""
    delta = frame["members"]
    assert shown is None or delta["since"] == shown["revision"], (delta["since"], shown)
    fresh = {m["user_id"]: m for m in delta["changed"]}
    members = [
        fresh.pop(m["user_id"], m)
        for m in (shown or {}).get("members", [])
        if m["user_id"] not in delta["left"]
    ]
    return {**frame["state"], "members": members + list(fresh.values())}
