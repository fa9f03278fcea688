"""Issue 4 over the real socket: events reach the right people, and racing clients leave the
room consistent (concurrent socket clients on the real consumer)."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async

from rooms import services
from rooms.models import App, Member, Room, Seat, SeatInvitation, SeatRequest
from tests.socket_client import (
    SOCKET_TESTS,
    Participant,
    event_of,
    update_with,
)

pytestmark = SOCKET_TESTS
db = database_sync_to_async


@db
def make_room(room_id: str = "stage", rows: list[int] | None = None) -> Room:
    app, _ = App.objects.get_or_create(app_id=556, defaults={"name": "Seat tests"})
    return services.room_create(app=app, room_id=room_id, seat_rows=rows)


async def wait_event(participant: Participant, kind: str, **fields: object) -> dict:
    frame = await participant.wait_for(update_with(kind, **fields))
    return event_of(frame, kind, **fields)


async def leave_all(*people: Participant) -> None:
    await asyncio.gather(*(person.leave() for person in people))


async def test_a_raised_hand_reaches_the_hosts_queue_only() -> None:
    room = await make_room()
    host = await Participant.join(room, "h", role="host", closeWhenJoining="true")
    hand = await Participant.join(room, "a")
    other = await Participant.join(room, "o")
    assert (await hand.request("seat.audience.applyToTake"))["ok"]
    requested = await wait_event(host, "seat.host.onTakingRequested")
    assert requested["user"] == {"id": "a", "name": "A"} and requested["requestedAt"] > 0
    queue = host.json[-1]["state"]["requests"]
    assert [r["user_id"] for r in queue] == ["a"]
    update = await other.wait_for("room.update")
    assert update["state"]["requests"] == []  # nobody else sees the queue
    assert event_of(update, "seat.host.onTakingRequested") is None
    assert (await host.request("seat.host.acceptTakingRequest", userID="a"))["ok"]
    seated = await wait_event(hand, "seat.onChanged", taken={"1": "a"})
    assert seated["taken"] == {"1": "a"}
    state = hand.json[-1]["state"]
    assert next(m for m in state["members"] if m["user_id"] == "a")["mic_on"]
    await leave_all(host, hand, other)


async def test_an_invitation_declined_is_reported_to_the_host() -> None:
    room = await make_room()
    host = await Participant.join(room, "h", role="host")
    guest = await Participant.join(room, "g")
    assert (await host.request("seat.host.inviteToTake", userID="g"))["ok"]
    received = await wait_event(guest, "seat.audience.onTakingInvitationReceived")
    assert received["inviter"] == {"id": "h", "name": "H"}
    assert (await guest.request("seat.audience.rejectTakingInvitation"))["ok"]
    rejected = await wait_event(host, "seat.host.onTakingInvitationRejected")
    assert rejected["userID"] == "g"
    await leave_all(host, guest)


async def test_a_request_without_a_host_fails_clearly() -> None:
    room = await make_room()
    guest = await Participant.join(room, "g")
    error = await guest.request("seat.audience.applyToTake")
    assert (error["type"], error["code"]) == ("error", "no_host")
    failed = await wait_event(guest, "seat.audience.onTakingRequestFailed")
    assert failed["reason"] == "noHost"
    await guest.leave()


async def test_join_options_are_checked_and_a_bad_seat_is_a_notice() -> None:
    room = await make_room()
    sitter = await Participant.join(room, "s", role="speaker", takeIndexWhenJoining=4)
    late = await Participant.join(room, "l", role="speaker", takeIndexWhenJoining=4)
    notice = await late.wait_for("error")
    assert notice["code"] == "seat_unavailable"
    assert await db(lambda: Seat.objects.get(room=room, index=4).occupant.user_id)() == "s"
    bad = await Participant.join(room, "b", expect_welcome=False, colour="blue")
    assert (await bad.wait_for("error"))["code"] == "bad_request"
    assert await bad.wait_closed() == 4007
    await leave_all(sitter, late)


async def test_forged_ids_in_messages_are_refused() -> None:
    room = await make_room()
    host = await Participant.join(room, "h", role="host")
    speaker = await Participant.join(room, "s", role="speaker")
    await speaker.request("microphone.turnOn", isOn=True)
    mallory = await Participant.join(room, "m")
    for action, args in [
        ("microphone.turnOn", {"isOn": False, "userID": "s"}),
        ("seat.host.removeSpeaker", {"userID": "s"}),
        ("member.kick", {"userID": "h"}),
        ("seat.host.setCoHost", {"userID": "m", "isCoHost": True}),
        ("room.end", {}),
    ]:
        reply = await mallory.request(action, **args)
        assert reply.get("code") == "not_permitted", action
    assert (await db(Member.objects.get)(room=room, user_id="s")).mic_on
    await leave_all(host, speaker, mallory)


async def test_leaving_the_room_ends_it_for_me_only() -> None:
    room = await make_room()
    host = await Participant.join(room, "h", role="host")
    guest = await Participant.join(room, "g", role="speaker")
    assert (await guest.request("room.leave"))["ok"]
    assert (await guest.wait_for("onEnded"))["reason"] == "localLeave"
    assert await guest.wait_closed() == 1000
    await wait_event(host, "seat.onChanged", untaken={"1": "g"})
    assert (await host.request("ping"))["ok"]
    await host.leave()


# --- races ----------------------------------------------------------------------------------


async def test_a_hundred_concurrent_takes_seat_exactly_one() -> None:
    room = await make_room()
    people = []
    for batch in range(10):
        people += await asyncio.gather(
            *(Participant.join(room, f"p{batch}-{i}") for i in range(10))
        )
    replies = await asyncio.gather(*(p.request("seat.take", index=5) for p in people))
    assert sum(r["type"] == "reply" for r in replies) == 1
    assert {r["code"] for r in replies if r["type"] == "error"} == {"seat_taken"}
    assert await db(Seat.objects.filter(room=room, occupant__isnull=False).count)() == 1
    await leave_all(*people)


async def test_two_hosts_joining_at_once_make_one_host() -> None:
    room = await make_room()
    first, second = await asyncio.gather(
        Participant.join(room, "h1", role="host"), Participant.join(room, "h2", role="host")
    )
    assert await db(Member.objects.filter(room=room, role="host", online=True).count)() == 1
    assert await db(Seat.objects.filter(room=room, index=0, occupant__isnull=False).count)() == 1
    await leave_all(first, second)


async def test_accept_racing_with_cancel_leaves_a_consistent_room() -> None:
    room = await make_room()
    host = await Participant.join(room, "h", role="host", closeWhenJoining="true")
    hands = [await Participant.join(room, f"a{i}") for i in range(6)]
    for hand in hands:
        await hand.request("seat.audience.applyToTake")

    async def accept_all() -> list[dict]:  # one socket answers its requests in order
        return [
            await host.request("seat.host.acceptTakingRequest", userID=f"a{i}") for i in range(6)
        ]

    accepted, *canceled = await asyncio.gather(
        accept_all(), *(hand.request("seat.audience.cancelTakingRequest") for hand in hands)
    )
    for acceptance, cancel in zip(accepted, canceled, strict=True):
        assert (acceptance["type"] == "reply") != (cancel["type"] == "reply")  # one wins
    seated = await db(
        lambda: set(
            Seat.objects.filter(room=room, occupant__isnull=False).values_list(
                "occupant__user_id", flat=True
            )
        )
    )()
    assert seated == {"h"} | {f"a{i}" for i, r in enumerate(accepted) if r["type"] == "reply"}
    assert not await db(SeatRequest.objects.exists)()
    await leave_all(host, *hands)


async def test_invite_racing_with_leave_leaves_no_dangling_invitation() -> None:
    room = await make_room()
    host = await Participant.join(room, "h", role="host")
    guests = [await Participant.join(room, f"g{i}") for i in range(6)]

    async def invite_all() -> None:
        for i in range(6):
            await host.request("seat.host.inviteToTake", userID=f"g{i}")

    await asyncio.gather(invite_all(), *(guest.leave() for guest in guests))
    # Whatever the order, no invitation is left for someone who is gone.
    assert not await db(SeatInvitation.objects.filter(invitee__online=False).exists)()
    await host.leave()
