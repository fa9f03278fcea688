// The embed bridge, inside the iframe: the integrator's page (embed.js) talks to the room
// through postMessage, and only through this module.
//
// - It talks to one origin only, the parent page's (`data-parent-origin` on #room, written by
//   the server from the embed session); a message from any other origin or window is ignored.
// - Calls: {liveaudio: 1, id, method, args} -> {liveaudio: 1, id, ok, result | error}.
// - Pushes: {liveaudio: 1, push: "state" | "event" | "message" | "ready" | "ended" | "error" |
//   "decide", ...}. The state is pushed after every change, before the events of that
//   change, so the parent's getters are already true when its callbacks run.
// - Decisions: room.js asks `liveaudio.decide(name, payload)`; this module asks the parent
//   ({push: "decide", id, name, payload} -> {liveaudio: 1, id, decision}); a null decision
//   (no callback there) leaves the question to the widget's own dialog.

const liveaudio = window.liveaudio;
const room = document.getElementById("room");
const parentOrigin = room?.dataset.parentOrigin ?? "";
// Framed by a page that made an embed session: otherwise (the older token URL, or the page
// opened on its own) there is nobody to talk to, and the widget decides everything itself.
const framed = Boolean(parentOrigin) && window.parent !== window;
const SPEAKING_LEVEL = 0.02; // a level above this is someone speaking (levels are 0..1)

// Members of the controller that the server has no feature for yet: a clear refusal.
const NOT_AVAILABLE = [
  "media.play", "media.stop", "media.destroy", "media.pause", "media.resume", "media.seekTo",
  "media.setVolume", "media.muteLocal", "media.pickPureAudioFile", "media.pickVideoFile",
  "media.pickFile", "audioVideo.sendSEI", "audioVideo.seiStream", "room.updateProperty",
  "room.updateProperties", "room.deleteProperties", "room.queryProperties", "room.sendCommand",
  "room.propertiesStream", "room.commandReceivedStream",
];

function failure(code, message) {
  return Object.assign(new Error(message), { code });
}

const ask = (action, args = {}) => liveaudio.request(action, args);
const done = (promise) => promise.then(() => true);

// Every seat's occupant, for the calls that mean "all seats" (targetIndex -1).
function occupants({ exceptMe = false } = {}) {
  const seats = (liveaudio.state?.rows ?? []).flat().filter((seat) => seat.user_id);
  return seats
    .map((seat) => seat.user_id)
    .filter((id) => !exceptMe || id !== liveaudio.userID);
}

async function muteLocally(userIDs, muted) {
  let result = { mutedUserIDs: [...liveaudio.localMutes] };
  for (const userID of userIDs) {
    result = await ask("seat.muteLocallyByUserID", { userID, muted });
  }
  liveaudio.setLocalMutes(result.mutedUserIDs);
  pushState();
  return true;
}

async function hostMute(targetIndex, muted) {
  if (targetIndex !== -1) return done(ask("seat.host.mute", { targetIndex, muted }));
  for (const userID of occupants({ exceptMe: true })) {
    await ask("seat.host.muteByUserID", { userID, muted });
  }
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

// The controller's calls that need the room: method -> (...args) => Promise<result>.
const METHODS = {
  async leave({ showConfirmation = true } = {}) {
    if (showConfirmation && !(await liveaudio.decide("leave", {}))) return false;
    await ask("room.leave");
    return true;
  },
  hideInMemberList(userIDs = []) {
    liveaudio.hideInMemberList(userIDs.map(String));
    pushState();
    return true;
  },
  "message.send": (text) => ask("message.send", { message: String(text ?? "") }),
  "seat.muteLocally": ({ targetIndex = -1, muted = true } = {}) => {
    const userID = targetIndex === -1 ? null : userOn(targetIndex);
    if (targetIndex !== -1 && !userID) throw failure("seat_empty", `Seat ${targetIndex} is empty.`);
    return muteLocally(userID ? [userID] : occupants({ exceptMe: true }), muted);
  },
  "seat.muteLocallyByUserID": (userID, { muted = true } = {}) => muteLocally([userID], muted),
  "seat.host.open": ({ targetIndex = -1 } = {}) => done(ask("seat.host.open", { targetIndex })),
  "seat.host.close": ({ targetIndex = -1 } = {}) => done(ask("seat.host.close", { targetIndex })),
  async "seat.host.removeSpeaker"(userID, { showDialogConfirm = true } = {}) {
    const text = `Take ${nameOf(userID)} off their seat?`;
    if (showDialogConfirm && !(await liveaudio.decide("confirm", { text }))) return false;
    return done(ask("seat.host.removeSpeaker", { userID }));
  },
  "seat.host.acceptTakingRequest": (userID) =>
    done(ask("seat.host.acceptTakingRequest", { userID })),
  "seat.host.rejectTakingRequest": (userID) =>
    done(ask("seat.host.rejectTakingRequest", { userID })),
  "seat.host.inviteToTake": (userID) => done(ask("seat.host.inviteToTake", { userID })),
  "seat.host.mute": ({ targetIndex = -1, muted = true } = {}) => hostMute(targetIndex, muted),
  "seat.host.muteByUserID": (userID, { muted = true } = {}) =>
    done(ask("seat.host.muteByUserID", { userID, muted })),
  "seat.audience.take": (index) => done(ask("seat.audience.take", { index })),
  "seat.audience.applyToTake": () => done(ask("seat.audience.applyToTake")),
  "seat.audience.cancelTakingRequest": () => done(ask("seat.audience.cancelTakingRequest")),
  "seat.audience.acceptTakingInvitation": () =>
    done(ask("seat.audience.acceptTakingInvitation")),
  async "seat.speaker.leave"({ showDialog = true } = {}) {
    const text = "Leave your seat?";
    if (showDialog && !(await liveaudio.decide("confirm", { text }))) return false;
    return done(ask("seat.speaker.leave"));
  },
  "audioVideo.microphone.turnOn": (isOn, { userID } = {}) =>
    done(ask("microphone.turnOn", userID ? { isOn: Boolean(isOn), userID } : { isOn: Boolean(isOn) })),
  "audioVideo.microphone.switchState": ({ userID } = {}) =>
    done(ask("microphone.switchState", userID ? { userID } : {})),
};

async function call(method, args) {
  if (NOT_AVAILABLE.includes(method)) {
    throw failure("not_available", `${method} is not available on this server yet.`);
  }
  const run = Object.hasOwn(METHODS, method) ? METHODS[method] : null;
  if (!run) throw failure("unknown_method", `There is no controller member ${method}.`);
  if (liveaudio.closed) throw failure("room_left", "This user is no longer in the room.");
  return run(...(Array.isArray(args) ? args : []));
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
