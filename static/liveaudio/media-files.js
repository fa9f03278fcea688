// Files into the room's media player: the browser's file picker, and the chunked upload to
// the server (docs/http-api.md, "Media uploads") with its progress and Cancel (#media-upload).
// The player bar's own button and the embed bridge (the integrator's pickFile calls) both
// pick through `choose`.
//
// A browser opens a file picker only on a user's gesture in the frame that opens it, and a
// click in the integrator's page is not one in this iframe. So a pick asked without a gesture
// here shows a "Choose a file" prompt (#media-prompt); the user's click on it opens the picker.

import { liveaudio, pageCredential } from "./room.js";

// The seed's pickFile lists; the config's mediaPlayer.allowedExtensions narrows them, and the
// server checks each file again (extension, size, and a probe of what is inside).
const AUDIO_EXTENSIONS = ["aac", "midi", "mp3", "ogg", "wav"];
const VIDEO_EXTENSIONS = ["avi", "flv", "mkv", "mov", "mp4", "mpeg", "webm", "wmv"];
const ALSO_ACCEPTED = { midi: [".mid"] }; // what MIDI files are usually called

const $ = (id) => document.getElementById(id);

function failure(code, message) {
  return Object.assign(new Error(message), { code });
}

// The extensions asked for that the config allows, lower case, without dots.
function allowed(extensions) {
  const configured = liveaudio.config.mediaPlayer?.allowedExtensions ?? [];
  return [].concat(extensions ?? [])
    .map((e) => String(e).toLowerCase().replace(/^\./, ""))
    .filter((e) => configured.includes(e));
}

export const extensionsFor = {
  pureAudio: () => allowed(AUDIO_EXTENSIONS),
  video: () => allowed(VIDEO_EXTENSIONS),
  any: (extensions) => allowed(extensions ?? AUDIO_EXTENSIONS.concat(VIDEO_EXTENSIONS)),
};

// --- the upload -----------------------------------------------------------------------------

// The upload is made as the page's own user, with the same token or embed session.
function uploadTarget() {
  const { appID, roomID, headers } = pageCredential();
  return { base: `/media/${appID}/${roomID}/uploads/`, headers };
}

async function send(target, url, { headers = {}, ...options }) {
  let response;
  try {
    response = await fetch(url, { ...options, headers: { ...target.headers, ...headers } });
  } catch (error) {
    if (error.name === "AbortError") throw failure("upload_canceled", "The upload was canceled.");
    throw failure("network_error", "The upload failed: the server could not be reached.");
  }
  const answer = response.status === 204 ? {} : await response.json().catch(() => null);
  if (!response.ok) {
    const message = answer?.message ?? `The upload failed (HTTP ${response.status}).`;
    throw failure(answer?.code ?? "upload_failed", message);
  }
  return answer ?? {};
}

// file -> the server's {mediaID, name, size, extension, type, totalDuration, info}. The
// chunks go one after another, `onProgress(fraction)` after each; `signal` cancels, and a
// failed or canceled upload is deleted on the server (nothing of it is kept).
export async function upload(file, { onProgress = () => {}, signal } = {}) {
  const target = uploadTarget();
  const started = await send(target, target.base, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: file.name, size: file.size }),
    signal,
  });
  const at = `${target.base}${encodeURIComponent(started.uploadID)}/`;
  try {
    for (let offset = 0; offset < file.size; offset += started.chunkSize) {
      const chunk = file.slice(offset, offset + started.chunkSize);
      await send(target, `${at}?offset=${offset}`, {
        method: "PUT",
        headers: { "Content-Type": "application/octet-stream" },
        body: chunk,
        signal,
      });
      onProgress(Math.min(1, (offset + chunk.size) / file.size));
    }
    return await send(target, `${at}finish/`, { method: "POST", signal });
  } catch (error) {
    // Gone from the server before the caller hears of it.
    await send(target, at, { method: "DELETE" }).catch(() => {});
    throw error;
  }
}

// --- picking --------------------------------------------------------------------------------

let picking = null;

// Opens the picker for these extensions (see extensionsFor) and uploads the file the user
// picks -> [{name, size, extension, mediaID}], or [] when they pick nothing or cancel.
export function choose(extensions) {
  // The server's rule, computed into the state (state.media.canControl): read, not re-derived.
  if (!liveaudio.media?.canControl) {
    return Promise.reject(failure("not_permitted", "Only who may control the player may add files."));
  }
  if (!extensions.length) {
    return Promise.reject(failure("bad_request", "None of these file types may be played here."));
  }
  if (picking) return Promise.reject(failure("busy", "A file is being picked already."));
  picking = pickAndUpload(extensions).finally(() => { picking = null; });
  return picking;
}

async function pickAndUpload(extensions) {
  const file = await pickOne(extensions);
  if (!file) return [];
  const status = $("media-upload");
  const progress = $("media-upload-progress");
  const cancel = $("media-upload-cancel");
  const controller = new AbortController();
  const onCancel = () => controller.abort();
  $("media-upload-name").textContent = file.name;
  $("media-upload-error").textContent = "";
  progress.value = 0;
  status.hidden = false;
  cancel.hidden = false;
  cancel.addEventListener("click", onCancel);
  try {
    const onProgress = (fraction) => { progress.value = fraction; };
    const done = await upload(file, { onProgress, signal: controller.signal });
    status.hidden = true;
    return [{ name: done.name, size: done.size, extension: done.extension, mediaID: done.mediaID }];
  } catch (error) {
    if (error.code === "upload_canceled") {
      status.hidden = true;
      return [];
    }
    $("media-upload-error").textContent = error.message; // stays until the next pick
    cancel.hidden = true;
    throw error;
  } finally {
    cancel.removeEventListener("click", onCancel);
  }
}

// The one file the user picks, or null (the picker or the prompt dismissed).
function pickOne(extensions) {
  const input = $("media-file");
  input.accept = extensions.flatMap((e) => [`.${e}`, ...(ALSO_ACCEPTED[e] ?? [])]).join(",");
  input.value = "";
  $("media-upload").hidden = true;
  const prompt = $("media-prompt");
  const choosing = $("media-prompt-choose");
  const dismiss = $("media-prompt-dismiss");
  return new Promise((resolve) => {
    const open = () => {
      prompt.hidden = true;
      input.click();
    };
    const finish = (file) => {
      input.removeEventListener("change", picked);
      input.removeEventListener("cancel", nothing);
      choosing.removeEventListener("click", open);
      dismiss.removeEventListener("click", nothing);
      prompt.hidden = true;
      resolve(file);
    };
    const picked = () => finish(input.files[0] ?? null);
    const nothing = () => finish(null);
    input.addEventListener("change", picked);
    input.addEventListener("cancel", nothing);
    if (navigator.userActivation?.isActive) {
      open();
    } else {
      choosing.addEventListener("click", open);
      dismiss.addEventListener("click", nothing);
      prompt.hidden = false;
      choosing.focus();
    }
  });
}
