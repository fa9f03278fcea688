"""The outbox without a socket: merging, ordering and the revision rule."""

from __future__ import annotations

import asyncio
import json

import pytest

from rooms.realtime.outbox import Outbox, RoomUpdate, parse_update
from rooms.selectors import MemberState, RoomState

pytestmark = pytest.mark.asyncio


def update(revision: int, *events: dict, host: str = "h") -> dict:
    """A room.update message as the channel layer brings it."""
    members = [
        MemberState(host, host.title(), "host", True, False, None, has_host_permissions=True),
        MemberState("u", "U", "audience", True, False, None),
    ]
    state = RoomState(1, "r", "R", True, [], members, revision=revision)
    return {"revision": revision, "state_json": json.dumps(state.as_json()), "events": list(events)}


class Page:
    """What the socket's view was asked to show."""

    def __init__(self) -> None:
        self.shown: list[tuple[int | None, list[dict]]] = []

    async def present(self, room: RoomUpdate | None, events: list[dict]) -> None:
        self.shown.append((room.revision if room else None, events))


def outbox_for(page: Page, user_id: str = "u", interval: float = 0.1) -> Outbox:
    return Outbox(user_id=user_id, present=page.present, interval=interval)


async def settled(outbox: Outbox) -> None:
    while not outbox.idle:
        await outbox.drained()


async def test_a_lone_update_goes_out_at_once() -> None:
    page = Page()
    outbox = outbox_for(page, interval=60)  # a lone update never waits for the interval
    outbox.room_update(update(1, {"type": "onUserJoined", "userID": "x"}))
    await asyncio.wait_for(settled(outbox), 5)
    assert page.shown == [(1, [{"type": "onUserJoined", "userID": "x"}])]


async def test_a_burst_is_merged_with_every_event_in_order_and_the_newest_state() -> None:
    page = Page()
    outbox = outbox_for(page, interval=0.2)
    outbox.room_update(update(1, {"type": "burst", "n": 1}))
    await asyncio.wait_for(settled(outbox), 5)
    for n in range(2, 11):  # within the interval of the first
        outbox.room_update(update(n, {"type": "burst", "n": n}))
        await asyncio.sleep(0)
    await asyncio.wait_for(settled(outbox), 5)
    assert [e["n"] for _, events in page.shown for e in events] == list(range(1, 11))
    assert len(page.shown) == 2  # the first at once, the other nine merged
    assert page.shown[-1][0] == 10


async def test_an_older_state_is_never_shown_but_its_events_are() -> None:
    page = Page()
    outbox = outbox_for(page)
    outbox.shown(7)  # the welcome brought revision 7
    outbox.room_update(update(5, {"type": "onUserJoined", "userID": "late"}))
    await asyncio.wait_for(settled(outbox), 5)
    assert page.shown == [(None, [{"type": "onUserJoined", "userID": "late"}])]
    assert outbox.revision == 7


async def test_updates_out_of_order_end_on_the_newest() -> None:
    page = Page()
    outbox = outbox_for(page, interval=0.2)
    outbox.room_update(update(1))
    for revision in (4, 2, 3):
        outbox.room_update(update(revision, {"type": "n", "n": revision}))
    await asyncio.wait_for(settled(outbox), 5)
    assert page.shown[-1] == (
        4,
        [{"type": "n", "n": 4}, {"type": "n", "n": 2}, {"type": "n", "n": 3}],
    )
    assert outbox.revision == 4


async def test_events_reach_only_whom_they_name() -> None:
    page = Page()
    outbox = outbox_for(page, user_id="u")
    outbox.room_update(
        update(
            1,
            {"type": "for-hosts", "to": {"hosts": True, "users": []}},
            {"type": "for-u", "to": {"users": ["u"]}},
            {"type": "for-v", "to": {"users": ["v"]}},
            {"type": "for-all"},
        )
    )
    await asyncio.wait_for(settled(outbox), 5)
    assert page.shown == [(1, [{"type": "for-u"}, {"type": "for-all"}])]


async def test_a_notice_keeps_its_place_among_updates() -> None:
    page = Page()
    outbox = outbox_for(page, interval=0.2)
    outbox.room_update(update(1, {"type": "a"}))
    outbox.room_update(update(2, {"type": "b"}))
    outbox.notice([{"type": "private"}])
    outbox.room_update(update(3, {"type": "c"}))
    await asyncio.wait_for(settled(outbox), 5)
    assert [e["type"] for _, events in page.shown for e in events] == ["a", "b", "private", "c"]


async def test_a_notice_alone_keeps_the_shown_state() -> None:
    page = Page()
    outbox = outbox_for(page)
    outbox.shown(3)
    outbox.notice([{"type": "private"}])
    await asyncio.wait_for(settled(outbox), 5)
    assert page.shown == [(None, [{"type": "private"}])]


async def test_drained_waits_for_the_updates_that_came_before() -> None:
    page = Page()
    outbox = outbox_for(page, interval=0.2)
    outbox.room_update(update(1))
    await asyncio.wait_for(settled(outbox), 5)
    outbox.room_update(update(2))  # waits for the interval
    await outbox.drained()
    assert [revision for revision, _ in page.shown] == [1, 2]
    assert outbox.idle


async def test_a_failing_page_does_not_stop_the_outbox() -> None:
    calls = []

    async def closed(room: RoomUpdate | None, events: list[dict]) -> None:
        calls.append(room.revision if room else None)
        raise ConnectionError("the socket closed")

    outbox = Outbox(user_id="u", present=closed, interval=0.05)
    outbox.room_update(update(1))
    await asyncio.wait_for(settled(outbox), 5)
    outbox.room_update(update(2))
    await asyncio.wait_for(settled(outbox), 5)
    assert calls == [1, 2]


async def test_a_burst_parses_only_the_state_it_shows() -> None:
    """After a join storm a socket holds hundreds of updates, each the whole room: parsing
    each as it came (with only 8 kept, shared between sockets) made daphne spend 64 % of its
    time in json.loads and RoomState.from_json at 300 listeners (py-spy)."""
    page = Page()
    outbox = outbox_for(page, interval=0.2)
    outbox.room_update(update(1))  # a lone update: shown at once
    burst = [update(n, {"type": "burst", "n": n}) for n in range(2, 52)]
    parse_update.cache_clear()
    for message in burst:
        outbox.room_update(message)
    await asyncio.wait_for(settled(outbox), 5)
    assert page.shown[-1][0] == 51
    assert parse_update.cache_info().misses <= 2  # the newest (and maybe the first's)
