// The room page's own script: what HTML and htmx cannot do alone.
// htmx's ws extension swaps the HTML frames; this module takes the JSON frames (events for
// the embed SDK and for scripts), keeps the connection badge true, and tidies the chat form.

const room = document.getElementById("room");
const TOAST_MS = 4000;

export const liveaudio = {
  userID: room?.dataset.userId ?? null,
  state: null,
  messages: [],
  events: [],            // every JSON frame received, newest last (tests and the SDK read it)
  closed: null,          // {code, reason} once the server closed the socket for good
};
window.liveaudio = liveaudio;

function handleJSON(frame) {
  liveaudio.events.push(frame);
  if (frame.type === "room.joined") {
    liveaudio.state = frame.state;
    liveaudio.messages = frame.messages;
  } else if (frame.type === "room.update") {
    liveaudio.state = frame.state;
  } else if (frame.type === "message.onReceived") {
    liveaudio.messages.push(frame.message);
  } else if (frame.type === "message.onDeleted") {
    liveaudio.messages = liveaudio.messages.filter((m) => m.messageID !== frame.messageID);
  }
  document.dispatchEvent(new CustomEvent("liveaudio:event", { detail: frame }));
}

function setConnection(state, text) {
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

document.body.addEventListener("htmx:wsOpen", () => setConnection("live", "live"));

document.body.addEventListener("htmx:wsClose", (event) => {
  const { code, reason } = event.detail.event;
  if (code >= 4000) {
    // The server said why (the last error / onEnded frame); htmx will not reconnect.
    liveaudio.closed = { code, reason };
    setConnection("closed", "disconnected");
  } else {
    setConnection("connecting", "reconnecting…");
  }
});

document.body.addEventListener("htmx:wsAfterSend", (event) => {
  if (event.target.id === "chat-form") event.target.reset();
});

let toastTimer = null;
document.body.addEventListener("htmx:oobAfterSwap", (event) => {
  const toast = event.detail.target;
  if (toast?.id !== "toast") return;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => toast.classList.remove("visible"), TOAST_MS);
});
