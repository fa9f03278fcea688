"""The socket's action registry: one declaration per action, the docs' table agrees with it,
and every action declared for hosts is refused to an audience member by the services."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from channels.db import database_sync_to_async as db

from rooms.models import Member, Seat, SeatInvitation, SeatRequest
from rooms.realtime.actions import ACTIONS, Action, Arg, Permission
from tests.socket_client import Participant

PROTOCOL_DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


def documented_actions(doc: str) -> dict[str, tuple[set[str], str]]:
    """The client -> server table: action -> (field names in its row, its "who" cell)."""
    rows: dict[str, tuple[set[str], str]] = {}
    section = doc.split("## Client → server", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        fields = set(re.findall(r"`([A-Za-z]+)`", cells[1]))
        for name in re.findall(r"`([a-zA-Z.]+)`", cells[0]):
            rows[name] = (fields, cells[2])
    return rows


def disagreements(actions: dict[str, Action], doc: str) -> list[str]:
    rows = documented_actions(doc)
    problems = [f"{name}: no row in docs/protocol.md" for name in actions if name not in rows]
    problems += [f"{name}: documented, not declared" for name in rows if name not in actions]
    for name, declared in actions.items():
        if name not in rows:
            continue
        fields, who = rows[name]
        problems += [
            f"{name}: field {arg.wire} not documented"
            for arg in declared.args
            if arg.wire not in fields
        ]
        documented = (
            Permission.MEDIA
            if who.startswith("control role")
            else Permission.HOST
            if who.startswith("Host")
            else Permission.HOST_PERMISSIONS
            if re.match(r"H\b", who)
            else Permission.ANYONE
        )
        if documented is not declared.permission:
            problems.append(f"{name}: declared {declared.permission}, documented {who!r}")
    return problems


def test_the_docs_table_and_the_registry_agree() -> None:
    assert disagreements(ACTIONS, PROTOCOL_DOC.read_text()) == []


def test_an_action_declared_without_a_docs_row_is_caught() -> None:
    extra = Action("seat.teleport", (Arg("where", str),), Permission.ANYONE, True, print)
    found = disagreements({**ACTIONS, "seat.teleport": extra}, PROTOCOL_DOC.read_text())
    assert found == ["seat.teleport: no row in docs/protocol.md"]


def test_wire_names_become_snake_case_keywords() -> None:
    keywords = {arg.wire: arg.keyword for action in ACTIONS.values() for arg in action.args}
    assert keywords["userID"] == "user_id"
    assert keywords["targetIndex"] == "target_index"
    assert keywords["isCoHost"] == "is_co_host"
    assert keywords["includeHostSeats"] == "include_host_seats"


# Arguments that would be allowed to a host, so that only the permission refuses them.
SAMPLE_ARGS = {
    "index": 1,
    "targetIndex": 2,
    "userID": "s",
    "muted": True,
    "isCoHost": True,
    "filePathOrURL": "https://media.example/song.mp3",
    "millisecond": 0,
    "volume": 50,
    "topic": "Jazz",
}


@pytest.mark.parametrize(
    "name", sorted(n for n, a in ACTIONS.items() if a.permission is not Permission.ANYONE)
)
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("settled_timers")
async def test_a_host_action_is_refused_to_the_audience(name: str, room) -> None:
    host = await Participant.join(room, "h", role="host")
    speaker = await Participant.join(room, "s", role="speaker", takeIndexWhenJoining=2)
    guest = await Participant.join(room, "g")

    def stored() -> tuple:
        return (
            sorted(Seat.objects.filter(room=room).values_list("index", "locked", "occupant")),
            sorted(
                Member.objects.filter(room=room).values_list("user_id", "role", "online", "mic_on")
            ),
            SeatRequest.objects.count(),
            SeatInvitation.objects.count(),
        )

    before = await db(stored)()
    args = {
        arg.wire: SAMPLE_ARGS[arg.wire] for arg in ACTIONS[name].args if arg.wire in SAMPLE_ARGS
    }
    answer = await guest.request(name, **args)
    assert (answer["type"], answer.get("code")) == ("error", "not_permitted"), answer
    assert await db(stored)() == before
    for participant in (host, speaker, guest):
        await participant.leave()
