// The chat's own behaviour: system lines, and the list following the newest message.
//
// System lines ("Aiko joined", "Aiko left", "Aiko is now speaking") are this page's own, made
// from the room updates every page gets anyway (their events and the state they come with):
// nothing is stored or sent for them, so a late joiner does not see the lines before its time.
// Config `systemMessages`: `enabled` (all of them), `joinsUpTo` (join and leave lines only
// while at most this many members are online: a big room's chat stays a chat).

import { liveaudio } from "./room.js";

// The resolved config always has them (rooms/config.py holds the defaults).
const settings = liveaudio.config.systemMessages ?? { enabled: false };
const texts = liveaudio.config.innerText ?? {};
const names = new Map(); // userID -> name: one who left is no longer in the newer state
let following = true; // the list was at its newest line when the last message came in

function line(template, userID) {
  const name = names.get(userID);
  return name === undefined ? null : template.replaceAll("%0", name);
}

function linesFor(events, state) {
  const joins = state.members.filter((m) => m.online).length <= settings.joinsUpTo;
  const lines = [];
  for (const event of events) {
    if (event.userID === liveaudio.userID) continue; // this user's own page shows it already
    if (event.type === "onUserJoined" && joins) {
      lines.push(line(texts.userJoinedMessage, event.userID));
    } else if (event.type === "onUserLeft" && joins) {
      lines.push(line(texts.userLeftMessage, event.userID));
    } else if (event.type === "seat.onChanged") {
      // A move from one seat to another is taken and untaken at once: not news.
      const seatedBefore = new Set(Object.values(event.untaken ?? {}));
      for (const userID of Object.values(event.taken ?? {})) {
        if (userID !== liveaudio.userID && !seatedBefore.has(userID)) {
          lines.push(line(texts.nowSpeakingMessage, userID));
        }
      }
    }
  }
  return lines.filter((text) => text !== null);
}

function show(lines) {
  const list = document.getElementById("chat-messages");
  if (!list || lines.length === 0) return;
  const wasAtEnd = atEnd(list);
  for (const text of lines) {
    const item = document.createElement("li");
    item.className = "message system-line";
    item.textContent = text;
    list.append(item);
  }
  if (wasAtEnd) list.scrollTop = list.scrollHeight;
}

// Scrolled up to read, the list stays put; at its end, it follows the newest line. Asked of
// the list itself just before each change, not kept from scroll events: those come a frame
// late, after a message that arrived in between would already have pulled the list down.
function atEnd(list) {
  return list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
}

document.addEventListener("liveaudio:event", ({ detail: frame }) => {
  if (frame.type !== "room.update" && frame.type !== "room.joined") return;
  for (const m of frame.state.members) names.set(m.user_id, m.user_name);
  if (settings.enabled && frame.type === "room.update") show(linesFor(frame.events ?? [], frame.state));
});

// A message htmx swaps in: where the list was is read before anything of the frame is handled
// (capture, ahead of room.js's own listener on the body).
document.addEventListener(
  "htmx:wsBeforeMessage",
  () => {
    const list = document.getElementById("chat-messages");
    following = !list || atEnd(list);
  },
  true,
);
document.addEventListener("htmx:wsAfterMessage", () => {
  const list = document.getElementById("chat-messages");
  if (list && following) list.scrollTop = list.scrollHeight;
});
