"""Emoji reactions (issue 13, useful extras): over the socket to every page of the room,
one of a fixed set, rate-limited, nothing stored; a config can turn them off."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from django.conf import settings

from rooms import services
from rooms.models import App, Room
from tests.socket_client import SOCKET_TESTS, Participant

pytestmark = SOCKET_TESTS


@database_sync_to_async
def make_room() -> Room:
    app, _ = App.objects.get_or_create(app_id=559, defaults={"name": "Reaction tests"})
    return services.room_create(app=app, room_id="reactions")


async def test_a_reaction_reaches_every_page_the_senders_too() -> None:
    room = await make_room()
    ann, bob = [await Participant.join(room, name) for name in ("ann", "bob")]
    reply = await ann.request("reaction.send", emoji="👏")
    assert reply["type"] == "reply" and reply["data"] is True, reply
    for person in (ann, bob):
        frame = await person.wait_for("reaction")
        assert (frame["userID"], frame["emoji"]) == ("ann", "👏")
    await asyncio.gather(ann.leave(), bob.leave())


async def test_only_the_rooms_emoji_and_not_too_many() -> None:
    room = await make_room()
    ann = await Participant.join(room, "ann")
    for emoji in ("💩", "<b>", "👏👏", 7):
        refused = await ann.request("reaction.send", emoji=emoji)
        assert refused["type"] == "error" and "must be one of" in refused["message"], refused
    limit = settings.LIVEAUDIO_REACTIONS_PER_SECOND
    replies = [await ann.request("reaction.send", emoji="🔥") for _ in range(limit + 1)]
    assert [r["type"] for r in replies[:limit]] == ["reply"] * limit
    assert replies[-1]["code"] == "reaction_rate_limited", replies[-1]
    assert (await ann.request("ping"))["type"] == "reply"
    await ann.leave()
