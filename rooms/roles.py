"""The one statement of who may run the room, shared by the services (which ask the
database) and the state the pages render (which already holds every member)."""

from __future__ import annotations

from collections.abc import Callable

from rooms.models import Role

# Higher may do all that lower may; a token's role claim is a ceiling on this scale.
ROLE_RANK = {Role.AUDIENCE: 0, Role.SPEAKER: 1, Role.COHOST: 2, Role.HOST: 3}


def has_host_permissions(role: str, *, host_online: Callable[[], bool]) -> bool:
    """The host, or a co-host while no host is in the room.

    ``host_online`` is asked only for a co-host, since answering it may cost a query.
    """
    if role == Role.HOST:
        return True
    return role == Role.COHOST and not host_online()
