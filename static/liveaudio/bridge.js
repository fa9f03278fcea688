// The embed bridge, inside the iframe: the integrator's page (embed.js) talks to the room
// through postMessage, and only through this module.
//
// - It talks to one origin only, the parent page's (`data-parent-origin` on #room, written by
//   the server from the embed session); a message from any other origin or window is ignored.
// - Calls: {liveaudio: 1, id, method, args} -> {liveaudio: 1, id, ok, result | error}. The
//   methods are the controller members of sdk/calls.js, the table the SDK is built from too.
// - Pushes: {liveaudio: 1, push: "state" | "event" | "message" | "media" | "ready" | "ended" |
//   "error" | "decide", ...}. The state is pushed after every change, before the events of
//   that change, so the parent's getters are already true when its callbacks run; "media" is
//   the player's progress and this user's mute of it (player.js), between states.
// - Decisions: room.js asks `liveaudio.decide(name, payload)`; this module asks the parent
//   ({push: "decide", id, name, payload} -> {liveaudio: 1, id, decision}); a null decision
//   (no callback there) leaves the question to the widget's own dialog.

import { liveaudio } from "./room.js";
import { media } from "./player.js";
import { choose, extensionsFor } from "./media-files.js";
import { CALLS, NOT_AVAILABLE, notAvailableMessage } from "./sdk/calls.js";
import { bytesToBase64, failure } from "./sdk/util.js";

const room = document.getElementById("room");
const parentOrigin = room?.dataset.parentOrigin ?? "";
// Framed by a page that made an embed session: otherwise (the older token URL, or the page
// opened on its own) there is nobody to talk to, and the widget decides everything itself.
const framed = Boolean(parentOrigin) && window.parent !== window;
const SPEAKING_LEVEL = 0.02; // a level above this is someone speaking (levels are 0..1)

const ask = (action, args = {}) => liveaudio.request(action, args);
const done = (promise) => promise.then(() => true);
// The seed's ZegoUIKitMediaPlayResult / SeekToResult: resolved either way, errorCode 0 when
// it worked, else 1 with the server's `code` and message.
const played = (promise) => promise.then(
  () => ({ errorCode: 0, message: "" }),
  (error) => ({ errorCode: 1, code: error.code ?? "internal_error", message: error.message }),
);

// Every seat's occupant, for the calls that mean "all seats" (targetIndex -1).
function occupants({ exceptMe = false } = {}) {
  const seats = (liveaudio.state?.rows ?? []).flat().filter((seat) => seat.user_id);
  return seats
    .map((seat) => seat.user_id)
    .filter((id) => !exceptMe || id !== liveaudio.userID);
}

async function muteLocally(action, userIDs, muted) {
  let result = { mutedUserIDs: [...liveaudio.localMutes] };
  for (const userID of userIDs) {
    result = await ask(action, { userID, muted });
  }
  liveaudio.setLocalMutes(result.mutedUserIDs);
  pushState();
  return true;
}

function userOn(targetIndex) {
  const seat = (liveaudio.state?.rows ?? []).flat().find((s) => s.index === targetIndex);
  if (!seat) throw failure("seat_out_of_range", `There is no seat ${targetIndex}.`);
  return seat.user_id;
}

function nameOf(userID) {
  return liveaudio.state?.members.find((m) => m.user_id === userID)?.user_name ?? userID;
}

// The calls that calls.js marks {"bridge": true}: member -> (action, ...args) => result, where
// `action` is the entry's socket action (or list of them).
const HANDLERS = {
  async leave(action, { showConfirmation = true } = {}) {
    if (showConfirmation && !(await liveaudio.decide("leave", {}))) return false;
    await ask(action);
    return true;
  },
  hideInMemberList(_, userIDs = []) {
    liveaudio.hideInMemberList([].concat(userIDs ?? []).map(String));
    pushState();
    return true;
  },
  "message.send": (action, text) => ask(action, { message: String(text ?? "") }),
  "audioVideo.sendSEI": (_, data, { streamType = "main" } = {}) =>
    liveaudio.sendSEI(data, { streamType }),
  "seat.muteLocally": (action, { targetIndex = -1, muted = true } = {}) => {
    const userID = targetIndex === -1 ? null : userOn(targetIndex);
    if (targetIndex !== -1 && !userID) throw failure("seat_empty", `Seat ${targetIndex} is empty.`);
    return muteLocally(action, userID ? [userID] : occupants({ exceptMe: true }), muted);
  },
  "seat.muteLocallyByUserID": (action, userID, { muted = true } = {}) =>
    muteLocally(action, [userID], muted),
  async "seat.host.removeSpeaker"(action, userID, { showDialogConfirm = true } = {}) {
    const text = `Take ${nameOf(userID)} off their seat?`;
    if (showDialogConfirm && !(await liveaudio.decide("confirm", { text }))) return false;
    return done(ask(action, { userID }));
  },
  async "seat.host.mute"([byIndex, byUserID, all], { targetIndex = -1, muted = true } = {}) {
    if (targetIndex !== -1) return done(ask(byIndex, { targetIndex, muted }));
    if (muted) return done(ask(all)); // every seat but one's own, in one change
    for (const userID of occupants({ exceptMe: true })) {
      await ask(byUserID, { userID, muted });
    }
    return true;
  },
  async "seat.speaker.leave"(action, { showDialog = true } = {}) {
    const text = "Leave your seat?";
    if (showDialog && !(await liveaudio.decide("confirm", { text }))) return false;
    return done(ask(action));
  },
  "audioVideo.microphone.turnOn": (action, isOn, { userID } = {}) =>
    done(ask(action, userID ? { isOn: Boolean(isOn), userID } : { isOn: Boolean(isOn) })),
  "media.play": (action, { filePathOrURL = "", enableRepeat = false } = {}) =>
    played(ask(action, { filePathOrURL, enableRepeat })),
  "media.seekTo": (action, millisecond) => played(ask(action, { millisecond })),
  // The picker opens here, in the iframe (media-files.js: a prompt when it needs a click).
  "media.pickPureAudioFile": () => choose(extensionsFor.pureAudio()),
  "media.pickVideoFile": () => choose(extensionsFor.video()),
  "media.pickFile": (_, { allowedExtensions } = {}) => choose(extensionsFor.any(allowedExtensions)),
  // The seed's Future<Map<String, String>>: the map itself, not true.
  "room.queryProperties": async (action, { roomID } = {}) =>
    (await ask(action, { roomID })).properties,
  // The seed's command is a Uint8Array; the socket carries text, so base64 (the server
  // checks the size of the bytes).
  "room.sendCommand": (action, { roomID, command } = {}) => {
    if (!(command instanceof Uint8Array)) {
      throw failure("bad_request", "room.sendCommand needs 'command' as a Uint8Array.");
    }
    return done(ask(action, { roomID, command: bytesToBase64(command) }));
  },
};

// One table, two ends: a member marked for the bridge without a handler here (or a handler
// for no such member) is a mistake to see at once, not a call that fails one day.
for (const [member, entry] of Object.entries(CALLS)) {
  if (entry.bridge && !Object.hasOwn(HANDLERS, member)) {
    console.error(`liveaudio: calls.js marks ${member} for the bridge, which has no handler`);
  }
}
for (const member of Object.keys(HANDLERS)) {
  if (!CALLS[member]?.bridge) console.error(`liveaudio: ${member} is not a bridge call in calls.js`);
}

// The plain calls: positional arguments into the fields "args" names, then one options
// object with the fields (and defaults) "options" names; null means "leave it out".
function sendPlain({ action, args: names = [], options = {} }, args) {
  const fields = {};
  names.forEach((name, i) => { fields[name] = args[i]; });
  const given = args[names.length] ?? {};
  for (const [name, fallback] of Object.entries(options)) {
    const value = given[name] ?? fallback;
    if (value !== null && value !== undefined) fields[name] = value;
  }
  return done(ask(action, fields));
}

async function call(method, args) {
  const entry = Object.hasOwn(CALLS, method) ? CALLS[method] : null;
  if (!entry) throw failure("unknown_method", `There is no controller member ${method}.`);
  if (entry === NOT_AVAILABLE) throw failure("not_available", notAvailableMessage(method));
  if (liveaudio.closed) throw failure("room_left", "This user is no longer in the room.");
  const list = Array.isArray(args) ? args : [];
  if (entry.bridge) return HANDLERS[method](entry.action, ...list);
  return sendPlain(entry, list);
}

// --- talking to the parent -----------------------------------------------------------------

function post(message) {
  if (!framed) return;
  window.parent.postMessage({ liveaudio: 1, ...message }, parentOrigin);
}

let speaking = [];

function snapshot() {
  return {
    userID: liveaudio.userID,
    room: liveaudio.state,
    localMutes: [...liveaudio.localMutes],
    hiddenMembers: [...liveaudio.hiddenMembers],
    connection: liveaudio.connection,
    speaking,
    media: { ...media },
  };
}

function pushState() {
  if (joined) post({ push: "state", state: snapshot() });
}

let nextQuestion = 0;
const questions = new Map();
const defaultDecide = liveaudio.askHere;

liveaudio.decide = (name, payload = {}) => {
  if (!joined || !framed) return defaultDecide(name, payload);
  const id = `q${++nextQuestion}`;
  return new Promise((resolve) => {
    questions.set(id, resolve);
    post({ push: "decide", id, name, payload });
  }).then((decision) => (typeof decision === "boolean" ? decision : defaultDecide(name, payload)));
};

window.addEventListener("message", async (event) => {
  if (event.origin !== parentOrigin || event.source !== window.parent) return;
  const data = event.data;
  if (!data || data.liveaudio !== 1 || typeof data.id !== "string") return;
  if ("decision" in data) {
    questions.get(data.id)?.(data.decision);
    questions.delete(data.id);
    return;
  }
  if (typeof data.method !== "string") return;
  try {
    const result = await call(data.method, data.args);
    post({ id: data.id, ok: true, result: result ?? null });
  } catch (error) {
    const code = error.code ?? "internal_error";
    post({ id: data.id, ok: false, error: { code, message: error.message || String(error) } });
  }
});

// --- what the room says ---------------------------------------------------------------------

let joined = false;
let ending = null; // the reason of an onEnded frame, or the code of the last error frame
let lastError = null;

// Frames the parent hears as events (the deciding ones come as "decide" questions instead).
const ASKED = new Set([
  "audioVideo.onMicrophoneTurnOnByOthersConfirmation",
  "seat.audience.onTakingInvitationReceived",
]);

document.addEventListener("liveaudio:event", (event) => {
  const frame = event.detail;
  switch (frame.type) {
    case "room.joined":
      joined = true;
      post({ push: "ready", state: snapshot(), messages: liveaudio.messages });
      break;
    case "room.update":
      pushState();
      for (const item of frame.events ?? []) {
        if (!ASKED.has(item.type)) post({ push: "event", event: item });
      }
      break;
    case "room.commands": // the others' room commands, in the room's order
    case "audioVideo.sei": // an SEI, once this page has played the audio it came with
      post({ push: "event", event: frame });
      break;
    case "levels":
      pushSpeaking();
      break;
    case "message.onReceived":
    case "message.onDeleted":
      post({ push: "message", event: frame });
      break;
    case "onEnded":
      ending = frame.reason;
      break;
    case "error":
      if (frame.requestID) break; // a call's answer: the caller gets it
      lastError = { code: frame.code, message: frame.message };
      if (joined) post({ push: "error", error: lastError });
      break;
  }
});

function pushSpeaking() {
  const now = Object.entries(liveaudio.levels)
    .filter(([, level]) => level > SPEAKING_LEVEL)
    .map(([userID]) => userID)
    .sort();
  if (now.join("\n") === speaking.join("\n")) return;
  speaking = now;
  pushState();
}

document.addEventListener("liveaudio:connection", () => pushState());

// The player's progress (4 times a second while playing) and this user's mute: a small push
// of its own rather than the whole state each time.
document.addEventListener("liveaudio:media", (event) => {
  if (joined) post({ push: "media", media: event.detail });
});

// The widget's own minimize button (config `minimizingButton`): the parent page minimizes.
document.addEventListener("click", (event) => {
  if (joined && event.target.closest("[data-liveaudio-minimize]")) post({ push: "minimize" });
});

// Close codes that end the room for this user, as onEnded reasons.
const END_REASONS = {
  token_expired: "tokenExpired",
  session_replaced: "sessionReplaced",
  room_ended: "roomEnded",
};

document.addEventListener("liveaudio:closed", () => {
  if (!joined) {
    // Refused before joining: the parent's `ready` rejects with why.
    post({
      push: "ended",
      joined: false,
      error: lastError ?? { code: "closed", message: "The room closed the connection." },
    });
    return;
  }
  const reason = ending ?? END_REASONS[lastError?.code] ?? lastError?.code ?? "disconnected";
  post({ push: "ended", joined: true, reason, error: ending ? null : lastError });
});

post({ push: "hello" });
