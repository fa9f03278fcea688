"""What one socket sends, in order: room updates merged, never an older room after a newer.

- A lone room update goes out at once; updates that come within ``interval`` of the last
  one sent are merged into one frame: every update's events (each addressed by its own
  state) and the newest state. A join storm brings one update per joiner, each with the
  whole room: merged, a socket sends a few frames, not hundreds.
- Every other frame (a reply, an error, chat, the end of the room) waits for the updates
  that came before it (``drained``).
- A state read before one already shown (queued while the socket joined, or late from
  another server process) is not shown again: its events go out with the state the page
  has. ``revision`` is the newest state shown.
- Notices (private events, no state) go out in their place among the updates.

The outbox decides what goes out and when; ``present(update, events)`` (the socket's view)
turns it into frames: ``update`` is the state to show, or ``None`` to keep the shown one.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rooms.rendering import Fragment, room_fragments
from rooms.rtc import audible_user_ids, seated_user_ids
from rooms.selectors import RoomState

log = logging.getLogger(__name__)

UPDATE_INTERVAL = 0.1


MemberIndex = dict[str, str]  # user ID -> that member as JSON


def member_index(members: list[dict]) -> MemberIndex:
    return {m["user_id"]: json.dumps(m) for m in members}


def without_members(data: dict) -> dict:
    """A state's JSON as a ``room.update`` carries it: its members go as changes."""
    return {key: value for key, value in data.items() if key != "members"}


@dataclass(frozen=True)
class RoomUpdate:
    """A room's state as one ``room.update`` message brought it, parsed once per process.

    The page gets the state without its member list and the members as changes to the list
    it has (``members_delta``): a join costs every socket the same bytes whether the room has
    10 members or 10,000. What is derived here is derived once per process, not per socket.
    """

    state_json: str
    data: dict  # state_json parsed
    state: RoomState
    audible: frozenset[str]
    seated: frozenset[str]
    _deltas: dict[int, tuple[MemberIndex, str]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _fragments: dict[str | None, dict[str, Fragment]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def revision(self) -> int:
        return self.state.revision

    @functools.cached_property
    def shared_json(self) -> str:
        """The state as everyone may see it, without ``members``."""
        return json.dumps(without_members(self.data))

    @functools.cached_property
    def members(self) -> MemberIndex:
        return member_index(self.data["members"])

    def fragments(self, parts_json: str | None) -> dict[str, Fragment]:
        """The shared parts for a view (``None``: the default one), for every socket of the
        process with that view."""
        found = self._fragments.get(parts_json)
        if found is None:
            parts = json.loads(parts_json) if parts_json else None
            found = self._fragments[parts_json] = room_fragments(self.state, parts=parts)
        return found

    def members_delta(self, since: int, shown: MemberIndex) -> str:
        """The changes from ``shown`` (the members of the state at revision ``since``) to
        these, as JSON: ``{since, changed: [member], left: [userID]}``. The sockets of a
        process that showed the same update share its index, and so the work: O(changes)
        a socket, O(members) once."""
        cached = self._deltas.get(id(shown))
        if cached is not None and cached[0] is shown:
            return cached[1]
        now = self.members
        changed = [m for user_id, m in now.items() if shown.get(user_id) != m]
        left = [user_id for user_id in shown if user_id not in now]
        delta = (
            f'{{"since": {since}, "changed": [{", ".join(changed)}], "left": {json.dumps(left)}}}'
        )
        self._deltas[id(shown)] = (shown, delta)
        return delta


Present = Callable[[RoomUpdate | None, list[dict]], Awaitable[None]]


class Outbox:
    def __init__(
        self, *, user_id: str, present: Present, interval: float = UPDATE_INTERVAL
    ) -> None:
        self.user_id = user_id
        self.revision = -1
        self._present = present
        self._interval = interval
        # (revision, state_json) of an update, or None for a notice; with its events. The
        # state is parsed when it is shown, not when it arrives: after a join storm a socket
        # holds hundreds of updates and shows only the newest of them.
        self._queue: list[tuple[tuple[int, str] | None, list[dict]]] = []
        self._flush: asyncio.Task[None] | None = None
        self._sent_at = float("-inf")

    @property
    def idle(self) -> bool:
        return not self._queue and self._flush is None

    def shown(self, revision: int) -> None:
        """A state went out by another path (the welcome)."""
        self.revision = max(self.revision, revision)

    def room_update(self, message: dict) -> None:
        """A ``room.update`` from the channel layer: ``revision``, ``state_json``, ``events``."""
        self._queue.append(((message["revision"], message["state_json"]), message["events"]))
        self._schedule()

    def notice(self, events: list[dict]) -> None:
        self._queue.append((None, events))
        self._schedule()

    async def drained(self) -> None:
        """Before any other frame: the updates that came before it go out first."""
        if self._flush is not None:
            await asyncio.wait({self._flush})

    def close(self) -> None:
        self._queue = []
        if self._flush is not None:
            self._flush.cancel()

    def _schedule(self) -> None:
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                wait = self._sent_at + self._interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                batch, self._queue = self._queue, []
                await self._deliver(batch)
                self._sent_at = loop.time()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the socket closed meanwhile, most likely
            log.debug("a room update was not sent: %r", exc)
        finally:
            self._flush = None

    async def _deliver(self, batch: list[tuple[tuple[int, str] | None, list[dict]]]) -> None:
        events: list[dict] = []
        newest: tuple[int, str] | None = None
        for update, update_events in batch:
            if update is None:
                events += update_events  # a notice: addressed by whoever sent it
                continue
            state = functools.partial(_state_of, update[1])
            events += [
                _without_to(e) for e in update_events if addressed_to(e, state, self.user_id)
            ]
            if newest is None or update[0] >= newest[0]:
                newest = update
        if newest is not None and newest[0] >= self.revision:
            self.revision = newest[0]
            await self._present(parse_update(newest[1]), events)
        elif events:
            await self._present(None, events)


@functools.lru_cache(maxsize=8)
def parse_update(state_json: str) -> RoomUpdate:
    """Every socket of a room gets the same ``state_json`` (the same string object, in
    memory), and a join in a room of N sockets would otherwise parse the whole state N
    times. The result is shared: read-only."""
    data = json.loads(state_json)
    state = RoomState.from_json(data)
    audible, seated = frozenset(audible_user_ids(state)), frozenset(seated_user_ids(state))
    return RoomUpdate(state_json, data, state, audible, seated)


def _state_of(state_json: str) -> RoomState:
    return parse_update(state_json).state


def addressed_to(event: dict, state: Callable[[], RoomState], user_id: str) -> bool:
    """Whoever sent the event decided who receives it (``to``); no ``to`` means everyone.
    ``state`` (the state the event came with) is read only for an event to the hosts."""
    to = event.get("to")
    if to is None:
        return True
    return user_id in to.get("users", ()) or (
        to.get("hosts", False) and state().has_host_permissions(user_id)
    )


def _without_to(event: dict) -> dict:
    return {key: value for key, value in event.items() if key != "to"}
