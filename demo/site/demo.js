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
    wireProperties(room.controller, roomID);
    wireCommands(room.controller, roomID);
    wireLyrics(room.controller, role);
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

// Everything the room sends is shown through textContent: it is other people's text.
function cell(tag, text) {
  const element = document.createElement(tag);
  element.textContent = text;
  return element;
}

// Room properties: a live table, from queryProperties once and then every change that
// propertiesStream() brings; the form sets or deletes one key. A key belongs to whoever set
// it first: a host forces (isForce) to change or delete someone else's.
function wireProperties(controller, roomID) {
  const properties = new Map();
  const render = () => {
    const rows = [...properties.keys()].sort().map((key) => {
      const row = document.createElement("tr");
      row.dataset.key = key;
      row.append(cell("td", key), cell("td", properties.get(key)));
      return row;
    });
    document.querySelector("#properties tbody").replaceChildren(...rows);
    document.getElementById("properties-empty").hidden = properties.size > 0;
  };
  controller.room.propertiesStream().subscribe(({ setProperties, deleteProperties }) => {
    for (const [key, value] of Object.entries(setProperties)) properties.set(key, value);
    for (const key of Object.keys(deleteProperties)) properties.delete(key);
    render();
  });
  controller.room.queryProperties({ roomID }).then((all) => {
    for (const [key, value] of Object.entries(all)) properties.set(key, value);
    render();
  }, (e) => log(`queryProperties failed: ${e.code} ${e.message}`));

  const form = document.getElementById("property-form");
  const attempt = async (what, call) => {
    try {
      log(`${what} → ${JSON.stringify(await call())}`);
    } catch (e) {
      log(`${what} failed: ${e.code} ${e.message}`);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = form.elements.key.value, value = form.elements.value.value;
    const isForce = controller.seat.localHasHostPermissions;
    attempt("updateProperty", () => controller.room.updateProperty({ roomID, key, value, isForce }));
  });
  form.elements.delete.addEventListener("click", () => {
    if (!form.elements.key.reportValidity()) return;
    const keys = [form.elements.key.value];
    const isForce = controller.seat.localHasHostPermissions;
    attempt("deleteProperties", () => controller.room.deleteProperties({ roomID, keys, isForce }));
  });
}

// Room commands: a log of what commandReceivedStream() brings (bytes, shown as UTF-8 text)
// and of what this page sent (the server does not echo a sender's own commands).
function wireCommands(controller, roomID) {
  const list = document.getElementById("commands");
  const add = (text, attributes) => {
    const item = cell("li", text);
    Object.assign(item.dataset, attributes);
    list.append(item);
    while (list.children.length > 200) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  };
  const decoder = new TextDecoder(); // not fatal: bytes that are not UTF-8 show as U+FFFD
  controller.room.commandReceivedStream().subscribe(({ messages }) => {
    for (const m of messages) {
      const sender = m.senderUserID ?? "(the server)";
      add(`#${m.orderKey} ${sender}: ${decoder.decode(m.message)}`, { orderKey: m.orderKey });
    }
  });
  const form = document.getElementById("command-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = form.elements.command.value;
    try {
      const command = new TextEncoder().encode(text);
      await controller.room.sendCommand({ roomID, command }); // true once the server took it
      add(`you: ${text}`, { sent: "true" });
      form.elements.command.value = "";
    } catch (e) {
      log(`sendCommand failed: ${e.code} ${e.message}`);
    }
  });
}

// SEI, in step with the audio: the latest lyric line heard (#sei-line); a host sends lines
// with sendSEI (they must be seated with the microphone on, else not_in_mix).
function wireLyrics(controller, role) {
  const line = document.getElementById("sei-line");
  controller.audioVideo.seiStream().subscribe((event) => {
    const lyric = event && event.sei ? event.sei.lyric : undefined;
    if (typeof lyric !== "string") return;
    line.textContent = lyric;
    line.dataset.senderId = event.senderID;
  });
  const form = document.getElementById("sei-form");
  form.hidden = role !== "host";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const lyric = form.elements.lyric.value;
      await controller.audioVideo.sendSEI({ lyric }, { streamType: "main" });
      log(`sendSEI → lyric "${lyric}"`);
      form.elements.lyric.value = "";
    } catch (e) {
      log(`sendSEI failed: ${e.code} ${e.message}`);
    }
  });
}

document.getElementById("join").addEventListener("submit", join);
