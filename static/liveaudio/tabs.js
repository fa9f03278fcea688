// On a phone (room.css, narrower than 700 px) the chat and the member list share one place,
// and these tabs choose which shows. The choice is on #room (`data-tab`), which the room's
// updates never swap: the member list is swapped in anew with each update, and keeps showing.
// Wider, both panels show and the tabs are not there (display: none).

import { liveaudio } from "./room.js";

const room = document.getElementById("room");
const tabs = [...document.querySelectorAll('.panel-tabs [role="tab"]')];
const unread = document.querySelector(".panel-tabs .unread");
let missed = 0;

function choose(tab, { focus = false } = {}) {
  for (const other of tabs) {
    const chosen = other === tab;
    other.setAttribute("aria-selected", String(chosen));
    other.tabIndex = chosen ? 0 : -1;
  }
  room.dataset.tab = tab.getAttribute("aria-controls");
  if (focus) tab.focus();
  if (room.dataset.tab === "chat") {
    missed = 0;
    unread.hidden = true;
  }
}

for (const tab of tabs) tab.addEventListener("click", () => choose(tab));

// The tabs pattern's keys: arrows (and Home / End) move between the tabs, and choose.
document.querySelector(".panel-tabs")?.addEventListener("keydown", (event) => {
  const at = tabs.indexOf(document.activeElement);
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
  if (at < 0 || to === undefined) return;
  event.preventDefault();
  choose(tabs[(to + tabs.length) % tabs.length], { focus: true });
});

// Someone's message while the member list is showing: the chat's tab counts it.
document.addEventListener("liveaudio:event", ({ detail: frame }) => {
  if (frame.type !== "message.onReceived" || room.dataset.tab !== "members") return;
  if (frame.message.user.id === liveaudio.userID) return;
  if (getComputedStyle(document.querySelector(".panel-tabs")).display !== "none") {
    unread.textContent = String(++missed);
    unread.hidden = false;
  }
});

if (room && tabs.length) room.dataset.tab = "chat";
