"""A room update carries the member list as changes and only the parts of the page that
changed (issue 14, point 5): a join costs every socket the same few bytes whether the room
has 100 members or 1,000, and the page's list, with the changes applied, is the room's list,
as a new joiner's welcome shows it."""

from __future__ import annotations

import json

from channels.db import database_sync_to_async

from rooms import services
from rooms.models import App, Room
from tests.conftest import add_member
from tests.socket_client import SOCKET_TESTS, Participant, update_with

pytestmark = SOCKET_TESTS

db = database_sync_to_async


@db
def room_with_audience(room_id: str, count: int) -> Room:
    app, _ = App.objects.get_or_create(app_id=555, defaults={"name": "Socket tests"})
    room = services.room_create(app=app, room_id=room_id, title="Big")
    for i in range(count):
        add_member(room, f"listener-{i:05}")
    return room


async def bytes_of_a_join(room: Room) -> tuple[int, dict]:
    """What a watcher's socket is sent when one more user joins: bytes, and the update as
    sent (its state without the member list, its ``members`` changes)."""
    members = await db(lambda: list(room.members.all()))()
    watcher = await Participant.join(room, "watcher")
    sent = len(watcher.raw), len(watcher.html)
    joiner = await Participant.join(room, "joiner", user_name="Jo")
    await watcher.wait_for(update_with("onUserJoined", userID="joiner"))
    size = sum(map(len, watcher.raw[sent[0] :])) + sum(map(len, watcher.html[sent[1] :]))
    # What changed on the page: the counts, each swapped in by its id.
    html = "".join(watcher.html[sent[1] :])
    assert f'id="members-count" class="count" hx-swap-oob="true">{len(members) + 2}<' in html
    assert f'hx-swap-oob="true">{len(members) + 2} listening<' in html
    joined = update_with("onUserJoined", userID="joiner")
    update = next(f for f in map(json.loads, watcher.raw[sent[0] :]) if joined(f))
    await joiner.leave()
    await watcher.leave()
    return size, update


async def test_a_join_costs_the_same_bytes_in_a_room_ten_times_bigger() -> None:
    small, update = await bytes_of_a_join(await room_with_audience("hundred", 100))
    big, _ = await bytes_of_a_join(await room_with_audience("thousand", 1000))
    # The same rows and parts; only counts ("and 976 more") have a digit more.
    assert abs(big - small) < 100, (small, big)
    # Two updates (the watcher's own join, then Jo's): states without members, the counts.
    assert small < 5_000, small  # was 136 KB (and 435 KB at 1,000)
    assert "members" not in update["state"]
    assert [m["user_id"] for m in update["members"]["changed"]] == ["joiner"]
    assert update["members"]["left"] == []


async def test_the_pages_list_with_the_changes_applied_is_the_rooms_list() -> None:
    room = await room_with_audience("deltas", 3)
    host = await Participant.join(room, "host", role="host")
    ann = await Participant.join(room, "ann")
    ben = await Participant.join(room, "ben")
    await ann.request("seat.take", index=2)  # a role change: audience -> speaker
    await host.request("member.kick", userID="ben")
    await ann.request("microphone.turnOn", isOn=True)
    await ann.request("room.leave")
    settled = await host.wait_for(update_with("onUserLeft", userID="ann"))
    newcomer = await Participant.join(room, "newcomer")
    welcome = newcomer.json[-1]["state"]
    later = await host.wait_for(update_with("onUserJoined", userID="newcomer"))

    def rows(state: dict) -> dict:
        return {m["user_id"]: m for m in state["members"]}

    assert settled["state"]["revision"] < later["state"]["revision"] == welcome["revision"]
    assert rows(host.state) == rows(welcome)
    assert "ann" not in rows(welcome) and "ben" not in rows(welcome)  # gone: "left"
    await newcomer.leave()
    await host.leave()
    await ben.leave()
