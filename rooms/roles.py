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


def can_control_media(role: str, *, host_permissions: bool, roles: list[str]) -> bool:
    """config.mediaPlayer.rolesCanControl, as the host's config set it on the room.

    ``role`` is the role the room shows (a seated audience member is a speaker); whoever
    has host permissions (a co-host while no host is online) counts as the host.
    """
    return role_listed(role, host_permissions=host_permissions, roles=roles)


def can_write_properties(role: str, *, host_permissions: bool, roles: list[str]) -> bool:
    """config.roomProperties.rolesCanWrite, as the host's config set it on the room."""
    return role_listed(role, host_permissions=host_permissions, roles=roles)


def role_listed(role: str, *, host_permissions: bool, roles: list[str]) -> bool:
    """A host's list of roles, read the one way: the role the room shows is listed, or
    ``host`` is and the member has host permissions."""
    return role in roles or (host_permissions and Role.HOST in roles)
