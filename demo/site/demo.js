// The demo integrator's page: everything an integrator writes to embed a room.
"use strict";

const log = (text) => {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  document.getElementById("log").prepend(item);
};

function loadSDK(server) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = `${server}/static/liveaudio/embed.js`;
    script.onload = () => resolve(window.LiveAudioRoom);
    script.onerror = () => reject(new Error(`Could not load embed.js from ${server}`));
    document.head.append(script);
  });
}

async function tokenFor(body) {
  // Our backend holds the appSign and asks liveaudio for a token.
  const response = await fetch("/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw Object.assign(new Error(answer.message), { code: answer.code });
  return answer.token;
}

// A preset, plus the widget's own minimize button in the bottom bar (docs/config.md).
function configFor(LiveAudioRoom, role) {
  const config = role === "host" ? LiveAudioRoom.config.host() : LiveAudioRoom.config.audience();
  config.bottomMenuBar = role === "host"
    ? { hostButtons: ["toggleMicrophoneButton", "leaveSeatButton", "closeSeatButton",
                      "endRoomButton", "showMemberListButton", "minimizingButton", "leaveButton"] }
    : { audienceButtons: ["applyToTakeSeatButton", "showMemberListButton", "minimizingButton",
                          "leaveButton"],
        speakerButtons: ["toggleMicrophoneButton", "leaveSeatButton", "showMemberListButton",
                         "minimizingButton", "leaveButton"] };
  return config;
}

async function join(event) {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("join-error");
  error.textContent = "";
  const { server, appID } = await (await fetch("/demo-config.json")).json();
  const LiveAudioRoom = await loadSDK(server);
  const userName = form.userName.value.trim();
  const roomID = form.roomID.value.trim();
  const role = form.role.value;
  const userID = `demo-${userName.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${Math.random().toString(36).slice(2, 6)}`;
  try {
    const token = await tokenFor({ roomID, userID, userName, role: role === "host" ? "host" : null });
    const room = LiveAudioRoom.create(document.getElementById("room-frame"), {
      server, appID, token, userID, userName, roomID,
      config: configFor(LiveAudioRoom, role),
      events: {
        onEnded: (reason, { defaultAction }) => { log(`onEnded: ${reason}`); defaultAction(); },
        onError: (e) => log(`onError: ${e.code} ${e.message}`),
        user: {
          onEnter: (user) => log(`${user.name} entered`),
          onLeave: (user) => log(`${user.name} left`),
        },
        seat: {
          onChanged: (taken) => log(`seats changed: ${JSON.stringify(taken)}`),
          onClosed: () => log("seats closed"),
          onOpened: () => log("seats opened"),
          host: { onTakingRequested: (user) => log(`${user.name} raised a hand`) },
          audience: { onTakingRequestRejected: () => log("the host declined") },
        },
        inRoomMessage: { onReceived: (m) => log(`${m.user.name}: ${m.message}`) },
        minimize: { onStateChanged: (state) => log(`minimize: ${state}`) },
      },
    });
    document.getElementById("stage").hidden = false;
    form.hidden = true;
    await room.ready;
    log("joined");
    wireControls(room.controller);
  } catch (e) {
    error.textContent = `${e.code ?? "error"}: ${e.message}`;
  }
}

function wireControls(controller) {
  const calls = {
    minimize: () => controller.minimize.minimize(),
    applyToTake: () => controller.seat.audience.applyToTake(),
    micSwitch: () => controller.audioVideo.microphone.switchState(),
    lockAll: () => controller.seat.host.close(),
    unlockAll: () => controller.seat.host.open(),
    leave: () => controller.leave(),
  };
  for (const button of document.querySelectorAll("[data-call]")) {
    button.addEventListener("click", async () => {
      try {
        log(`${button.dataset.call} → ${JSON.stringify(await calls[button.dataset.call]())}`);
      } catch (e) {
        log(`${button.dataset.call} failed: ${e.code} ${e.message}`);
      }
    });
  }
  document.getElementById("chat").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = event.target.message;
    try {
      await controller.message.send(input.value);
      input.value = "";
    } catch (e) {
      log(`message.send failed: ${e.code} ${e.message}`);
    }
  });
}

document.getElementById("join").addEventListener("submit", join);
