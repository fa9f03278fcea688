"""Room properties (issue 12, part 1) through their services: the owner rule, the limits,
bad input, and two writers at once. The socket side is tests/test_property_sockets.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction

from rooms import services
from rooms.config import join_options, validate_config
from rooms.models import Member, Room, RoomProperty
from rooms.services import NotPermitted, ServiceError
from rooms.tokens import TokenClaims
from tests.conftest import add_member
from tests.live_clients import postgres_database
from tests.servers import ROOT, migrated_sqlite

ROOM = "friday-jam"


def stored(room: Room) -> dict[str, tuple[str, str]]:
    return {p.key: (p.value, p.owner_user_id) for p in RoomProperty.objects.filter(room=room)}


def revision(room: Room) -> int:
    return Room.objects.values_list("revision", flat=True).get(pk=room.pk)


def refused(code: str, call, **kwargs) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(**kwargs)
    assert caught.value.code == code, caught.value.message
    return caught.value


def test_a_new_key_belongs_to_its_writer_and_counts_as_a_change(room: Room) -> None:
    ann = add_member(room, "ann")
    before = revision(room)
    assert services.property_update(member=ann, room_id=ROOM, key="song", value="Ode") == {
        "song": "Ode"
    }
    assert stored(room) == {"song": ("Ode", "ann")}
    assert revision(room) == before + 1
    assert services.properties_query(member=ann, room_id=ROOM) == {"song": "Ode"}


def test_the_owner_changes_and_deletes_their_key(room: Room) -> None:
    ann = add_member(room, "ann")
    services.property_update(member=ann, room_id=ROOM, key="song", value="Ode")
    services.property_update(member=ann, room_id=ROOM, key="song", value="Hymn")
    assert stored(room) == {"song": ("Hymn", "ann")}
    deleted = services.properties_delete(member=ann, room_id=ROOM, keys=["song", "absent"])
    assert deleted == {"song": "Hymn"}
    assert stored(room) == {}


def test_someone_elses_key_is_refused_without_force(room: Room) -> None:
    ann, bob = add_member(room, "ann"), add_member(room, "bob")
    services.property_update(member=ann, room_id=ROOM, key="song", value="Ode")
    error = refused(
        "property_owned", services.property_update, member=bob, room_id=ROOM, key="song", value="x"
    )
    assert "ann" in error.message
    refused("property_owned", services.properties_delete, member=bob, room_id=ROOM, keys=["song"])
    assert stored(room) == {"song": ("Ode", "ann")}


def test_forcing_needs_host_permissions(room: Room) -> None:
    ann, bob = add_member(room, "ann"), add_member(room, "bob")
    services.property_update(member=ann, room_id=ROOM, key="song", value="Ode")
    with pytest.raises(NotPermitted):
        services.property_update(member=bob, room_id=ROOM, key="song", value="x", is_force=True)
    with pytest.raises(NotPermitted):
        services.properties_delete(member=bob, room_id=ROOM, keys=["song"], is_force=True)
    assert stored(room) == {"song": ("Ode", "ann")}


def test_the_host_forces_and_the_owner_stays_unless_asked(room: Room) -> None:
    ann, host = add_member(room, "ann"), add_member(room, "h", role="host")
    services.property_update(member=ann, room_id=ROOM, key="song", value="Ode")
    services.property_update(member=host, room_id=ROOM, key="song", value="Hymn", is_force=True)
    assert stored(room) == {"song": ("Hymn", "ann")}
    services.property_update(
        member=host, room_id=ROOM, key="song", value="Aria", is_force=True, is_update_owner=True
    )
    assert stored(room) == {"song": ("Aria", "h")}
    services.property_update(member=ann, room_id=ROOM, key="vote", value="1")
    assert services.properties_delete(member=host, room_id=ROOM, keys=["vote"], is_force=True)
    assert "vote" not in stored(room)


def test_a_cohost_forces_only_while_no_host_is_online(room: Room) -> None:
    ann, co = add_member(room, "ann"), add_member(room, "co", role="cohost")
    host = add_member(room, "h", role="host")
    services.property_update(member=ann, room_id=ROOM, key="song", value="Ode")
    with pytest.raises(NotPermitted):
        services.property_update(member=co, room_id=ROOM, key="song", value="x", is_force=True)
    Member.objects.filter(pk=host.pk).update(online=False)
    services.property_update(member=co, room_id=ROOM, key="song", value="x", is_force=True)
    assert stored(room)["song"] == ("x", "ann")


def test_a_batch_with_one_bad_entry_changes_nothing(room: Room) -> None:
    ann, bob = add_member(room, "ann"), add_member(room, "bob")
    services.property_update(member=ann, room_id=ROOM, key="mine", value="a")
    before = revision(room)
    batches = [
        ({"ok": "1", "k" * 17: "2"}, "property_key_invalid"),
        ({"ok": "1", "bad": 3}, "property_value_invalid"),
        ({"ok": "1", "mine": "taken"}, "property_owned"),
    ]
    for batch, code in batches:
        refused(code, services.properties_update, member=bob, room_id=ROOM, properties=batch)
    assert stored(room) == {"mine": ("a", "ann")}
    assert revision(room) == before
    services.properties_update(member=bob, room_id=ROOM, properties={"x": "1", "y": "2"})
    assert set(stored(room)) == {"mine", "x", "y"}


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("", "v", "property_key_invalid"),
        ("k" * 17, "v", "property_key_invalid"),
        ("ééééééééé", "v", "property_key_invalid"),  # 9 characters, 18 bytes
        ("two\nlines", "v", "property_key_invalid"),
        (7, "v", "property_key_invalid"),
        (["k"], "v", "property_key_invalid"),
        ("k", 5, "property_value_invalid"),
        ("k", None, "property_value_invalid"),
        ("k", {"a": 1}, "property_value_invalid"),
        ("k", "bad\x00byte", "property_value_invalid"),
        ("k", "\ud800", "property_value_invalid"),
        ("k", "v" * 1025, "property_value_too_long"),
        ("k", "é" * 513, "property_value_too_long"),  # 513 characters, 1,026 bytes
    ],
)
def test_bad_keys_and_values_are_refused(room: Room, key: object, value: object, code: str) -> None:
    ann = add_member(room, "ann")
    refused(code, services.property_update, member=ann, room_id=ROOM, key=key, value=value)
    assert stored(room) == {}


def test_the_limits_are_at_the_edge_exactly(room: Room) -> None:
    ann = add_member(room, "ann")
    services.property_update(member=ann, room_id=ROOM, key="k" * 16, value="v" * 1024)
    services.property_update(member=ann, room_id=ROOM, key="é" * 8, value="é" * 512)
    assert len(stored(room)) == 2


def test_a_room_holds_twenty_keys(room: Room) -> None:
    ann = add_member(room, "ann")
    services.properties_update(
        member=ann, room_id=ROOM, properties={f"k{i}": "v" for i in range(19)}
    )
    error = refused(
        "properties_too_many",
        services.properties_update,
        member=ann,
        room_id=ROOM,
        properties={"k19": "v", "k20": "v"},
    )
    assert "20" in error.message
    assert len(stored(room)) == 19
    services.property_update(member=ann, room_id=ROOM, key="k19", value="v")
    services.property_update(member=ann, room_id=ROOM, key="k0", value="changed")  # no new key
    assert len(stored(room)) == 20


def test_a_rooms_properties_hold_5120_bytes(room: Room) -> None:
    ann = add_member(room, "ann")
    # Four keys of 2 + 1,022 bytes: 4,096. Then 1,024 more fit exactly, one byte more does not.
    services.properties_update(
        member=ann, room_id=ROOM, properties={f"k{i}": "v" * 1022 for i in range(4)}
    )
    error = refused(
        "properties_too_large",
        services.property_update,
        member=ann,
        room_id=ROOM,
        key="k4",
        value="v" * 1023,
    )
    assert "5120" in error.message and "5121" in error.message
    services.property_update(member=ann, room_id=ROOM, key="k4", value="v" * 1022)
    assert sum(len(k) + len(v) for k, (v, _) in stored(room).items()) == 5120


def test_the_room_id_must_be_the_callers_room(room: Room) -> None:
    ann = add_member(room, "ann")
    services.property_update(member=ann, room_id=ROOM, key="song", value="Ode")
    for call, kwargs in [
        (services.property_update, {"key": "x", "value": "y"}),
        (services.properties_update, {"properties": {"x": "y"}}),
        (services.properties_delete, {"keys": ["song"]}),
        (services.properties_query, {}),
    ]:
        refused("wrong_room", call, member=ann, room_id="elsewhere", **kwargs)
    assert stored(room) == {"song": ("Ode", "ann")}


def test_empty_or_malformed_batches_are_refused(room: Room) -> None:
    ann = add_member(room, "ann")
    for properties in ({}, ["k", "v"], "k=v"):
        refused(
            "bad_properties",
            services.properties_update,
            member=ann,
            room_id=ROOM,
            properties=properties,
        )
    for keys in ([], "song", {"song": 1}):
        refused("bad_properties", services.properties_delete, member=ann, room_id=ROOM, keys=keys)
    refused("property_key_invalid", services.properties_delete, member=ann, room_id=ROOM, keys=[1])


def test_someone_not_in_the_room_changes_nothing(room: Room) -> None:
    gone = add_member(room, "gone", online=False)
    with pytest.raises(NotPermitted):
        services.property_update(member=gone, room_id=ROOM, key="k", value="v")
    assert stored(room) == {}


def test_the_database_refuses_what_the_rules_refuse(room: Room) -> None:
    for fields in (
        {"key": ""},
        {"key": "é" * 9},
        {"key": "k", "value": "é" * 513},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            RoomProperty.objects.create(room=room, owner_user_id="ann", **{"value": "", **fields})
    RoomProperty.objects.create(room=room, key="k", value="v", owner_user_id="ann")
    with pytest.raises(IntegrityError), transaction.atomic():
        RoomProperty.objects.create(room=room, key="k", value="w", owner_user_id="bob")


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_two_users_setting_one_key_at_once_make_one_owner(engine: str, tmp_path: Path) -> None:
    """Eight writers at the same instant, each on a thread and a connection of its own
    (tests/property_race.py, on a real database): the room's lock lets one set the key
    first; every other is then told the key is not theirs, and nothing else is stored."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "liveaudio.settings"}
    with contextlib.ExitStack() as stack:
        if engine == "postgres":
            env["LIVEAUDIO_DATABASE_URL"] = stack.enter_context(postgres_database())
        else:
            env.pop("LIVEAUDIO_DATABASE_URL", None)
            env["LIVEAUDIO_SQLITE_PATH"] = str(tmp_path / "db.sqlite3")
            shutil.copy(migrated_sqlite(), tmp_path / "db.sqlite3")
        done = subprocess.run(
            [sys.executable, "-m", "tests.property_race"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    winners = [user for user, outcome in result["told"].items() if outcome == "set"]
    assert len(winners) == 1, result
    assert set(result["told"].values()) == {"set", "property_owned"}
    assert result["rows"] == [["stage", winners[0], winners[0]]]


# --- config.roomProperties.rolesCanWrite -------------------------------------------------------


def join(room: Room, user_id: str, config: dict) -> Member:
    """A join as the room page makes it: the user's config, resolved, as JoinOptions."""
    role = config.get("role")  # the token allows what the config asks
    claims = TokenClaims(
        app_id=room.app.app_id, room_id=room.room_id, user_id=user_id, user_name="U", role=role
    )
    options = services.JoinOptions(**join_options(validate_config(config)))
    return services.member_join(
        room=room, claims=claims, channel_name=f"c.{user_id}", options=options
    ).member


def test_by_default_every_role_writes(room: Room) -> None:
    join(room, "h", {"role": "host"})
    guest = join(room, "g", {"role": "audience"})
    assert Room.objects.get(pk=room.pk).property_roles == ["host", "cohost", "speaker", "audience"]
    assert services.property_update(member=guest, room_id=ROOM, key="k", value="v") == {"k": "v"}


def test_the_hosts_roles_decide_and_a_refused_writer_changes_nothing(room: Room) -> None:
    host = join(room, "h", {"role": "host", "roomProperties": {"rolesCanWrite": ["speaker"]}})
    speaker = join(room, "s", {"role": "speaker"})
    guest = join(room, "g", {"role": "audience"})
    services.property_update(member=speaker, room_id=ROOM, key="song", value="Ode")
    before = revision(room)
    for call, kwargs in (
        (services.property_update, {"key": "k", "value": "v"}),
        (services.properties_update, {"properties": {"k": "v"}}),
        (services.properties_delete, {"keys": ["song"], "is_force": True}),
    ):
        refused("not_permitted", call, member=guest, room_id=ROOM, **kwargs)
        # The host is not listed either: host permissions count only when "host" is.
        refused("not_permitted", call, member=host, room_id=ROOM, **kwargs)
    assert stored(room) == {"song": ("Ode", "s")}
    assert revision(room) == before
    assert services.properties_query(member=guest, room_id=ROOM) == {"song": "Ode"}


def test_a_guests_own_config_grants_nothing(room: Room) -> None:
    join(room, "h", {"role": "host", "roomProperties": {"rolesCanWrite": ["host"]}})
    guest = join(room, "g", {"roomProperties": {"rolesCanWrite": ["audience"]}})
    assert Room.objects.get(pk=room.pk).property_roles == ["host"]
    refused(
        "not_permitted", services.property_update, member=guest, room_id=ROOM, key="k", value="v"
    )


def test_a_cohost_standing_in_writes_when_host_is_listed(room: Room) -> None:
    host = join(room, "h", {"role": "host", "roomProperties": {"rolesCanWrite": ["host"]}})
    cohost = add_member(room, "c", role="cohost")
    refused(
        "not_permitted", services.property_update, member=cohost, room_id=ROOM, key="k", value="v"
    )
    services.member_leave(member=host)
    assert services.property_update(member=cohost, room_id=ROOM, key="k", value="v") == {"k": "v"}
