"""The in-memory channel layer, with channel names that say which process made them."""

from __future__ import annotations

import secrets
import string
from typing import Any

from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    """Channels' own in-memory layer names every channel ``specific..inmemory!<random>``, the
    same in every process; this one puts a client prefix of its own before the ``!``, as
    ``channels_redis`` does, so a member's ``channel_name`` tells which process holds its
    socket (``rooms.presence``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_prefix = secrets.token_hex(16)

    async def new_channel(self, prefix: str = "specific") -> str:
        suffix = "".join(secrets.choice(string.ascii_letters) for _ in range(12))
        return f"{prefix}.{self.client_prefix}!{suffix}"
