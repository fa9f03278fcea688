"""MediaHub: the media side of every room in this process.

One `RoomMixer` per room with at least one peer or a media playback, one `MediaPeer` per
participant, keyed by the participant's user ID, and at most one `MediaPlayer` per room.
Peers belong to the hub, not to a socket: a socket that reconnects finds its peer still
here, so the audio does not drop. Rules (who is audible, what plays) come from outside; the
hub only applies them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field

from aiortc import RTCIceServer

from .errors import MediaError
from .feeds import Address
from .mixer import RoomMixer
from .peer import MediaPeer, validate_offer
from .player import MEDIA_SOURCE_ID, MediaPlayer, PlaybackReport, PlaybackSpec
from .relay import FeedReceiver, FeedsHook, RelayRoom
from .sei import Sei, SeiRelease

logger = logging.getLogger(__name__)

LevelsListener = Callable[[dict[str, float]], None]
# (user_id, reason): what a front end's subscriber hears of `PeerClosedHook`, for its room.
PeerClosedListener = Callable[[str, str], None]
RoomLevelsHook = Callable[[Hashable, dict[str, float]], None]
# (room, user_id, reason): a peer closed without anyone asking (ICE timeout or failure).
PeerClosedHook = Callable[[Hashable, str, str], None]
PlaybackListener = Callable[[PlaybackReport], None]
RoomPlaybackHook = Callable[[Hashable, PlaybackReport], None]
SeiListener = Callable[[SeiRelease], None]
RoomSeiHook = Callable[[Hashable, SeiRelease], None]


@dataclass
class RoomMedia:
    mixer: RoomMixer | RelayRoom  # a relay's rooms have no mixer of their own (relay.py)
    peers: dict[str, MediaPeer] = field(default_factory=dict)
    audible: frozenset[str] = frozenset()
    local_mutes: dict[str, frozenset[str]] = field(default_factory=dict)
    release_timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    player: MediaPlayer | None = None
    # Offers being answered: their peers are not in `peers` yet, and the room must not be
    # dropped as idle under them (a worker's beat checks every half second).
    answering: int = 0


class MediaHub:
    def __init__(
        self,
        *,
        ice_servers: Iterable[RTCIceServer] = (),
        connect_timeout: float = 15.0,
        on_levels: RoomLevelsHook | None = None,
        on_peer_closed: PeerClosedHook | None = None,
        on_playback: RoomPlaybackHook | None = None,
        on_sei: RoomSeiHook | None = None,
        relay: bool = False,
        on_feeds: FeedsHook | None = None,
    ) -> None:
        """`relay`: this hub holds listeners only, fed by their rooms' mixers in other hubs
        (`relay.py`); `on_feeds(room, wanted)` then says which feeds a room needs now."""
        self.relay = relay
        self._on_feeds = on_feeds
        # The relay tier's UDP ends (`open_feeds`): a relay's receiver, a mixer's sender.
        self._feed_receiver: FeedReceiver | None = None
        self._feed_socket: socket.socket | None = None
        self._ice_servers = list(ice_servers)
        self._on_sei = on_sei
        self._connect_timeout = connect_timeout
        # Every room's levels, for an owner that fans them out itself (`MediaEngine`).
        self._on_levels = on_levels
        self._on_peer_closed = on_peer_closed
        self._on_playback = on_playback
        self._rooms: dict[Hashable, RoomMedia] = {}
        # Sockets listening for levels; kept apart so a room without peers has no mixer.
        self._level_listeners: dict[Hashable, set[LevelsListener]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    # -- peers -----------------------------------------------------------------------------

    async def offer(self, room: Hashable, user_id: str, sdp: str) -> str:
        """Answer a participant's offer with a fresh peer; an older peer of theirs is closed.

        A new offer is also how a browser restarts after ICE failed. Raises `MediaError`.
        """
        # Refuse an unusable offer before touching anything: it must not cost the
        # participant a connection that works.
        validate_offer(sdp, "offer")
        media = self._room(room)
        self.cancel_release(room, user_id)
        peer = MediaPeer(
            user_id,
            media.mixer,
            ice_servers=self._ice_servers,
            connect_timeout=self._connect_timeout,
            on_closed=lambda closed: self._forget(room, closed),
        )
        media.answering += 1
        try:
            answer = await peer.accept_offer(sdp)
            if self._rooms.get(room) is not media:  # the room closed while we answered
                raise MediaError("closed", "the room's media closed meanwhile")
        except Exception:
            # The participant keeps the connection they had: the new peer took over
            # nothing (its track joins the mixer only once it has an answer).
            media.answering -= 1
            await peer.close()
            self._drop_room_if_idle(room)
            raise
        media.answering -= 1
        old = media.peers.get(user_id)
        media.peers[user_id] = peer
        if old is not None:
            await old.close()
        media.mixer.set_audible(user_id, user_id in media.audible)
        media.mixer.set_local_mutes(user_id, media.local_mutes.get(user_id, frozenset()))
        return answer.sdp

    async def release(self, room: Hashable, user_id: str) -> None:
        """Close a participant's peer now (they left, were kicked, or the room ended)."""
        media = self._rooms.get(room)
        if media is None:
            return
        self.cancel_release(room, user_id)
        media.local_mutes.pop(user_id, None)
        peer = media.peers.pop(user_id, None)
        if peer is not None:
            await peer.close()
        self._drop_room_if_idle(room)

    def release_later(self, room: Hashable, user_id: str, delay: float) -> None:
        """Close the peer after `delay` unless the participant comes back (`cancel_release`)."""
        media = self._rooms.get(room)
        if media is None or user_id not in media.peers:
            return
        self.cancel_release(room, user_id)
        loop = asyncio.get_running_loop()
        media.release_timers[user_id] = loop.call_later(
            delay, lambda: self._spawn(self.release(room, user_id))
        )

    def cancel_release(self, room: Hashable, user_id: str) -> None:
        media = self._rooms.get(room)
        timer = media.release_timers.pop(user_id, None) if media else None
        if timer is not None:
            timer.cancel()

    async def close_room(self, room: Hashable) -> None:
        media = self._rooms.pop(room, None)
        if media is None:
            return
        for timer in media.release_timers.values():
            timer.cancel()
        for peer in list(media.peers.values()):
            await peer.close()
        await media.mixer.stop()
        if media.player is not None:
            await media.player.close()

    async def close(self) -> None:
        for room in list(self._rooms):
            await self.close_room(room)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._feed_receiver is not None and self._feed_receiver.transport is not None:
            self._feed_receiver.transport.close()
        if self._feed_socket is not None:
            self._feed_socket.close()

    # -- rules -------------------------------------------------------------------------------

    def set_audible(self, room: Hashable, user_ids: Iterable[str]) -> None:
        """Exactly these participants are mixed; everyone else is silent, whatever they send."""
        media = self._rooms.get(room)
        if media is None:
            return
        audible = frozenset(user_ids)
        if audible == media.audible:
            return
        for user_id in media.audible | audible:
            media.mixer.set_audible(user_id, user_id in audible)
        media.audible = audible

    def set_local_mutes(self, room: Hashable, user_id: str, muted: Iterable[str]) -> None:
        """What one listener chose not to hear; nobody else's mix changes."""
        media = self._rooms.get(room)
        if media is None:
            return
        media.local_mutes[user_id] = frozenset(muted)
        media.mixer.set_local_mutes(user_id, media.local_mutes[user_id])

    # -- media playback ----------------------------------------------------------------------

    def set_playback(self, room: Hashable, spec: PlaybackSpec | None) -> None:
        """Play `spec` into the room (a new key starts a new playout; the same key only
        changes pause, repeat and volume), or with None stop it and free its decoder."""
        if self.relay:
            return  # the room's mixer plays it; a relay only forwards
        media = self._room(room) if spec is not None else self._rooms.get(room)
        if media is None:
            return
        player = media.player
        if spec is not None and player is not None and player.key == spec.key:
            player.update(spec)
            return
        if player is not None:
            self._spawn(player.close())
        media.player = None
        if spec is not None:
            media.player = MediaPlayer(spec, lambda report: self._report_playback(room, report))
        media.mixer.set_media(media.player)
        self._drop_room_if_idle(room)

    def player(self, room: Hashable) -> MediaPlayer | None:
        media = self._rooms.get(room)
        return media.player if media else None

    # -- SEI ---------------------------------------------------------------------------------

    def send_sei(self, room: Hashable, sei: Sei, capture_ms: float | None = None) -> None:
        """Release `sei` with the sender's audio captured at `capture_ms` (their wall clock),
        or with the media player's next frame; dropped if that audio is not in the mix."""
        media = self._rooms.get(room)
        if media is None:
            return
        if sei.stream_type == "media":
            media.mixer.send_sei(MEDIA_SOURCE_ID, sei)
            return
        peer = media.peers.get(sei.sender_id)
        if peer is not None:
            media.mixer.send_sei(sei.sender_id, sei, peer.clock.timestamp_at(capture_ms))

    # -- the relay tier ----------------------------------------------------------------------

    async def open_feeds(self, host: str = "127.0.0.1") -> Address:
        """Open this hub's end of the feeds, on `host`, and return its address: where a
        relay's mixers send, or where a mixer's feeds leave from."""
        if self.relay:
            if self._feed_receiver is None:
                loop = asyncio.get_running_loop()
                _, receiver = await loop.create_datagram_endpoint(
                    FeedReceiver, local_addr=(host, 0)
                )
                self._feed_receiver = receiver
            return self._feed_receiver.address
        if self._feed_socket is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind((host, 0))
            self._feed_socket = sock
        host, port = self._feed_socket.getsockname()[:2]
        return host, port

    def ask_feeds(self, room: Hashable, address: Address, feeds: dict[int, frozenset[str]]) -> None:
        """A relay at `address` wants these feeds of `room` (all it wants: see
        `feeds.FeedSender.ask`); the room's mixer starts if it was not running."""
        if self.relay or self._feed_socket is None:
            return
        media = self._room(room) if feeds else self._rooms.get(room)
        if media is not None:
            assert isinstance(media.mixer, RoomMixer)
            media.mixer.ask_feeds(self._feed_socket, address, feeds)
        self.drop_idle_rooms()

    def drop_idle_rooms(self) -> None:
        """Stop the mixers nobody needs any more: no peer, no playback, and no feed a relay
        still asks for (their feeds expire in the mixer's tick; the node calls this on its
        beat, so a room whose relays all died does not tick on forever)."""
        for name in list(self._rooms):
            self._drop_room_if_idle(name)

    def allow_feeds_from(self, address: Address) -> None:
        """A relay reads feeds only from its rooms' mixers' addresses."""
        if self._feed_receiver is not None:
            self._feed_receiver.allow(address)

    def feed_wishes(self) -> dict[Hashable, dict[int, frozenset[str]]]:
        """Every relay room's feeds, to ask its mixer for again (`feeds.FEED_REFRESH`)."""
        return {
            room: media.mixer.wanted()
            for room, media in self._rooms.items()
            if isinstance(media.mixer, RelayRoom)
        }

    def _feeds_changed(self, room: Hashable, wanted: dict[int, frozenset[str]]) -> None:
        media = self._rooms.get(room)
        if self._feed_receiver is not None and media is not None:
            assert isinstance(media.mixer, RelayRoom)
            self._feed_receiver.route(media.mixer)
        if self._on_feeds is not None:
            self._on_feeds(room, wanted)

    # -- speaking levels ---------------------------------------------------------------------

    def subscribe_levels(self, room: Hashable, listener: LevelsListener) -> Callable[[], None]:
        self._level_listeners.setdefault(room, set()).add(listener)

        def unsubscribe() -> None:
            listeners = self._level_listeners.get(room, set())
            listeners.discard(listener)
            if not listeners:
                self._level_listeners.pop(room, None)

        return unsubscribe

    # -- inspection (tests, benchmarks) ------------------------------------------------------

    def peer(self, room: Hashable, user_id: str) -> MediaPeer | None:
        media = self._rooms.get(room)
        return media.peers.get(user_id) if media else None

    def mixer(self, room: Hashable) -> RoomMixer | None:
        media = self._rooms.get(room)
        return media.mixer if media and isinstance(media.mixer, RoomMixer) else None

    def relay_room(self, room: Hashable) -> RelayRoom | None:
        media = self._rooms.get(room)
        return media.mixer if media and isinstance(media.mixer, RelayRoom) else None

    def room_media(self) -> Iterator[tuple[Hashable, RoomMedia]]:
        """Every room with peers, for read-only reporting (a snapshot: safe to iterate)."""
        return iter(list(self._rooms.items()))

    def counts(self) -> dict[str, int]:
        # Snapshots first (each one C call): another thread may read this while the hub runs.
        rooms = list(self._rooms.values())
        listeners = list(self._level_listeners.values())
        return {
            "rooms": len(rooms),
            "peers": sum(len(m.peers) for m in rooms),
            "level_listeners": sum(len(ls) for ls in listeners),
        }

    # -- internals ---------------------------------------------------------------------------

    def _room(self, room: Hashable) -> RoomMedia:
        media = self._rooms.get(room)
        if media is None:
            mixer: RoomMixer | RelayRoom
            if self.relay:
                mixer = RelayRoom(room, self._feeds_changed)
            else:
                mixer = RoomMixer(
                    on_levels=lambda levels: self._fan_out(room, levels),
                    on_sei=lambda release: self._release_sei(room, release),
                )
            media = RoomMedia(mixer=mixer)
            media.mixer.start()
            self._rooms[room] = media
        return media

    def _fan_out(self, room: Hashable, levels: dict[str, float]) -> None:
        if self._on_levels is not None:
            self._on_levels(room, levels)
        for listener in list(self._level_listeners.get(room, ())):
            try:
                listener(levels)
            except Exception:
                logger.exception("levels listener failed")

    def _release_sei(self, room: Hashable, release: SeiRelease) -> None:
        if self._on_sei is not None:
            self._on_sei(room, release)

    def _report_playback(self, room: Hashable, report: PlaybackReport) -> None:
        if self._on_playback is not None:
            self._on_playback(room, report)

    def _forget(self, room: Hashable, peer: MediaPeer) -> None:
        media = self._rooms.get(room)
        if media is not None and media.peers.get(peer.pid) is peer:
            # Still the participant's peer, so nobody released it: it failed on its own.
            del media.peers[peer.pid]
            self.cancel_release(room, peer.pid)
            self._drop_room_if_idle(room)
            if self._on_peer_closed is not None:
                self._on_peer_closed(room, peer.pid, "timeout" if peer.timed_out else "failed")

    def _drop_room_if_idle(self, room: Hashable) -> None:
        media = self._rooms.get(room)
        if media is None or media.peers or media.answering or media.player is not None:
            return
        if isinstance(media.mixer, RoomMixer) and media.mixer.feeds:
            return  # a relay's listeners hear it
        del self._rooms[room]
        if isinstance(media.mixer, RelayRoom):
            if self._feed_receiver is not None:
                self._feed_receiver.forget(media.mixer)
            if self._on_feeds is not None:
                self._on_feeds(room, {})
        self._spawn(media.mixer.stop())

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
