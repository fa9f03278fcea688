"""One socket's view of the room: the frames its page gets for a state and its events.

The shared parts (the stage, the member list, their counts, the topic) are rendered once per
process for each update and view (a config's own texts, avatars, hidden users), as fragments;
a socket sends only those that show something else than what it sent last: a join into a big
room sends the counts. The user's own parts (bottom bar, the host's queue, an invitation prompt)
are rendered only when they change. The JSON state is the one everyone gets, unless this user
may not see all of it (others' requests and invitations).

The welcome carries the whole state; every ``room.update`` after it carries the state without
its member list and ``members``: the changes from the list this page was last sent
(``{since, changed, left}``, ``since`` the revision of the state it was in). A join then costs
each socket the joiner's row, whatever the room's size.
"""

from __future__ import annotations

import json

from rooms import rendering
from rooms.realtime.outbox import MemberIndex, RoomUpdate, member_index, without_members
from rooms.selectors import MessageState, RoomState


class SocketView:
    def __init__(self, user_id: str, config: dict) -> None:
        self.user_id = user_id
        self.config = config
        parts = rendering.parts_view(config)
        self._parts_json = (
            json.dumps(parts, sort_keys=True) if parts != rendering.DEFAULT_PARTS_VIEW else None
        )
        self._personal: dict | None = None
        self.state_json = "null"  # the state this page shows, as sent, without its members
        self._parts = json.loads(self._parts_json) if self._parts_json else None
        self._shown: dict[str, object] = {}  # the key of each fragment this page shows
        self._members: MemberIndex = {}  # the members this page shows
        self._revision = -1  # the revision of the state they came with

    def welcome(self, state: RoomState, messages: list[MessageState]) -> list[str]:
        seen = state.seen_by(self.user_id)
        data = seen.as_json()
        data["media"]["canControl"] = state.can_control_media(self.user_id)
        data["roomProperties"]["canWrite"] = state.can_write_properties(self.user_id)
        welcome_json = json.dumps(data)
        self.state_json = json.dumps(without_members(data))
        self._members, self._revision = member_index(data["members"]), state.revision
        self._personal = None
        fragments = rendering.room_fragments(seen, parts=self._parts)
        self._shown = {name: fragment.key for name, fragment in fragments.items()}
        html = (
            rendering.room_parts_html(seen, parts=self._parts)
            + self._personal_html_if_changed(seen, state)
            + rendering.chat_html(messages)
        )
        rest = json.dumps(
            {"userID": self.user_id, "messages": [rendering.message_json(m) for m in messages]}
        )
        # The state spliced in as serialised above, like an update's.
        return [html, f'{{"type": "room.joined", "state": {welcome_json}, {rest[1:]}']

    def update(self, update: RoomUpdate, events: list[dict]) -> list[str]:
        seen = update.state.seen_by(self.user_id)
        fragments = update.fragments(self._parts_json)
        changed = [f for name, f in fragments.items() if self._shown.get(name, f) != f.key]
        self._shown = {name: fragment.key for name, fragment in fragments.items()}
        html = "".join(f.html for f in changed) + self._personal_html_if_changed(seen, update.state)
        can_control = update.state.can_control_media(self.user_id)
        can_write = update.state.can_write_properties(self.user_id)
        shared_access = update.data.get("roomProperties") or {}
        if (
            seen is update.state
            and can_control == update.data["media"]["canControl"]
            and can_write == shared_access.get("canWrite")
        ):
            self.state_json = update.shared_json
        else:  # this user's own view of the state: encoded for this socket alone
            data = without_members(seen.json_over(update.data))
            data["media"] = {**update.data["media"], "canControl": can_control}
            data["roomProperties"] = {**shared_access, "canWrite": can_write}
            self.state_json = json.dumps(data)
        members = update.members_delta(self._revision, self._members)
        self._members, self._revision = update.members, update.revision
        return [html, self._frame(events, members)] if html else [self._frame(events, members)]

    def events(self, events: list[dict]) -> str:
        """A ``room.update`` frame with the state the page shows and these events."""
        return self._frame(events, f'{{"since": {self._revision}, "changed": [], "left": []}}')

    def _frame(self, events: list[dict], members: str) -> str:
        # Spliced rather than re-encoded: the state was encoded once for the process.
        return (
            f'{{"type": "room.update", "state": {self.state_json}, "members": {members}, '
            f'"events": {json.dumps(events)}}}'
        )

    def _personal_html_if_changed(self, seen: RoomState, full: RoomState) -> str:
        """Most updates (someone joins, someone speaks) change nothing of this user's own
        parts: skip rendering them, which keeps a busy room's update cost linear."""
        context = rendering.personal_context(seen, self.user_id, self.config, full_state=full)
        if context == self._personal:
            return ""
        self._personal = context
        return rendering.personal_html_from(context)
