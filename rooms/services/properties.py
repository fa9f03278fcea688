"""Room properties, the seed's ``room.updateProperty`` family (ZIM's room attributes).

A property is a short text under a short key, shared by the whole room and kept with it (a
server restart keeps it). Who may change what, decided here for every entry point:

- anyone in the room whose role the host's ``config.roomProperties.rolesCanWrite`` lists
  (default: every role) may write; others are refused with ``not_permitted``;
- a writer may set a new key, and becomes its **owner**;
- a key is changed or deleted by its owner; anyone else needs ``isForce`` **and** host
  permissions (the host, or a co-host while no host is online). The seed leaves open who
  may force; this server lets only those who may also remove people;
- ``isUpdateOwner`` makes the writer the owner of the keys it writes;
- a key written with ``isDeleteAfterOwnerLeft`` goes when its owner leaves: at once for a
  leave, kick or ban, after the seat grace period for a socket that vanished;
- the HTTP API (``properties_set_by_api``, ``properties_delete_by_api``) is the integrator's
  backend: it writes as a host with ``isForce`` would, whatever ``rolesCanWrite`` says, and
  owns the keys it creates without a ``userID`` (``API_OWNER``).

Limits as ZIM's: a key is 1-16 bytes, a value at most 1,024 (UTF-8; the database refuses
more), a room holds at most ``LIVEAUDIO_ROOM_PROPERTIES_MAX_KEYS`` keys and
``LIVEAUDIO_ROOM_PROPERTIES_MAX_BYTES`` of keys and values together. A write names the limit
it breaks and changes nothing: a batch is applied whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import transaction

from rooms import roles, text
from rooms.models import (
    PROPERTY_KEY_MAX_BYTES,
    PROPERTY_VALUE_MAX_BYTES,
    Member,
    Room,
    RoomProperty,
)
from rooms.selectors import displayed_role
from rooms.services.common import (
    NotPermitted,
    ServiceError,
    active_member,
    has_host_permissions,
    lock_room,
    room_changed,
    seat_of,
)

EVENT = "room.onPropertiesUpdated"
# The owner of a key the HTTP API set without a userID: no user ID is empty.
API_OWNER = ""


def property_update(
    *,
    member: Member,
    room_id: str,
    key: object,
    value: object,
    is_force: bool = False,
    is_delete_after_owner_left: bool = False,
    is_update_owner: bool = False,
) -> dict[str, str]:
    """``room.updateProperty``: one key, as a batch of one."""
    return properties_update(
        member=member,
        room_id=room_id,
        properties={_checked_key(key): value},
        is_force=is_force,
        is_delete_after_owner_left=is_delete_after_owner_left,
        is_update_owner=is_update_owner,
    )


def properties_update(
    *,
    member: Member,
    room_id: str,
    properties: dict,
    is_force: bool = False,
    is_delete_after_owner_left: bool = False,
    is_update_owner: bool = False,
) -> dict[str, str]:
    """``room.updateProperties``: set every key of ``properties``, or none. Returns what
    was set."""
    wanted = _checked_properties(properties)
    with transaction.atomic():
        room, member = _acting(member, room_id)
        _store(
            room,
            wanted,
            writer=member.user_id,
            may_change=lambda prop: _require_may_change(member, prop, is_force=is_force),
            is_delete_after_owner_left=is_delete_after_owner_left,
            is_update_owner=is_update_owner,
        )
    return wanted


def properties_set_by_api(
    *,
    room: Room,
    properties: dict,
    user_id: str | None = None,
    is_delete_after_owner_left: bool = False,
    is_update_owner: bool = False,
) -> dict[str, str]:
    """The HTTP API's write: as a forced one (the integrator's backend may change any key),
    not bound by ``rolesCanWrite``. New keys belong to ``user_id``, or to the API
    (``API_OWNER``, which no member is, so only a host with ``isForce`` changes them)."""
    wanted = _checked_properties(properties)
    if is_delete_after_owner_left and user_id is None:
        raise ServiceError(
            "bad_properties",
            "isDeleteAfterOwnerLeft needs a userID: keys of the API have no owner to leave.",
        )
    with transaction.atomic():
        room = lock_room(room)
        _store(
            room,
            wanted,
            writer=API_OWNER if user_id is None else user_id,
            may_change=lambda prop: None,
            is_delete_after_owner_left=is_delete_after_owner_left,
            is_update_owner=is_update_owner,
        )
    return wanted


def _store(
    room: Room,
    wanted: dict[str, str],
    *,
    writer: str,
    may_change: Callable[[RoomProperty], None],
    is_delete_after_owner_left: bool,
    is_update_owner: bool,
) -> None:
    """Under the room's lock: the batch checked whole (``may_change`` raises for a key the
    writer may not change, then the room's limits), then written, as one room change."""
    stored = {p.key: p for p in RoomProperty.objects.filter(room=room)}
    for key in wanted:
        if key in stored:
            may_change(stored[key])
    _check_room_limits({key: p.value for key, p in stored.items()} | wanted)
    for key, value in wanted.items():
        current = stored.get(key)
        if current is None:
            current = RoomProperty(room=room, key=key, owner_user_id=writer)
        elif is_update_owner:
            current.owner_user_id = writer
        current.value = value
        current.delete_after_owner_left = is_delete_after_owner_left
        current.save()
    room_changed(room, [properties_event(room, set_properties=wanted)])


def properties_delete(
    *, member: Member, room_id: str, keys: list, is_force: bool = False
) -> dict[str, str]:
    """``room.deleteProperties``: delete these keys, or none. A key the room does not hold
    is no error (it is gone either way). Returns the deleted keys with their last values."""
    wanted = _checked_keys(keys)
    with transaction.atomic():
        room, member = _acting(member, room_id)
        return _drop(
            room, wanted, may_change=lambda p: _require_may_change(member, p, is_force=is_force)
        )


def properties_delete_by_api(*, room: Room, keys: list) -> dict[str, str]:
    """The HTTP API's delete: any key, as a forced one."""
    wanted = _checked_keys(keys)
    with transaction.atomic():
        return _drop(lock_room(room), wanted, may_change=lambda prop: None)


def _drop(
    room: Room, wanted: set[str], *, may_change: Callable[[RoomProperty], None]
) -> dict[str, str]:
    found = list(RoomProperty.objects.filter(room=room, key__in=wanted))
    for prop in found:
        may_change(prop)
    deleted = {prop.key: prop.value for prop in found}
    if deleted:
        RoomProperty.objects.filter(pk__in=[p.pk for p in found]).delete()
        room_changed(room, [properties_event(room, delete_properties=deleted)])
    return deleted


def properties_query(*, member: Member, room_id: str) -> dict[str, str]:
    """``room.queryProperties``: the room's properties now."""
    member = active_member(member)
    _require_room(member.room, room_id)
    return room_properties(member.room)


def room_properties(room: Room) -> dict[str, str]:
    return dict(RoomProperty.objects.filter(room=room).values_list("key", "value"))


def properties_event(
    room: Room,
    *,
    set_properties: dict[str, str] | None = None,
    delete_properties: dict[str, str] | None = None,
) -> dict:
    """The event of a change, as the seed's ``propertiesStream`` delivers it."""
    return {
        "type": EVENT,
        "roomID": room.room_id,
        "setProperties": set_properties or {},
        "deleteProperties": delete_properties or {},
    }


def properties_drop_of_owners(room: Room, user_ids: list[str]) -> list[dict]:
    """Inside a room change, under the room's lock: delete the ``isDeleteAfterOwnerLeft``
    keys of these owners, who left. The event for the room, if any went."""
    gone = RoomProperty.objects.filter(
        room=room, delete_after_owner_left=True, owner_user_id__in=user_ids
    )
    deleted = dict(gone.values_list("key", "value"))
    if not deleted:
        return []
    gone.delete()
    return [properties_event(room, delete_properties=deleted)]


def properties_drop_of_away(room: Room, *, left_before: datetime) -> list[dict]:
    """The same for owners whose socket vanished before ``left_before`` (the end of their
    grace period) and who have not come back."""
    away = Member.objects.filter(room=room, online=False, left_at__lte=left_before)
    return properties_drop_of_owners(room, list(away.values_list("user_id", flat=True)))


# --- checks -----------------------------------------------------------------------------------


def _acting(member: Member, room_id: str) -> tuple[Room, Member]:
    """Under the room's lock: the room and the fresh writer, if they may write at all."""
    room = lock_room(member.room)
    member = active_member(member)
    _require_room(room, room_id)
    _require_may_write(member, room)
    return room, member


def _require_may_write(member: Member, room: Room) -> None:
    role = displayed_role(stored_role=member.role, seated=seat_of(member) is not None)
    if not roles.can_write_properties(
        role, host_permissions=has_host_permissions(member), roles=room.property_roles
    ):
        raise NotPermitted("Your role may not change this room's properties.")


def _require_room(room: Room, room_id: str) -> None:
    if room_id != room.room_id:
        raise ServiceError("wrong_room", f"You are in room {room.room_id!r}, not {room_id!r}.")


def _require_may_change(member: Member, prop: RoomProperty, *, is_force: bool) -> None:
    if prop.owner_user_id == member.user_id:
        return
    if not is_force:
        raise ServiceError(
            "property_owned",
            f"{prop.key!r} belongs to {prop.owner_user_id!r}: only they may change it, "
            "or a host with isForce.",
        )
    if not has_host_permissions(member):
        raise NotPermitted(f"Only the host may force a change of {prop.key!r}.")


def _checked_keys(keys: object) -> set[str]:
    if not isinstance(keys, list) or not keys:
        raise ServiceError("bad_properties", "'keys' must be a list of one or more keys.")
    return {_checked_key(key) for key in keys}


def _checked_properties(properties: object) -> dict[str, str]:
    if not isinstance(properties, dict) or not properties:
        raise ServiceError(
            "bad_properties", "The properties must be an object of one or more keys."
        )
    return {_checked_key(key): _checked_value(key, value) for key, value in properties.items()}


def _checked_key(key: object) -> str:
    if not isinstance(key, str):
        raise ServiceError("property_key_invalid", "A property key must be a string.")
    clean = _clean(key, name="A property key", multiline=False)
    size = len(clean.encode())
    if not 1 <= size <= PROPERTY_KEY_MAX_BYTES:
        raise ServiceError(
            "property_key_invalid",
            f"A property key is 1-{PROPERTY_KEY_MAX_BYTES} bytes of UTF-8 ({size} given).",
        )
    return clean


def _checked_value(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ServiceError("property_value_invalid", f"The value of {key!r} must be a string.")
    clean = _clean(value, name=f"The value of {key!r}", multiline=True)
    size = len(clean.encode())
    if size > PROPERTY_VALUE_MAX_BYTES:
        raise ServiceError(
            "property_value_too_long",
            f"A property value is at most {PROPERTY_VALUE_MAX_BYTES} bytes; {key!r} has {size}.",
        )
    return clean


def _clean(value: str, *, name: str, multiline: bool) -> str:
    """Text checked as every text from outside is (no control characters, valid Unicode);
    the byte limits are checked after, on the UTF-8."""
    try:
        return text.clean_text(value, name=name, max_chars=10_000, multiline=multiline)
    except text.InvalidText as exc:
        code = "property_value_invalid" if multiline else "property_key_invalid"
        raise ServiceError(code, exc.message) from None


def _check_room_limits(after: dict[str, str]) -> None:
    max_keys = settings.LIVEAUDIO_ROOM_PROPERTIES_MAX_KEYS
    if len(after) > max_keys:
        raise ServiceError(
            "properties_too_many",
            f"A room holds at most {max_keys} properties; this change would make {len(after)}.",
        )
    max_bytes = settings.LIVEAUDIO_ROOM_PROPERTIES_MAX_BYTES
    size = sum(len(key.encode()) + len(value.encode()) for key, value in after.items())
    if size > max_bytes:
        raise ServiceError(
            "properties_too_large",
            f"A room's properties are at most {max_bytes} bytes, keys and values together; "
            f"this change would make {size}.",
        )
