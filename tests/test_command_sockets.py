"""Room commands over the real socket (issue 12, part 2): every other member gets each
command, the sender never sees its own, all in one order; bad input and a flood are error
frames that leave the connection working."""

from __future__ import annotations

import asyncio
import base64

from channels.db import database_sync_to_async
from django.conf import settings

from rooms import services
from rooms.models import App, Room
from tests.socket_client import SOCKET_TESTS, Participant

pytestmark = SOCKET_TESTS
ROOM = "cmds"


@database_sync_to_async
def make_room() -> Room:
    app, _ = App.objects.get_or_create(app_id=558, defaults={"name": "Command tests"})
    return services.room_create(app=app, room_id=ROOM)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def received(participant: Participant) -> list[dict]:
    return [m for f in participant.json if f.get("type") == "room.commands" for m in f["messages"]]


async def leave_all(*people: Participant) -> None:
    await asyncio.gather(*(person.leave() for person in people))


async def until_received(participant: Participant, count: int) -> list[dict]:
    async with asyncio.timeout(10):
        while len(received(participant)) < count:
            await participant.wait_for("room.commands")
    return received(participant)


async def test_a_command_reaches_the_others_and_not_its_sender() -> None:
    room = await make_room()
    ann, bob, cy = [await Participant.join(room, name) for name in ("ann", "bob", "cy")]
    reply = await ann.request("room.sendCommand", roomID=ROOM, command=b64(b"\x00\xffgo"))
    assert reply["type"] == "reply" and reply["data"]["roomID"] == ROOM
    key = reply["data"]["orderKey"]
    for person in (bob, cy):
        frame = await person.wait_for("room.commands")
        assert frame["roomID"] == ROOM
        (message,) = frame["messages"]
        assert base64.b64decode(message["message"]) == b"\x00\xffgo"
        assert message["senderUserID"] == "ann" and message["orderKey"] == key
        assert isinstance(message["timestamp"], int) and message["timestamp"] > 0
    # Ann's socket goes on working and never shows her own command.
    assert (await ann.request("ping"))["type"] == "reply"
    assert received(ann) == []
    await leave_all(ann, bob, cy)


async def test_everyone_sees_one_order_when_all_send_at_once() -> None:
    room = await make_room()
    names = ("ann", "bob", "cy", "dee")
    people = [await Participant.join(room, name) for name in names]
    per_person = 5

    async def send_all(person: Participant, name: str) -> None:
        for n in range(per_person):
            await person.send("room.sendCommand", roomID=ROOM, command=b64(f"{name}{n}".encode()))

    await asyncio.gather(*(send_all(p, n) for p, n in zip(people, names, strict=True)))
    others = per_person * (len(people) - 1)
    sender_of: dict[int, str] = {}
    for person in people:
        for message in await until_received(person, others):
            assert (
                sender_of.setdefault(message["orderKey"], message["senderUserID"])
                == (message["senderUserID"])
            )
    everyone = sorted(sender_of)
    assert everyone == list(range(everyone[0], everyone[0] + per_person * len(people)))
    for person, name in zip(people, names, strict=True):
        # Each sees everyone's but its own, in the one order.
        keys = [m["orderKey"] for m in received(person)]
        assert keys == [key for key in everyone if sender_of[key] != name]
    await leave_all(*people)


async def test_bad_commands_are_errors_and_the_socket_keeps_working() -> None:
    room = await make_room()
    ann, bob = await Participant.join(room, "ann"), await Participant.join(room, "bob")
    limit = settings.LIVEAUDIO_ROOM_COMMAND_MAX_BYTES
    too_large = await ann.request("room.sendCommand", roomID=ROOM, command=b64(b"x" * (limit + 1)))
    assert too_large["type"] == "error" and too_large["code"] == "command_too_large"
    not_base64 = await ann.request("room.sendCommand", roomID=ROOM, command="not base64!")
    assert not_base64["type"] == "error" and not_base64["code"] == "bad_request"
    not_text = await ann.request("room.sendCommand", roomID=ROOM, command=[1, 2])
    assert not_text["code"] == "bad_request"
    wrong = await ann.request("room.sendCommand", roomID="elsewhere", command=b64(b"x"))
    assert wrong["type"] == "error" and wrong["code"] == "wrong_room"
    largest = await ann.request("room.sendCommand", roomID=ROOM, command=b64(b"y" * limit))
    assert largest["type"] == "reply"
    (message,) = (await bob.wait_for("room.commands"))["messages"]
    assert base64.b64decode(message["message"]) == b"y" * limit
    assert len(received(bob)) == 1  # none of the refused ones went out
    await leave_all(ann, bob)


async def test_a_flood_is_refused_and_the_sender_goes_on_afterwards() -> None:
    room = await make_room()
    ann, bob = await Participant.join(room, "ann"), await Participant.join(room, "bob")
    per_second = settings.LIVEAUDIO_ROOM_COMMANDS_PER_SECOND
    # Sent at once, not one reply at a time: three seconds' worth however slow the machine.
    flood = per_second * 3
    for n in range(flood):
        await ann.communicator.send_json_to(
            {
                "action": "room.sendCommand",
                "requestID": f"f{n}",
                "roomID": ROOM,
                "command": b64(b"%d" % n),
            }
        )
    answers = []
    while len(answers) < flood:
        answers.append(await ann.wait_for(lambda f: str(f.get("requestID")).startswith("f")))
    refused = [a for a in answers if a["type"] == "error"]
    assert refused and all(a["code"] == "command_rate_limited" for a in refused)
    sent = [a for a in answers if a["type"] == "reply"]
    assert len(sent) >= per_second
    await until_received(bob, len(sent))
    # A second later the sender is let through again.
    async with asyncio.timeout(10):
        while True:
            again = await ann.request("room.sendCommand", roomID=ROOM, command=b64(b"later"))
            if again["type"] == "reply":
                break
            assert again["code"] == "command_rate_limited"
            await asyncio.sleep(0.2)  # the window is a second; polling it, not timing it
    messages = await until_received(bob, len(sent) + 1)
    assert base64.b64decode(messages[-1]["message"]) == b"later"
    await leave_all(ann, bob)
