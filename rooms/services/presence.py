"""Which server processes are alive, and the presence of members whose process is gone.

Every server process has a ``ServerProcess`` row (its channel layer client prefix, host, pid,
heartbeat). A member is online through one socket, whose ``channel_name`` is
``<prefix>!<suffix>``: the prefix names the process that holds it. A member online through a
process that is gone is disconnected here exactly as a closed socket would be
(``member_disconnect``: offline now, the seat kept for the grace period), and the seat is
freed once the grace period is over (``seats_release_due``). ``rooms.presence`` runs both at
start-up and every few seconds, in every process.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from rooms.models import Member, Role, Room, RoomProperty, ServerProcess
from rooms.services.common import ServiceError
from rooms.services.media import playbacks_pause_all
from rooms.services.members import member_disconnect, seats_release_stale

log = logging.getLogger(__name__)


def channel_prefix_of(channel_name: str) -> str:
    """The process part of a channel name (Channels' "non-local" name, without its ``!``)."""
    prefix, bang, _ = channel_name.partition("!")
    return prefix if bang else ""


def process_register(*, channel_prefix: str) -> ServerProcess:
    """This process, alive from now on. Called before its first socket is accepted."""
    now = timezone.now()
    process, _ = ServerProcess.objects.update_or_create(
        channel_prefix=channel_prefix,
        defaults={
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": now,
            "heartbeat_at": now,
        },
    )
    return process


def process_heartbeat(*, channel_prefix: str) -> bool:
    """Still alive. False when the row is gone: another process found this one dead (it
    missed its heartbeats) and has already taken its members offline."""
    updated = ServerProcess.objects.filter(channel_prefix=channel_prefix).update(
        heartbeat_at=timezone.now()
    )
    return updated == 1


def process_forget(*, channel_prefix: str) -> None:
    """This process stops: any member still online through it is repaired by the next sweep
    of any process, without waiting for the heartbeat to go stale."""
    ServerProcess.objects.filter(channel_prefix=channel_prefix).delete()


def process_is_alive(process: ServerProcess, *, now: datetime, me: str | None) -> bool:
    """A process is alive while its heartbeat is recent; on this host its pid must also be
    running and, if it is this very pid, be this process (not the one before a restart)."""
    if process.channel_prefix == me:
        return True
    stale = timedelta(seconds=settings.LIVEAUDIO_PRESENCE_STALE_SECONDS)
    if process.heartbeat_at < now - stale:
        return False
    if process.host != socket.gethostname():
        return True
    return process.pid != os.getpid() and _pid_running(process.pid)


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, as far as we can tell
    return True


def presence_repair(*, me: str | None = None) -> set[int]:
    """Disconnect every member online through a process that is gone, as a closed socket
    would; forget the dead processes. ``me`` is the calling process's prefix (alive). Returns
    the rooms of the members disconnected."""
    # Members first, processes second: a process registers before its first member joins,
    # so any member read here has its process's row in the read below.
    online = list(Member.objects.filter(online=True).values_list("pk", "channel_name"))
    now = timezone.now()
    processes = list(ServerProcess.objects.all())
    alive = {p.channel_prefix for p in processes if process_is_alive(p, now=now, me=me)}
    if me:
        alive.add(me)
    orphans = [pk for pk, channel in online if channel_prefix_of(channel) not in alive]
    rooms: set[int] = set()
    for member in Member.objects.filter(pk__in=orphans).select_related("room"):
        member_disconnect(member=member, channel_name=member.channel_name)
        rooms.add(member.room_id)
    if orphans:
        log.warning("presence: %d member(s) of stopped processes went offline", len(orphans))
    dead = [p.pk for p in processes if p.channel_prefix not in alive]
    ServerProcess.objects.filter(pk__in=dead).delete()
    return rooms


def seats_release_due() -> list[int]:
    """Free the seats held past the grace period, in every live room (and the
    ``isDeleteAfterOwnerLeft`` properties of owners away as long, and end a room whose
    host asked for it and has been away that long): what a disconnect's own timer does, for
    the timers that died with their process. Returns the rooms it looked at."""
    cutoff = timezone.now() - timedelta(seconds=settings.LIVEAUDIO_SEAT_GRACE_SECONDS)
    away = Member.objects.filter(online=False, left_at__lte=cutoff)
    seated_away = away.filter(room=OuterRef("pk"), seats__isnull=False)
    host_away = away.filter(room=OuterRef("pk"), role=Role.HOST)
    host_here = Member.objects.filter(room=OuterRef("pk"), role=Role.HOST, online=True)
    host_gone = Q(end_when_host_leaves=True) & Q(Exists(host_away)) & ~Q(Exists(host_here))
    owner_away = RoomProperty.objects.filter(
        room=OuterRef("pk"),
        delete_after_owner_left=True,
        owner_user_id__in=away.filter(room=OuterRef(OuterRef("pk"))).values("user_id"),
    )
    due = Room.objects.filter(ended_at=None).filter(
        Q(Exists(seated_away)) | Q(Exists(owner_away)) | host_gone
    )
    released = []
    for room in due:
        try:
            seats_release_stale(room=room)
        except ServiceError:
            continue  # ended meanwhile
        released.append(room.pk)
    return released


def playbacks_pause_after_restart(*, me: str) -> int:
    """At start-up, when no other server process is alive (``me``: this one): the media
    players that were playing are paused where they were (docs/operations.md). A process
    joining a running cluster leaves them to the processes that play them."""
    now = timezone.now()
    others = ServerProcess.objects.exclude(channel_prefix=me)
    if any(process_is_alive(p, now=now, me=me) for p in others):
        return 0
    return playbacks_pause_all()
