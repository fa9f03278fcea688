// The room page's own script: what HTML and htmx cannot do alone.
// htmx's ws extension swaps the HTML frames; this module takes the JSON frames (events for
// the embed SDK and for scripts), runs the WebRTC connection to the server's mixer, shows
// speaking levels, and keeps the connection badge true. Embedded, bridge.js reads
// `window.liveaudio` and the document events `liveaudio:event` (every JSON frame),
// `liveaudio:connection` and `liveaudio:closed`, and answers `liveaudio.decide` for the
// integrator's page.

const room = document.getElementById("room");
const TOAST_MS = 4000;
const ICE_GATHERING_MS = 3000;
const MIC_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

export const liveaudio = {
  userID: room?.dataset.userId ?? null,
  config: JSON.parse(document.getElementById("liveaudio-config")?.textContent ?? "{}") ?? {},
  state: null,
  messages: [],
  levels: {},            // userID -> 0..1, ~8 times a second while someone speaks
  localMutes: new Set(), // userIDs this user chose not to hear
  closed: null,          // {code, reason} once the server closed the socket for good
  pc: null,              // the RTCPeerConnection to the server
  remoteStream: null,    // the room's mix, as this user hears it
  mediaState: "idle",
  connection: "connecting", // connecting / live / reconnecting / closed
  hiddenMembers: new Set(), // userIDs this user's member list does not show
  request,
  sendSEI,                  // (data, {streamType}) -> Promise<true>: with this user's audio
  decide: askHere,          // (name, payload) -> Promise<boolean | null>; the bridge overrides
  askHere,                  // the widget's own dialogs
  setLocalMutes,
  hideInMemberList,
};
window.liveaudio = liveaudio;

// --- decisions: the widget's own dialogs, or the embedding page's callbacks -------------

// Every question the room asks its user goes through `liveaudio.decide(name, payload)`, so an
// embedding page can answer instead (bridge.js replaces it and falls back to askHere).
// Names: "leave", "microphoneTurnOn" ({fromUser}), "takingInvitation" ({inviter}),
// "confirm" ({text, title, ok, cancel}: ending the room, removing or kicking someone, leaving
// a seat). The widget asks in its own <dialog>, with the config's dialog texts.
function askHere(name, payload = {}) {
  const leave = liveaudio.config.confirmDialogInfo ?? {};
  const question = {
    leave: () => ({
      title: payload.title || leave.title || "Leave the room",
      message: payload.text || leave.message || "Leave the room?",
      ok: payload.ok || leave.confirmButtonName || "Leave",
      cancel: payload.cancel || leave.cancelButtonName || "Cancel",
    }),
    microphoneTurnOn: () => ({
      title: "Turn your microphone on?",
      message: `${payload.fromUser?.name} asks you to turn your microphone on.`,
      ok: "Turn it on",
      cancel: "Not now",
    }),
    confirm: () => ({ title: payload.title, message: payload.text, ok: payload.ok,
                      cancel: payload.cancel }),
  }[name];
  // The invitation's own dialog is the prompt already on the page (#invitation): no answer.
  if (!question) return Promise.resolve(null);
  return confirmInPage(question());
}

// One question at a time: a second waits for the first to be answered.
let dialogs = Promise.resolve();

function confirmInPage({ title, message, ok, cancel }) {
  const asked = dialogs.then(() => new Promise((resolve) => {
    const dialog = document.getElementById("confirm-dialog");
    if (!dialog) {
      resolve(false);
      return;
    }
    document.getElementById("confirm-title").textContent = title || message || "";
    document.getElementById("confirm-message").textContent = title ? message || "" : "";
    document.getElementById("confirm-ok").textContent = ok || "OK";
    document.getElementById("confirm-cancel").textContent = cancel || "Cancel";
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal(); // focus goes to the first button: Cancel
  }));
  dialogs = asked.catch(() => {});
  return asked;
}

// --- the socket: requests and JSON frames ------------------------------------------------

let socket = null;
let nextRequest = 0;
const pending = new Map();

function request(action, args = {}) {
  return new Promise((resolve, reject) => {
    if (!socket) {
      reject(Object.assign(new Error("Not connected to the room."), { code: "not_connected" }));
      return;
    }
    const requestID = `c${++nextRequest}`;
    pending.set(requestID, { resolve, reject });
    socket.send(JSON.stringify({ action, requestID, ...args }));
  });
}

function settle(frame) {
  const waiter = frame.requestID && pending.get(frame.requestID);
  if (!waiter) return;
  pending.delete(frame.requestID);
  if (frame.type === "reply") waiter.resolve(frame.data);
  else waiter.reject(Object.assign(new Error(frame.message), { code: frame.code }));
}

// A room.update brings the state without its member list, and the members as changes to the
// list this page has (`since`: the revision of the state they apply to): every listener of
// liveaudio:event, and liveaudio.state, get the whole state as before.
function withMembers(shown, { state, members: { since, changed, left } }) {
  if (shown && since !== shown.revision) console.warn("members: changes since", since, shown.revision);
  const gone = new Set(left);
  const fresh = new Map(changed.map((m) => [m.user_id, m]));
  const members = (shown?.members ?? []).filter((m) => !gone.has(m.user_id)).map((m) => {
    const now = fresh.get(m.user_id);
    fresh.delete(m.user_id);
    return now ?? m;
  });
  return { ...state, members: [...members, ...fresh.values()] };
}

function handleJSON(frame) {
  if (frame.type === "levels") {
    liveaudio.levels = frame.levels;
    paintLevels();
    return;
  }
  if (frame.type === "sei") {
    holdSEI(frame);
    return;
  }
  if (frame.type === "reaction") burst(frame.userID, frame.emoji);
  switch (frame.type) {
    case "reply":
      settle(frame);
      break;
    case "error":
      if (!frame.requestID) lastRefusal = frame;
      settle(frame);
      break;
    case "room.joined":
      liveaudio.messages = frame.messages;
    // falls through: the welcome carries the state too
    case "room.update":
      if (frame.members) frame.state = withMembers(liveaudio.state, frame);
      keepFoundRowsTrue(frame);
      liveaudio.state = frame.state;
      for (const event of frame.events ?? []) announce(event);
      room?.classList.toggle("is-host", hasHostPermissions(frame.state));
      room?.classList.toggle("is-the-host", me(frame.state)?.role === "host");
      syncMicrophone().catch((error) => console.warn("microphone:", error));
      break;
    case "message.onReceived":
      liveaudio.messages.push(frame.message);
      break;
    case "message.onDeleted":
      liveaudio.messages = liveaudio.messages.filter((m) => m.messageID !== frame.messageID);
      break;
    case "onEnded":
      ended = { reason: frame.reason, banned: Boolean(frame.banned) };
      stopMedia();
      break;
    case "rtc.closed":
      // The server let go of this connection (no ICE in time, or consent lost), maybe
      // before this browser noticed: start anew with a fresh offer.
      liveaudio.pc?.close();
      startMedia();
      break;
  }
  document.dispatchEvent(new CustomEvent("liveaudio:event", { detail: frame }));
  // Questions last: whoever listens (the embed bridge) has seen the state they come with.
  if (frame.type === "room.update") for (const event of frame.events ?? []) answerQuestion(event);
}

// --- reactions: a short burst over the sender's avatar (on a seat or in the audience) ------

function burst(userID, emoji) {
  const avatar = [...document.querySelectorAll("#seats [data-user-id] .avatar")]
    .find((node) => node.closest("[data-user-id]").dataset.userId === userID);
  if (!avatar) return;
  const mark = document.createElement("span");
  mark.className = "reaction-burst";
  mark.textContent = emoji;
  mark.setAttribute("aria-hidden", "true");
  mark.addEventListener("animationend", () => mark.remove());
  avatar.append(mark);
  setTimeout(() => mark.remove(), 3000); // no animation (reduced motion): gone anyway
}

// --- SEI: data sent with a speaker's audio, emitted when this page plays that audio -------

// The server releases each SEI with the mix packet that carries the audio it was sent with,
// stamped with the RTP timestamp of its moment in that audio (docs/protocol.md, "SEI"); this
// page holds it until its receiver has played that far (its jitter buffer has let that audio
// out). Without audio (no connection yet) it waits at most SEI_MAX_HOLD_MS.
const SEI_MAX_HOLD_MS = 2000;
const SEI_POLL_MS = 2;
const RTP_RATE = 48; // Opus' RTP clock, per millisecond
const PACKET_MS = 20;
const heldSEI = []; // {item, until}, in the order the server released them
let seiTimer = null;

function sendSEI(data, { streamType = "main" } = {}) {
  // The capture time of the audio this page sends now: the server finds it on the RTP
  // timeline with this browser's RTCP sender reports, which use the same wall clock.
  return request("audioVideo.sendSEI", { data, streamType, captureMs: Date.now() });
}

function holdSEI(frame) {
  const until = performance.now() + SEI_MAX_HOLD_MS;
  for (const item of frame.items) heldSEI.push({ item, until });
  releaseSEI();
}

// How far this page has played the room's audio, as an RTP timestamp: the packet played last,
// plus the time since it began (up to one packet's length).
function playedRtpTimestamp() {
  const receiver = liveaudio.pc?.getReceivers().find((r) => r.track?.kind === "audio");
  const [source] = receiver?.getSynchronizationSources?.() ?? [];
  if (!source) return null;
  // The spec's clock for it: performance.timeOrigin + performance.now().
  const now = performance.timeOrigin + performance.now();
  const since = Math.min(Math.max(now - source.timestamp, 0), PACKET_MS);
  return (source.rtpTimestamp + Math.round(since * RTP_RATE)) >>> 0;
}

function releaseSEI() {
  clearTimeout(seiTimer);
  seiTimer = null;
  const played = playedRtpTimestamp();
  while (heldSEI.length) {
    const { item, until } = heldSEI[0];
    // Signed 32-bit distance: RTP timestamps wrap around.
    const heard = played !== null && ((played - item.rtpTimestamp) | 0) >= 0;
    if (!heard && performance.now() < until) break;
    heldSEI.shift();
    const { rtpTimestamp, ...event } = item;
    document.dispatchEvent(
      new CustomEvent("liveaudio:event", { detail: { type: "audioVideo.sei", ...event } }),
    );
  }
  if (heldSEI.length) seiTimer = setTimeout(releaseSEI, SEI_POLL_MS);
}

// Questions the server puts to this user; the answer goes back as an action.
async function answerQuestion(event) {
  if (event.type === "audioVideo.onMicrophoneTurnOnByOthersConfirmation") {
    const yes = await liveaudio.decide("microphoneTurnOn", { fromUser: event.fromUser });
    if (yes) await request("microphone.turnOn", { isOn: true }).catch((e) => console.warn(e));
  } else if (event.type === "seat.audience.onTakingInvitationReceived") {
    const yes = await liveaudio.decide("takingInvitation", { inviter: event.inviter });
    if (yes === null) return; // the prompt on the page asks
    const action = yes ? "acceptTakingInvitation" : "rejectTakingInvitation";
    await request(`seat.audience.${action}`).catch((e) => console.warn(e));
  }
}

function me(state = liveaudio.state) {
  return state?.members.find((m) => m.user_id === liveaudio.userID) ?? null;
}

// The server's rule (rooms.roles), computed into the state it sends: read, never re-derived.
function hasHostPermissions(state) {
  return Boolean(me(state)?.has_host_permissions);
}

// What the widget tells the user about requests and invitations (an embedding page gets the
// same events through its callbacks).
const REASONS = { timeout: "it timed out", left: "they left", noEmptySeat: "no seat is free",
                  lockChanged: "the seats changed", noHost: "no host is here" };

function nameOf(userID) {
  return liveaudio.state?.members.find((m) => m.user_id === userID)?.user_name ?? userID;
}

function announce(event) {
  const because = (reason) => (REASONS[reason] ? ` (${REASONS[reason]})` : "");
  const text = {
    "seat.host.onTakingInvitationRejected": () => `${nameOf(event.userID)} declined your invitation.`,
    "seat.host.onTakingInvitationFailed": () =>
      `Your invitation to ${nameOf(event.userID)} failed${because(event.reason)}.`,
    "seat.host.onTakingRequested": () => `${event.user?.name} raised a hand.`,
    "seat.audience.onTakingRequestRejected": () => "The host declined your request.",
    "seat.audience.onTakingRequestFailed": () => `Your request ended${because(event.reason)}.`,
    "liveaudio.said": () => event.text, // the page's own news (shareRoom)
    "seat.speaker.onRemovedByHost": () => `${event.by?.name ?? "The host"} moved you to the audience.`,
    "audioVideo.microphone.onStateChanged": () =>
      event.byHost && !event.isOn && event.userID === liveaudio.userID
        ? "A host turned your microphone off." : "",
  }[event.type];
  if (!text?.()) return;
  // A raised hand with no host here is refused, and the refusal (the toast) says so: one
  // message for one click.
  if (event.type === "seat.audience.onTakingRequestFailed" && event.reason === "noHost") return;
  queueNotice(text());
}

// News waits its turn: each notice shows for NOTICE_MS, or NOTICE_MIN_MS when another is
// waiting, so two at once are both read (a host's mute and removal, say). A refusal (#toast)
// answers a click and shows at once.
const NOTICE_MS = 6000;
const NOTICE_MIN_MS = 2000;
const waitingNotices = [];
let noticeShownAt = 0;
let noticeTimer = null;

function queueNotice(text) {
  waitingNotices.push(text);
  if (noticeTimer === null) {
    showNextNotice();
  } else if (waitingNotices.length === 1) { // the one on screen goes after its minimum
    clearTimeout(noticeTimer);
    const left = noticeShownAt + NOTICE_MIN_MS - performance.now();
    noticeTimer = setTimeout(showNextNotice, Math.max(0, left));
  }
}

function showNextNotice() {
  const notice = document.getElementById("notice");
  const text = waitingNotices.shift();
  if (text === undefined) {
    notice.classList.remove("visible");
    noticeTimer = null;
    return;
  }
  notice.textContent = text;
  notice.classList.add("visible");
  noticeShownAt = performance.now();
  noticeTimer = setTimeout(showNextNotice, waitingNotices.length ? NOTICE_MIN_MS : NOTICE_MS);
}

// --- media: one peer connection to the server --------------------------------------------

let micTrack = null;
let startingMedia = null;
let mediaStopped = false; // for good: the user left or the room ended

function startMedia() {
  if (mediaStopped) return;
  const pc = liveaudio.pc;
  if (pc && ["new", "connecting", "connected"].includes(pc.connectionState)) return;
  startingMedia ??= connectMedia()
    .catch((error) => {
      // The socket went away mid-offer: its reconnect (or the end state) takes over.
      if (error.code !== "not_connected") console.warn("audio connection:", error);
    })
    .finally(() => { startingMedia = null; });
}

async function connectMedia() {
  liveaudio.pc?.close();
  const pc = new RTCPeerConnection({ iceServers: JSON.parse(room.dataset.iceServers || "[]") });
  liveaudio.pc = pc;
  // Always one send-recv audio transceiver: becoming a speaker is a track swap, not a
  // renegotiation; the server simply does not mix anyone who is not on a seat.
  pc.addTransceiver("audio", { direction: "sendrecv" });
  pc.ontrack = (event) => playRoom(new MediaStream([event.track]));
  pc.onconnectionstatechange = () => {
    liveaudio.mediaState = pc.connectionState;
    if (pc.connectionState === "failed" && liveaudio.pc === pc) startMedia(); // restart
  };
  liveaudio.mediaState = "connecting";
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringComplete(pc);
  // The room closed meanwhile (stopMedia) or a newer connection began: nothing to offer.
  if (liveaudio.pc !== pc || pc.signalingState === "closed") return;
  const answer = await request("rtc.offer", { sdp: pc.localDescription.sdp });
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  if (micTrack) await pc.getTransceivers()[0].sender.replaceTrack(micTrack);
}

function gatheringComplete(pc) {
  // The server takes the whole offer at once (no trickle), so wait for the candidates.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, ICE_GATHERING_MS);
  });
}

function playRoom(stream) {
  liveaudio.remoteStream = stream;
  // Also what makes WebAudio see the samples: a remote track reads as silence in an
  // AudioContext unless a media element plays it too.
  const audio = document.getElementById("room-audio");
  audio.srcObject = stream;
  audio.play().catch(() => document.getElementById("sound-prompt")?.removeAttribute("hidden"));
}

// Called on every room update, so calls overlap: opening the microphone takes a while, and
// the update that turns it on often arrives meanwhile. One sync runs at a time and reads the
// state afresh after each wait; an update during a sync makes it go round once more.
let micSync = null;
let micSyncAgain = false;

function syncMicrophone() {
  micSyncAgain = true;
  micSync ??= (async () => {
    try {
      while (micSyncAgain) {
        micSyncAgain = false;
        await applyMicrophone();
      }
    } finally {
      micSync = null;
    }
  })();
  return micSync;
}

function isSeated() {
  const index = me()?.seat_index;
  return index !== null && index !== undefined && !mediaStopped;
}

async function applyMicrophone() {
  if (isSeated() && !micTrack) {
    const deviceId = localStorage.getItem(MIC_DEVICE_KEY);
    const audio = deviceId ? { ...MIC_CONSTRAINTS, deviceId: { ideal: deviceId } } : MIC_CONSTRAINTS;
    const stream = await navigator.mediaDevices.getUserMedia({ audio });
    const track = stream.getAudioTracks()[0];
    if (!isSeated()) {
      track.stop(); // left the seat (or the room) while the microphone was opening
      return;
    }
    micTrack = track;
    micTrack.enabled = false; // until the state says otherwise, below
    const sender = liveaudio.pc?.getTransceivers()[0]?.sender;
    if (sender) await sender.replaceTrack(micTrack);
  } else if (!isSeated() && micTrack) {
    micTrack.stop();
    micTrack = null;
    await liveaudio.pc?.getTransceivers()[0]?.sender.replaceTrack(null);
  }
  if (micTrack) micTrack.enabled = Boolean(me()?.mic_on);
}

// --- this user's own audio settings: output volume, which microphone ------------------------

const VOLUME_KEY = "liveaudio.volume";
const MIC_DEVICE_KEY = "liveaudio.microphone";

function setOutputVolume(percent) {
  const volume = Math.min(Math.max(Number(percent) || 0, 0), 100);
  document.getElementById("room-audio").volume = volume / 100;
  localStorage.setItem(VOLUME_KEY, String(volume));
  return volume;
}

// The microphones this browser has (names once it has been allowed one), in the picker.
async function listMicrophones() {
  const picker = document.getElementById("microphone-picker");
  if (!picker || !navigator.mediaDevices?.enumerateDevices) return;
  const inputs = (await navigator.mediaDevices.enumerateDevices())
    .filter((device) => device.kind === "audioinput");
  const chosen = localStorage.getItem(MIC_DEVICE_KEY) ?? "";
  picker.replaceChildren(
    ...inputs.map((device, i) => {
      const option = document.createElement("option");
      option.value = device.deviceId;
      option.textContent = device.label || `Microphone ${i + 1}`;
      option.selected = device.deviceId === chosen;
      return option;
    }),
  );
}

// Another microphone: remembered, and swapped in at once if this user is on a seat.
async function chooseMicrophone(deviceId) {
  localStorage.setItem(MIC_DEVICE_KEY, deviceId);
  if (!micTrack) return;
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { ...MIC_CONSTRAINTS, deviceId: { exact: deviceId } },
  });
  const track = stream.getAudioTracks()[0];
  track.enabled = micTrack.enabled;
  const old = micTrack;
  micTrack = track;
  await liveaudio.pc?.getTransceivers()[0]?.sender.replaceTrack(track);
  old.stop();
}

document.addEventListener("DOMContentLoaded", () => {
  const slider = document.getElementById("output-volume");
  if (slider) slider.value = String(setOutputVolume(localStorage.getItem(VOLUME_KEY) ?? 100));
});
document.addEventListener("input", (event) => {
  if (event.target.id === "output-volume") setOutputVolume(event.target.value);
});
document.addEventListener("change", (event) => {
  if (event.target.id === "microphone-picker") {
    chooseMicrophone(event.target.value).catch((error) => say(`Microphone: ${error.message}`));
  }
});
document.addEventListener("toggle", (event) => {
  if (event.target.id === "audio-settings" && event.target.open) listMicrophones();
}, true);

function stopMedia() {
  mediaStopped = true;
  micTrack?.stop();
  micTrack = null;
  liveaudio.pc?.close();
  liveaudio.mediaState = "closed";
}

// --- what the seats show ------------------------------------------------------------------

function paintLevels() {
  for (const cell of document.querySelectorAll("#seats .seat-cell[data-user-id]")) {
    const level = liveaudio.levels[cell.dataset.userId] ?? 0;
    cell.style.setProperty("--level", Math.min(1, level * 6).toFixed(2));
  }
}

// The seat marks that are this user's own: whom they muted, and their own seat (which shows
// no tools: nobody mutes, locks or silences themself from there).
function paintLocalMutes() {
  for (const cell of document.querySelectorAll("#seats .seat-cell[data-user-id]")) {
    cell.classList.toggle("muted-locally", liveaudio.localMutes.has(cell.dataset.userId));
    cell.classList.toggle("mine", cell.dataset.userId === liveaudio.userID);
  }
}

function setLocalMutes(userIDs) {
  liveaudio.localMutes = new Set(userIDs);
  paintLocalMutes();
}

async function toggleLocalMute(userID) {
  const muted = !liveaudio.localMutes.has(userID);
  const result = await request("seat.muteLocallyByUserID", { userID, muted });
  setLocalMutes(result.mutedUserIDs);
}

// Only this user's list: the others still see everyone.
function hideInMemberList(userIDs) {
  liveaudio.hiddenMembers = new Set([...liveaudio.hiddenMembers, ...userIDs]);
  paintHiddenMembers();
}

function paintHiddenMembers() {
  for (const row of document.querySelectorAll("#members li[data-user-id]")) {
    row.style.display = liveaudio.hiddenMembers.has(row.dataset.userId) ? "none" : "";
  }
}

// --- the member list past its first page --------------------------------------------------

// The page's own credential, from its socket's URL: its HTTP requests (member pages, uploads)
// are made as the same user, with the same token or embed session.
export function pageCredential() {
  const socket = new URL(room.getAttribute("ws-connect"), location.href);
  const [, appID, roomID] = socket.pathname.match(/^\/ws\/rooms\/([^/]+)\/([^/]+)\//) ?? [];
  const token = socket.searchParams.get("token");
  const headers = token
    ? { Authorization: `Bearer ${token}` }
    : { "X-Liveaudio-Session": socket.searchParams.get("session") ?? "" };
  return { appID, roomID, headers };
}

const isMemberPage = (path) => new URL(path, location.href).pathname.startsWith("/members/");

document.body.addEventListener("htmx:configRequest", (event) => {
  if (isMemberPage(event.detail.path)) Object.assign(event.detail.headers, pageCredential().headers);
});

document.body.addEventListener("htmx:responseError", (event) => {
  const { xhr, requestConfig } = event.detail;
  if (!isMemberPage(requestConfig.path)) return;
  let message = `The member list could not be read (HTTP ${xhr.status}).`;
  try {
    message = JSON.parse(xhr.responseText).message ?? message;
  } catch {
    // not JSON: a proxy's page
  }
  showRefusal(message);
});

// #members-found holds this user's own rows past the first page (a search, or "Show more"),
// kept across the shared part's swaps (hx-preserve). The socket's updates say who left or
// changed; their rows go (a search asks again), so no row's tools act on someone gone.
// Paging on, the rows must follow the first page's last row without a gap: when that row
// changes, rows it now covers go, and if it is none of them the pages start again.
let firstPageEnd = null;

const foundList = () => document.getElementById("members-found");
const searching = () => Boolean(foundList()?.querySelector(".members-search-note"));
const foundRows = () => [...(foundList()?.querySelectorAll(":scope > li[data-user-id]") ?? [])];

function lastFirstPageRow() {
  return document.querySelector("#members .members-first > li[data-user-id]:last-of-type")
    ?.dataset.userId ?? null;
}

function searchAgain() {
  const form = document.getElementById("member-search");
  if (form) htmx.trigger(form, "submit");
}

function keepFoundRowsTrue(frame) {
  if (!foundList()) return;
  if (frame.type === "room.joined") {
    // A welcome after a reconnect: changes may have been missed. Ask again, or start over.
    if (searching()) searchAgain();
    else foundList().replaceChildren();
    return;
  }
  const gone = new Set([...(frame.members?.left ?? []), ...(frame.members?.changed ?? [])
    .map((m) => m.user_id)]);
  const stale = foundRows().filter((row) => gone.has(row.dataset.userId));
  if (!stale.length) return;
  if (searching()) searchAgain();
  else for (const row of stale) row.remove();
}

function followFirstPage() {
  const end = lastFirstPageRow();
  if (end === firstPageEnd) return;
  firstPageEnd = end;
  if (!foundList() || searching()) return;
  const rows = foundRows();
  const at = rows.findIndex((row) => row.dataset.userId === end);
  if (at < 0) foundList().replaceChildren(); // the first page ends elsewhere: start again
  else for (const row of rows.slice(0, at + 1)) row.remove();
}

document.addEventListener("DOMContentLoaded", () => { firstPageEnd = lastFirstPageRow(); });

// A fetched row of someone this user hid (hideInMemberList) stays hidden.
document.body.addEventListener("htmx:load", (event) => {
  const row = event.target;
  if (row.matches?.("#members-found > li[data-user-id]") && liveaudio.hiddenMembers.has(row.dataset.userId)) {
    row.style.display = "none";
  }
});

// --- the end: one clear state, why, and the way on -------------------------------------------

let ended = null; // {reason, banned} of the onEnded frame
let lastRefusal = null; // the last error frame that answered no request (why a join failed)

// By the onEnded reason, else the close code. `rejoin`: the label of a button that joins
// again (a reload: the site's page mints a new token, an embed session is still good).
const END_STATES = {
  localLeave: { title: "You left the room", rejoin: "Join again" },
  kickOut: { title: "You were removed from the room", rejoin: "Join again" },
  banned: { title: "You were banned from this room" },
  roomEnded: { title: "The room has ended", restart: true },
  tokenExpired: { title: "Your session has expired", rejoin: "Join again", siteOnly: true },
  sessionReplaced: { title: "This room is open in another tab", rejoin: "Use it here" },
  refused: { title: "You could not join the room" },
};
const END_BY_CODE = { 1000: "localLeave", 4005: "banned", 4009: "sessionReplaced",
  4010: "kickOut", 4011: "roomEnded", 4012: "tokenExpired" };

function endStateOf(code) {
  if (ended?.banned) return "banned";
  if (ended && END_STATES[ended.reason]) return ended.reason;
  return END_BY_CODE[code] ?? "refused";
}

function showEndState(code) {
  const panel = document.getElementById("end-state");
  if (!panel || !room) return;
  const name = endStateOf(code);
  const state = END_STATES[name];
  const embedded = document.body.classList.contains("embedded");
  panel.dataset.state = name;
  document.getElementById("end-state-title").textContent = state.title;
  const detail = name === "refused" || name === "banned" ? lastRefusal?.message ?? "" : "";
  document.getElementById("end-state-detail").textContent = detail;
  const rejoin = document.getElementById("end-rejoin");
  rejoin.hidden = !state.rejoin || (state.siteOnly && embedded);
  rejoin.textContent = state.rejoin ?? "";
  rejoin.onclick = () => location.reload();
  const restart = document.getElementById("end-restart");
  if (restart) restart.hidden = !(state.restart && room.classList.contains("is-the-host"));
  for (const child of room.children) if (child !== panel) child.inert = true;
  room.classList.add("ended");
  panel.hidden = false;
  (rejoin.hidden ? panel.querySelector("a, button:not([hidden])") : rejoin)?.focus();
}

document.addEventListener("liveaudio:closed", (event) => showEndState(event.detail.code));

// --- htmx's socket ------------------------------------------------------------------------

function setConnection(state, text) {
  liveaudio.connection = state;
  document.dispatchEvent(new CustomEvent("liveaudio:connection", { detail: { state } }));
  const badge = document.getElementById("connection");
  if (!badge) return;
  badge.dataset.state = state;
  badge.textContent = text;
}

document.body.addEventListener("htmx:wsBeforeMessage", (event) => {
  const text = event.detail.message;
  if (typeof text === "string" && text.startsWith("{")) {
    event.preventDefault(); // not HTML: keep htmx from trying to swap it
    handleJSON(JSON.parse(text));
  }
});

document.body.addEventListener("htmx:wsOpen", (event) => {
  socket = event.detail.socketWrapper;
  setConnection("live", "live");
  // A socket that reconnects finds its peer still on the server: only start if none.
  startMedia();
});

const SERVER_RESTARTING = 4013; // rooms/realtime/close_codes.py

document.body.addEventListener("htmx:wsClose", (event) => {
  socket = null;
  for (const [id, waiter] of pending) {
    waiter.reject(Object.assign(new Error("The connection closed."), { code: "not_connected" }));
    pending.delete(id);
  }
  const { code, reason } = event.detail.event;
  if (code === SERVER_RESTARTING) {
    // The server is going down and coming back: htmx reconnects only after 1006 / 1011-1013,
    // which daphne cannot send, so the page joins again itself once the server answers.
    setConnection("reconnecting", "the server is restarting; reconnecting…");
    reloadWhenServerAnswers();
  } else if (code >= 4000) {
    // The server said why (the last error / onEnded frame); htmx will not reconnect.
    liveaudio.closed = { code, reason };
    setConnection("closed", "disconnected");
    stopMedia();
    document.dispatchEvent(new CustomEvent("liveaudio:closed", { detail: { code, reason } }));
  } else if (code === 1000) {
    // A normal close: the user left (room.leave); nothing reconnects.
    liveaudio.closed = { code, reason };
    setConnection("closed", "left");
    stopMedia();
    document.dispatchEvent(new CustomEvent("liveaudio:closed", { detail: { code, reason } }));
  } else {
    setConnection("reconnecting", "reconnecting…");
  }
});

// Soon, but not all pages at once, and never more than ~10 s apart: an outage of a minute
// costs a page at most a few seconds after it ends (htmx's own default backs off to 64 s).
function retryDelay(attempt) {
  return Math.min(10_000, 1000 * 1.5 ** attempt) * (0.5 + Math.random());
}
htmx.config.wsReconnectDelay = retryDelay;

// Reloading while the server is down would leave the browser's error page, which never
// retries: ask first, with the same backoff.
// Any answer but 502-504 (a proxy's "no upstream", our own 503 while stopping) means it is up.
async function reloadWhenServerAnswers(attempt = 0) {
  await new Promise((resolve) => setTimeout(resolve, retryDelay(attempt)));
  try {
    const answer = await fetch(location.href, { method: "HEAD", cache: "no-store" });
    if (![502, 503, 504].includes(answer.status)) {
      location.reload();
      return;
    }
  } catch {
    // not listening yet
  }
  reloadWhenServerAnswers(attempt + 1);
}

document.body.addEventListener("htmx:wsAfterSend", (event) => {
  if (event.target.id === "chat-form") event.target.reset();
});

let toastTimer = null;
document.body.addEventListener("htmx:oobAfterSwap", (event) => {
  const target = event.detail.target;
  if (target?.id === "seats") {
    paintLevels();
    paintLocalMutes();
  } else if (target?.id === "members") {
    followFirstPage();
    paintHiddenMembers();
  } else if (target?.id === "toast") {
    // Hide the toast on screen then: htmx swaps in a new element for each one, and `target`
    // is the one it replaced.
    clearTimeout(toastTimer);
    toastTimer = setTimeout(
      () => document.getElementById("toast")?.classList.remove("visible"),
      TOAST_MS,
    );
  }
});

// Buttons with data-confirm ask first (the capture phase runs before htmx's own listener);
// a yes clicks the button again, and that click goes through.
const confirmed = new WeakSet();
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (!button) return;
  if (confirmed.has(button)) {
    confirmed.delete(button);
    return;
  }
  event.preventDefault();
  event.stopPropagation();
  const name = button.id === "leave-room" ? "leave" : "confirm";
  const { confirm: text, confirmTitle: title, confirmOk: ok, confirmCancel: cancel } =
    button.dataset;
  liveaudio.decide(name, { text, title, ok, cancel }).then((yes) => {
    if (!yes || !button.isConnected) return;
    confirmed.add(button);
    button.click();
  });
}, true);

// The room's address (the site's own page): the phone's share sheet, else the clipboard.
async function shareRoom(button) {
  const url = button.dataset.url;
  const title = document.querySelector(".room-header h1")?.textContent ?? "";
  try {
    if (navigator.share && matchMedia("(pointer: coarse)").matches) {
      await navigator.share({ title, url });
      return;
    }
    await navigator.clipboard.writeText(url);
    say("Link copied: anyone signed in here can join with it.");
  } catch (error) {
    if (error.name !== "AbortError") say(`Copy this link: ${url}`);
  }
}

function say(text) {
  announce({ type: "liveaudio.said", text });
}

// A refusal of the page's own HTTP request, shown like the socket's (#toast).
function showRefusal(text) {
  const toast = document.getElementById("toast");
  if (!toast) return;
  toast.textContent = text;
  toast.classList.add("visible");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => toast.classList.remove("visible"), TOAST_MS);
}

document.body.addEventListener("click", (event) => {
  if (event.target.closest("#share-room")) shareRoom(event.target.closest("#share-room"));
  const localMute = event.target.closest(".seat-local-mute");
  if (localMute) toggleLocalMute(localMute.dataset.userId).catch((e) => console.warn(e));
  const soundPrompt = event.target.closest("#sound-prompt");
  if (soundPrompt) {
    document.getElementById("room-audio").play();
    soundPrompt.hidden = true;
  }
});

// The room timer (config `duration.isVisible`): the server wrote the first value; tick on.
function tickTimer() {
  const value = document.querySelector("#room-timer .room-timer-value");
  if (!value) return;
  const seconds = Math.max(0, Math.floor((Date.now() - Number(value.dataset.startedAt)) / 1000));
  const pad = (n) => String(n).padStart(2, "0");
  value.textContent = `${Math.floor(seconds / 3600)}:${pad(Math.floor(seconds / 60) % 60)}:${pad(seconds % 60)}`;
}
if (document.getElementById("room-timer")) setInterval(tickTimer, 1000);
