"""The controller's list of calls (static/liveaudio/sdk/calls.js) is the one table the SDK and
the iframe's bridge share: every socket action it names must be one the server accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

try:
    from rooms.realtime.actions import ACTIONS
except ImportError:  # before the action registry: the protocol's table
    from rooms.protocol import ACTIONS

CALLS_JS = Path(__file__).resolve().parent.parent / "static" / "liveaudio" / "sdk" / "calls.js"


def sdk_table(name: str) -> dict:
    """`export const <name> = {...};` of calls.js, which is JSON by its own rule."""
    match = re.search(rf"^export const {name} = (\{{.*?^\}});", CALLS_JS.read_text(), re.M | re.S)
    assert match, f"calls.js has no table {name}"
    return json.loads(match.group(1))


CALLS = sdk_table("CALLS")


def actions_of(entry: dict | str) -> list[str]:
    if entry == "not_available":
        return []
    action = entry.get("action", [])
    return [action] if isinstance(action, str) else action


def wire_arguments(action: str) -> set[str]:
    declared = ACTIONS[action]
    args = declared.args if hasattr(declared, "args") else declared  # registry or protocol
    return {arg.wire if hasattr(arg, "wire") else arg for arg in args}


@pytest.mark.parametrize("member", sorted(CALLS))
def test_every_call_names_actions_the_server_accepts(member: str) -> None:
    entry = CALLS[member]
    assert entry == "not_available" or isinstance(entry, dict), member
    for action in actions_of(entry):
        assert action in ACTIONS, f"{member} sends {action!r}, which the server does not know"


@pytest.mark.parametrize(
    "member", sorted(m for m, e in CALLS.items() if isinstance(e, dict) and not e.get("bridge"))
)
def test_a_plain_call_sends_only_fields_its_action_declares(member: str) -> None:
    entry = CALLS[member]
    fields = [*entry.get("args", []), *entry.get("options", {})]
    assert set(fields) <= wire_arguments(entry["action"]), member


def test_each_call_is_a_socket_action_a_bridge_handler_or_not_available() -> None:
    for member, entry in CALLS.items():
        if entry == "not_available":
            continue
        assert set(entry) <= {"action", "args", "options", "bridge", "untimed"}, member
        assert entry.get("action") or entry.get("bridge"), member
        if not entry.get("bridge"):
            assert isinstance(entry["action"], str), member


def test_only_the_file_pickers_wait_for_the_user_without_a_time_out() -> None:
    untimed = {
        member
        for member, entry in CALLS.items()
        if isinstance(entry, dict) and entry.get("untimed")
    }
    assert untimed == {"media.pickPureAudioFile", "media.pickVideoFile", "media.pickFile"}


def test_every_media_member_of_the_seed_is_a_call_now() -> None:
    media = {member for member in CALLS if member.startswith("media.")}
    assert len(media) == 11
    assert all(CALLS[member] != "not_available" for member in media)


def test_streams_are_listed_apart_from_calls() -> None:
    streams = sdk_table("STREAMS")
    assert set(streams) == {
        "audioVideo.seiStream",
        "room.propertiesStream",
        "room.commandReceivedStream",
    }
    assert not set(streams) & set(CALLS)
