// The room's media player on the page: what the server plays into the room (`state.media`,
// the `media.progress` and `media.mute` frames) and the player bar (#player, from
// templates/rooms/partials/player.html; this module only fills in text and values).
//
// The server plays the file, never this page: each control is a socket action (media.play,
// media.pause, ...), and the progress shown is the server's playout position, as its frames
// say. `liveaudio.media` is this page's view of the player; the document event
// `liveaudio:media` says it changed (bridge.js pushes it to the integrator's page).

import { liveaudio } from "./room.js";
import { choose, extensionsFor } from "./media-files.js";

const NO_MEDIA = {
  state: "noPlay", mediaID: "", name: "", type: "unknown",
  info: { width: 0, height: 0, frameRate: 0 }, totalDuration: 0, volume: 30, repeat: false,
  startedBy: "", position: 0, positionAt: 0, canControl: false,
};

// The server's state of the player, this socket's own mute (`mute`, from its media.mute
// frames, the first one right after the welcome) and the last position.
export const media = { ...NO_MEDIA, mute: false };
liveaudio.media = media;

const bar = document.getElementById("player");
const $ = (id) => document.getElementById(id);

function changed() {
  paint();
  document.dispatchEvent(new CustomEvent("liveaudio:media", { detail: { ...media } }));
}

document.addEventListener("liveaudio:event", (event) => {
  const frame = event.detail;
  switch (frame.type) {
    case "room.joined":
    case "room.update":
      Object.assign(media, NO_MEDIA, frame.state?.media ?? {}, { mute: media.mute });
      changed();
      break;
    case "media.progress":
      // The position only: the play state is the room's (a late frame of a playout that was
      // just paused must not flip it back).
      if (media.state === "noPlay") break;
      media.position = frame.position;
      media.totalDuration = frame.totalDuration || media.totalDuration;
      changed();
      break;
    case "media.mute":
      media.mute = Boolean(frame.mute);
      changed();
      break;
  }
});

// --- the bar --------------------------------------------------------------------------------

const STATE_TEXT = {
  noPlay: "Nothing playing", loadReady: "Ready", playing: "Now playing",
  pausing: "Paused", playEnded: "Ended",
};

function clock(ms) {
  const seconds = Math.max(0, Math.floor((ms || 0) / 1000));
  const pad = (n) => String(n).padStart(2, "0");
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(minutes / 60);
  const rest = `${pad(seconds % 60)}`;
  return hours ? `${hours}:${pad(minutes % 60)}:${rest}` : `${minutes}:${rest}`;
}

let seeking = false; // the user holds the seek slider: progress frames leave it alone

function paint() {
  if (!bar) return;
  const loaded = media.state !== "noPlay";
  const controls = bar.dataset.visible === "true" && Boolean(media.canControl);
  bar.hidden = !loaded && !controls;
  bar.dataset.state = media.state;
  $("player-controls").hidden = !controls;
  $("player-now").hidden = !loaded;
  $("player-state").textContent = STATE_TEXT[media.state] ?? media.state;
  $("player-title").textContent = media.name;
  $("player-elapsed").textContent = clock(media.position);
  $("player-total").textContent = clock(media.totalDuration);
  const progress = $("player-progress");
  progress.hidden = controls; // the seek bar shows the position to who may move it
  progress.max = Math.max(1, media.totalDuration);
  progress.value = Math.min(media.position, progress.max);
  const mute = $("player-mute");
  mute.setAttribute("aria-pressed", String(media.mute));
  mute.textContent = media.mute ? "Unmute for me" : "Mute for me";
  const play = $("player-play");
  play.textContent = media.state === "playing" ? "Pause" : "Play";
  play.disabled = !media.mediaID;
  $("player-stop").disabled = !loaded;
  const seek = $("player-seek");
  seek.disabled = !loaded || !media.totalDuration;
  seek.max = String(media.totalDuration);
  if (!seeking) seek.value = String(media.position);
  const volume = $("player-volume");
  if (document.activeElement !== volume) volume.value = String(media.volume);
}

function say(text) {
  $("player-error").textContent = text;
}

const act = (action, args = {}) =>
  liveaudio.request(action, args).then(() => say(""), (error) => say(error.message));

function togglePlay() {
  if (media.state === "playing") return act("media.pause");
  if (media.state === "pausing" || media.state === "loadReady") return act("media.resume");
  return act("media.play", { filePathOrURL: media.mediaID, enableRepeat: media.repeat });
}

if (bar) {
  $("player-play").addEventListener("click", togglePlay);
  $("player-stop").addEventListener("click", () => act("media.stop"));
  $("player-mute").addEventListener("click", () => act("media.muteLocal", { mute: !media.mute }));
  const seek = $("player-seek");
  seek.addEventListener("input", () => { seeking = true; });
  seek.addEventListener("change", () => {
    seeking = false;
    act("media.seekTo", { millisecond: Number(seek.value) });
  });
  const volume = $("player-volume");
  volume.addEventListener("change", () => act("media.setVolume", { volume: Number(volume.value) }));
  // A click here is the user's gesture: the picker opens at once; the picked file plays.
  $("player-pick").addEventListener("click", () => {
    choose(extensionsFor.any())
      .then((files) => files[0] && act("media.play", { filePathOrURL: files[0].mediaID }))
      .catch((error) => say(error.message));
  });
  paint();
}
