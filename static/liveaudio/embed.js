/* liveaudio embed SDK: put a live audio room into any page.
 *
 * No build step. Load it either way:
 *   <script src="https://ROOMS.EXAMPLE/static/liveaudio/embed.js"></script>   -> window.LiveAudioRoom
 *   import { LiveAudioRoom } from "https://ROOMS.EXAMPLE/static/liveaudio/embed.mjs";
 *
 *   const room = LiveAudioRoom.create(element, {server, appID, token | appSign, userID,
 *                                               userName, roomID, config, events});
 *   await room.ready;  room.controller.seat.audience.applyToTake();  room.destroy();
 *
 * docs/embedding.md describes every option, event and controller member. The room runs in an
 * iframe of the liveaudio server; this file talks to it with postMessage, and only with that
 * iframe at the server's origin (bridge.js on the other side checks this page's origin).
 */
(function (global) {
  "use strict";

  const CALL_TIMEOUT_MS = 15000;
  const JOIN_TIMEOUT_MS = 30000;
  const NO_BRIDGE_MS = 5000; // after the iframe loaded: no bridge means the page refused us

  function failure(code, message, extra) {
    return Object.assign(new Error(message), { code }, extra || {});
  }

  // --- notifiers and streams (the seed's ValueNotifier<T> and Stream<T>) --------------------

  function same(a, b) {
    return a === b || JSON.stringify(a) === JSON.stringify(b);
  }

  function notifier(initial) {
    const listeners = new Set();
    let value = initial;
    return {
      get value() { return value; },
      subscribe(fn) {
        listeners.add(fn);
        return () => listeners.delete(fn);
      },
      _set(next) {
        if (same(value, next)) return;
        value = next;
        for (const fn of [...listeners]) safely(fn, next);
      },
    };
  }

  // stream() -> {subscribe(fn) -> unsubscribe}; stream(fn) subscribes at once.
  function stream(listeners, current) {
    const subscribe = (fn) => {
      listeners.add(fn);
      if (current) safely(fn, current());
      return () => listeners.delete(fn);
    };
    return (fn) => (typeof fn === "function" ? subscribe(fn) : { subscribe });
  }

  function unavailableStream(name) {
    const subscribe = () => {
      throw failure("not_available", name + " is not available on this server yet.");
    };
    return (fn) => (typeof fn === "function" ? subscribe(fn) : { subscribe });
  }

  function safely(fn, ...args) {
    try {
      return fn(...args);
    } catch (error) {
      console.error("liveaudio: a callback failed", error);
      return undefined;
    }
  }

  // --- config presets (the widget's ZegoUIKitPrebuiltLiveAudioRoomConfig.host() / .audience())
  // What sets each role apart; the server fills in every other default of the role
  // (rooms.config.preset), so a config built on a preset need name only what it changes.

  const config = {
    host: () => ({ role: "host", turnOnMicrophoneWhenJoining: true, seat: { takeIndexWhenJoining: 0 } }),
    audience: () => ({ role: "audience" }),
  };

  // --- create ---------------------------------------------------------------------------------

  function create(container, options) {
    const session = new EmbeddedRoom(container, options || {});
    return {
      ready: session.ready,
      controller: session.controller,
      destroy: () => session.destroy(),
    };
  }

  function EmbeddedRoom(container, options) {
    this.options = options;
    this.events = options.events || {};
    this.container = container;
    this.iframe = null;
    this.bar = null;
    this.pending = new Map();
    this.nextID = 0;
    this.state = null;
    this.messages = [];
    this.localMessages = [];
    this.ended = false;
    this.destroyed = false;
    this.minimizeState = "idle";
    this.messageListeners = new Set();
    this.notifiers = new Map();
    this.names = new Map(); // userID -> name, kept after they leave (events name the leaver)
    this.onWindowMessage = this.onWindowMessage.bind(this);
    this.controller = makeController(this);
    let settle;
    this.ready = new Promise((resolve, reject) => { settle = { resolve, reject }; });
    this.ready.catch(() => {}); // an integrator who never awaits it gets no unhandled rejection
    this.settleReady = settle;
    this.bridgeUp = new Promise((resolve) => { this.markBridgeUp = resolve; });
    this.start().catch((error) => this.fail(error));
  }

  EmbeddedRoom.prototype.start = async function () {
    const o = this.options;
    if (!(this.container instanceof Element)) {
      throw failure("bad_options", "create() needs an element to put the room in.");
    }
    let server;
    try {
      server = new URL(o.server);
    } catch (error) {
      throw failure("bad_options", "'server' must be the liveaudio server's URL.");
    }
    this.origin = server.origin;
    const body = {
      appID: o.appID,
      roomID: o.roomID,
      userID: o.userID,
      userName: o.userName,
    };
    if (o.token !== undefined) body.token = o.token;
    if (o.appSign !== undefined) body.appSign = o.appSign;
    if (o.config !== undefined) body.config = o.config;
    let response;
    try {
      response = await fetch(this.origin + "/embed/sessions/", {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (error) {
      // Also what a browser reports when the server does not allow this page's origin (CORS).
      throw failure(
        "network_error",
        "The liveaudio server could not be reached, or it does not allow this page's origin.",
      );
    }
    const answer = await response.json().catch(() => null);
    if (!response.ok || !answer || !answer.url) {
      const code = (answer && answer.code) || "session_refused";
      const message = (answer && answer.message) || "The server refused the session.";
      const fields = (answer && answer.fields) || [];
      throw failure(code, message, { fields, status: response.status });
    }
    if (new URL(answer.url).origin !== this.origin) {
      throw failure("bad_answer", "The server answered a room URL of another origin.");
    }
    this.config = answer.config || {};
    if (this.destroyed) return;
    window.addEventListener("message", this.onWindowMessage);
    const iframe = document.createElement("iframe");
    iframe.src = answer.url;
    iframe.allow = "microphone; autoplay";
    iframe.title = "Live audio room";
    iframe.className = "liveaudio-room";
    Object.assign(iframe.style, { width: "100%", height: "100%", border: "0", display: "block" });
    iframe.addEventListener("load", () => this.checkBridge());
    this.iframe = iframe;
    this.container.appendChild(iframe);
    this.joinTimer = setTimeout(
      () => this.fail(failure("timeout", "The room did not answer in time.")),
      this.options.joinTimeout || JOIN_TIMEOUT_MS,
    );
  };

  EmbeddedRoom.prototype.checkBridge = function () {
    let up = false;
    this.bridgeUp.then(() => { up = true; });
    setTimeout(() => {
      if (!up && !this.joined) {
        this.fail(failure("embed_refused", "The server refused to show the room in this page."));
      }
    }, NO_BRIDGE_MS);
  };

  // Joining failed: `ready` rejects and nothing is left behind in the page.
  EmbeddedRoom.prototype.fail = function (error) {
    if (this.joined || this.failed) return;
    this.failed = error;
    clearTimeout(this.joinTimer);
    window.removeEventListener("message", this.onWindowMessage);
    if (this.iframe) this.iframe.remove();
    this.iframe = null;
    this.settleReady.reject(error);
    this.rejectPending(error);
  };

  EmbeddedRoom.prototype.rejectPending = function (error) {
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
      this.pending.delete(id);
    }
  };

  // --- messages from the iframe ---------------------------------------------------------------

  EmbeddedRoom.prototype.onWindowMessage = function (event) {
    if (!this.iframe || event.origin !== this.origin) return;
    if (event.source !== this.iframe.contentWindow) return;
    const data = event.data;
    if (!data || data.liveaudio !== 1) return;
    this.markBridgeUp();
    if (data.push) {
      this.onPush(data);
      return;
    }
    const waiter = this.pending.get(data.id);
    if (!waiter) return;
    this.pending.delete(data.id);
    clearTimeout(waiter.timer);
    if (data.ok) waiter.resolve(data.result);
    else waiter.reject(failure(data.error.code, data.error.message));
  };

  EmbeddedRoom.prototype.onPush = function (data) {
    switch (data.push) {
      case "ready":
        this.messages = data.messages || [];
        this.setState(data.state, { quiet: true });
        this.joined = true;
        clearTimeout(this.joinTimer);
        this.setMinimizeState("inAudioRoom");
        this.settleReady.resolve(this.controller);
        emit((this.events.room || {}).onStateChanged, connectionState(data.state.connection));
        break;
      case "state":
        this.setState(data.state);
        break;
      case "event":
        this.onRoomEvent(data.event);
        break;
      case "message":
        this.onMessageEvent(data.event);
        break;
      case "decide":
        this.decide(data.id, data.name, data.payload || {});
        break;
      case "error":
        emit(this.events.onError, data.error);
        break;
      case "minimize":
        this.minimize();
        break;
      case "ended":
        if (!data.joined) {
          const error = data.error || { code: "closed", message: "The room closed." };
          this.fail(failure(error.code, error.message));
        } else {
          this.end(data.reason);
        }
        break;
    }
  };

  EmbeddedRoom.prototype.post = function (message) {
    this.iframe.contentWindow.postMessage(Object.assign({ liveaudio: 1 }, message), this.origin);
  };

  // A controller call: request / response with an id and a time-out.
  EmbeddedRoom.prototype.call = async function (method, args) {
    if (this.destroyed) throw failure("destroyed", "This room was destroyed.");
    if (this.failed) throw this.failed;
    if (this.ended) throw failure("room_left", "This user is no longer in the room.");
    const timeout = this.options.callTimeout || CALL_TIMEOUT_MS;
    const id = "r" + ++this.nextID;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(failure("timeout", method + " got no answer within " + timeout + " ms."));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      this.ready.then(() => {
        if (!this.iframe) return; // destroyed meanwhile: already rejected
        try {
          this.post({ id, method, args });
        } catch (error) { // a function or a DOM node in the arguments
          clearTimeout(timer);
          this.pending.delete(id);
          reject(failure("bad_arguments", method + ": " + error.message));
        }
      }, () => {});
    });
  };

  // --- state, and the events that come from its changes ---------------------------------------

  EmbeddedRoom.prototype.setState = function (next, { quiet = false } = {}) {
    const before = this.state;
    this.state = next;
    for (const m of (next.room && next.room.members) || []) this.names.set(m.user_id, m.user_name);
    this.refreshNotifiers();
    if (this.bar) this.paintBar();
    if (quiet || !before) return;
    const was = onlineUsers(before.room);
    const now = onlineUsers(next.room);
    const entered = [...now.values()].filter((u) => !was.has(u.id));
    const left = [...was.values()].filter((u) => !now.has(u.id));
    const userEvents = this.events.user || {};
    for (const user of entered) emit(userEvents.onEnter, user);
    for (const user of left) emit(userEvents.onLeave, user);
    const roleBefore = new Map(membersOf(before.room).map((m) => [m.id, m.role]));
    for (const m of (next.room && next.room.members) || []) {
      const was = roleBefore.get(m.user_id);
      if (was && was !== m.role) emit(userEvents.onRoleChanged, this.user(m.user_id), m.role);
    }
    if (!same(before.room && before.room.members, next.room && next.room.members)) {
      emit(userEvents.onCountOrPropertyChanged, membersOf(next.room));
    }
    if (before.connection !== next.connection) {
      emit((this.events.room || {}).onStateChanged, connectionState(next.connection));
    }
  };

  function onlineUsers(roomState) {
    const users = new Map();
    for (const m of (roomState && roomState.members) || []) {
      if (m.online) users.set(m.user_id, { id: m.user_id, name: m.user_name });
    }
    return users;
  }

  function membersOf(roomState) {
    return ((roomState && roomState.members) || []).map((m) => ({
      id: m.user_id, name: m.user_name, role: m.role, online: m.online,
      microphoneOn: m.mic_on, seatIndex: m.seat_index === null ? -1 : m.seat_index,
    }));
  }

  function connectionState(connection) {
    return { live: "connected", closed: "disconnected" }[connection] || connection;
  }

  EmbeddedRoom.prototype.user = function (userID) {
    return { id: userID, name: this.names.get(userID) || userID };
  };

  EmbeddedRoom.prototype.member = function (userID) {
    const members = (this.state && this.state.room && this.state.room.members) || [];
    return members.find((m) => m.user_id === userID) || null;
  };

  EmbeddedRoom.prototype.seats = function () {
    const rows = (this.state && this.state.room && this.state.room.rows) || [];
    return rows.flat();
  };

  EmbeddedRoom.prototype.onRoomEvent = function (event) {
    const seat = this.events.seat || {};
    const host = seat.host || {};
    const audience = seat.audience || {};
    const av = this.events.audioVideo || {};
    switch (event.type) {
      case "seat.onChanged": {
        const taken = {};
        for (const [index, userID] of Object.entries(event.taken || {})) {
          taken[index] = this.user(userID);
        }
        emit(seat.onChanged, taken, Object.keys(event.untaken || {}).map(Number));
        break;
      }
      case "seat.onClosed": emit(seat.onClosed, event.indexes); break;
      case "seat.onOpened": emit(seat.onOpened, event.indexes); break;
      case "seat.host.onTakingRequested": emit(host.onTakingRequested, event.user); break;
      case "seat.host.onTakingRequestCanceled":
        emit(host.onTakingRequestCanceled, this.user(event.userID), { reason: event.reason });
        break;
      case "seat.host.onTakingInvitationRejected":
        emit(host.onTakingInvitationRejected, this.user(event.userID));
        break;
      case "seat.host.onTakingInvitationFailed":
        emit(host.onTakingInvitationFailed, this.user(event.userID), { reason: event.reason });
        break;
      case "seat.audience.onTakingRequestRejected": emit(audience.onTakingRequestRejected); break;
      case "seat.audience.onTakingRequestFailed":
        emit(audience.onTakingRequestFailed, { reason: event.reason });
        break;
      case "audioVideo.microphone.onStateChanged":
        emit(av.onMicrophoneStateChanged, this.user(event.userID), event.isOn, {
          byHost: Boolean(event.byHost),
        });
        break;
    }
  };

  EmbeddedRoom.prototype.onMessageEvent = function (frame) {
    if (frame.type === "message.onReceived") {
      this.messages.push(frame.message);
      emit((this.events.inRoomMessage || {}).onReceived, frame.message);
    } else if (frame.type === "message.onDeleted") {
      this.messages = this.messages.filter((m) => m.messageID !== frame.messageID);
    }
    this.announceMessages();
  };

  EmbeddedRoom.prototype.messageList = function () {
    return this.messages.concat(this.localMessages);
  };

  EmbeddedRoom.prototype.announceMessages = function () {
    const list = this.messageList();
    for (const fn of [...this.messageListeners]) safely(fn, list);
  };

  // A message shows as "sending" at once, then "success" (the server's copy replaces it) or
  // "failed" (it stays, with a negative messageID, as the seed does).
  EmbeddedRoom.prototype.sendMessage = async function (text) {
    await this.ready;
    const me = this.user(this.state.userID);
    const local = {
      messageID: -(this.localMessages.length + 1) - this.nextID,
      user: me, message: String(text), attributes: {}, timestamp: Date.now(), state: "sending",
    };
    this.localMessages.push(local);
    this.announceMessages();
    try {
      await this.call("message.send", [text]);
      this.localMessages = this.localMessages.filter((m) => m !== local);
      this.announceMessages();
      return true;
    } catch (error) {
      local.state = "failed";
      this.announceMessages();
      throw error;
    }
  };

  // --- deciding callbacks ---------------------------------------------------------------------

  const DECIDERS = {
    leave: (events) => events.onLeaveConfirmation && ((p) => events.onLeaveConfirmation(p)),
    microphoneTurnOn: (events) => {
      const fn = (events.audioVideo || {}).onMicrophoneTurnOnByOthersConfirmation;
      return fn && ((p) => fn(p.fromUser));
    },
    takingInvitation: (events) => {
      const fn = ((events.seat || {}).audience || {}).onTakingInvitationReceived;
      return fn && ((p) => fn(p.inviter));
    },
  };

  EmbeddedRoom.prototype.decide = async function (id, name, payload) {
    const pick = DECIDERS[name];
    const callback = pick && pick(this.events);
    let decision = null;
    if (callback) {
      try {
        const answer = await callback(payload);
        decision = typeof answer === "boolean" ? answer : null;
      } catch (error) {
        console.error("liveaudio: a deciding callback failed", error);
      }
    }
    if (!this.destroyed && this.iframe) this.post({ id, decision });
  };

  // --- the end --------------------------------------------------------------------------------

  EmbeddedRoom.prototype.end = function (reason) {
    if (this.ended) return;
    this.ended = true;
    this.rejectPending(failure("room_left", "This user is no longer in the room."));
    const isFromMinimizing = this.minimizeState === "minimizing";
    const defaultAction = () => this.hide();
    if (this.bar) this.paintBar();
    if (this.events.onEnded) {
      emit(this.events.onEnded, reason, { reason, isFromMinimizing, defaultAction });
    } else if (isFromMinimizing) {
      defaultAction();
    }
  };

  EmbeddedRoom.prototype.destroy = async function () {
    if (this.destroyed) return;
    if (this.joined && !this.ended) {
      // Leave properly, so the seat frees now rather than after the grace period.
      await Promise.race([
        this.call("leave", [{ showConfirmation: false }]).catch(() => {}),
        new Promise((resolve) => setTimeout(resolve, 1000)),
      ]);
    }
    this.destroyed = true;
    this.fail(failure("destroyed", "This room was destroyed.")); // if it never joined
    clearTimeout(this.joinTimer);
    window.removeEventListener("message", this.onWindowMessage);
    this.rejectPending(failure("destroyed", "This room was destroyed."));
    this.removeBar();
    if (this.iframe) this.iframe.remove();
    this.iframe = null;
    this.minimizeState = "idle";
  };

  // --- minimize: a floating bar in this page while the iframe keeps playing -------------------

  EmbeddedRoom.prototype.setMinimizeState = function (state) {
    if (this.minimizeState === state) return;
    this.minimizeState = state;
    emit((this.events.minimize || {}).onStateChanged, state);
  };

  EmbeddedRoom.prototype.minimize = function () {
    if (!this.joined || this.ended || this.destroyed || this.shrunk) return false;
    this.buildBar();
    // The iframe stays where it is in the DOM (moving it would reload the room) and stays
    // rendered: it shrinks under the bar, invisible, and its audio keeps playing.
    this.savedStyle = this.iframe.getAttribute("style") || "";
    this.shrunk = true;
    this.placeIframeUnderBar();
    this.setMinimizeState("minimizing");
    return true;
  };

  EmbeddedRoom.prototype.restore = function () {
    if (!this.shrunk || this.ended || this.destroyed) return false;
    this.removeBar();
    this.unshrink();
    this.setMinimizeState("inAudioRoom");
    return true;
  };

  // The bar goes; a room still live keeps playing unseen (restore() brings it back), an
  // ended one shows its last screen again.
  EmbeddedRoom.prototype.hide = function () {
    this.removeBar();
    if (this.ended) this.unshrink();
    this.setMinimizeState("idle");
  };

  EmbeddedRoom.prototype.unshrink = function () {
    // Through the CSSOM: an integrator's strict style-src blocks setAttribute("style").
    if (this.shrunk && this.iframe) this.iframe.style.cssText = this.savedStyle;
    this.shrunk = false;
  };

  EmbeddedRoom.prototype.removeBar = function () {
    if (this.bar) this.bar.remove();
    this.bar = null;
  };

  EmbeddedRoom.prototype.placeIframeUnderBar = function () {
    const rect = this.bar.getBoundingClientRect();
    Object.assign(this.iframe.style, {
      position: "fixed", left: rect.left + "px", top: rect.top + "px",
      width: "1px", height: "1px", opacity: "0", pointerEvents: "none", zIndex: "2147483646",
    });
  };

  function element(tag, className, style) {
    const node = document.createElement(tag);
    node.className = className;
    Object.assign(node.style, style || {});
    return node;
  }

  const BUTTON_STYLE = {
    font: "inherit", border: "0", borderRadius: "999px", padding: "4px 10px",
    background: "#2e3350", color: "#fff", cursor: "pointer",
  };

  EmbeddedRoom.prototype.buildBar = function () {
    const bar = element("div", "liveaudio-minimized", {
      position: "fixed", right: "16px", bottom: "16px", zIndex: "2147483647",
      display: "flex", alignItems: "center", gap: "8px", padding: "8px 12px",
      borderRadius: "999px", background: "#1b1e2e", color: "#fff", cursor: "grab",
      font: "14px system-ui, sans-serif", boxShadow: "0 4px 16px rgba(0,0,0,.3)",
      userSelect: "none", touchAction: "none", maxWidth: "90vw",
    });
    bar.setAttribute("role", "region");
    bar.setAttribute("aria-label", "Live audio room (minimized)");
    const speaking = element("span", "liveaudio-speaking", {
      overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap", maxWidth: "240px",
    });
    const mic = element("button", "liveaudio-mic", BUTTON_STYLE);
    mic.type = "button";
    mic.addEventListener("click", () => {
      this.controller.audioVideo.microphone.switchState().catch((e) => console.warn(e));
    });
    const restore = element("button", "liveaudio-restore", BUTTON_STYLE);
    restore.type = "button";
    restore.textContent = "Restore";
    restore.addEventListener("click", () => this.restore());
    const leave = element("button", "liveaudio-leave", { ...BUTTON_STYLE, background: "#b3261e" });
    leave.type = "button";
    leave.textContent = "Leave";
    leave.addEventListener("click", () => {
      if (this.ended) this.hide();
      else this.controller.leave({ showConfirmation: true }).catch((e) => console.warn(e));
    });
    bar.append(speaking, mic, restore, leave);
    for (const button of [mic, restore, leave]) {
      button.addEventListener("pointerdown", (event) => event.stopPropagation());
    }
    this.makeDraggable(bar);
    this.bar = bar;
    this.barParts = { speaking, mic, leave };
    document.body.appendChild(bar);
    this.paintBar();
  };

  EmbeddedRoom.prototype.makeDraggable = function (bar) {
    let start = null;
    bar.addEventListener("pointerdown", (event) => {
      const rect = bar.getBoundingClientRect();
      start = { x: event.clientX - rect.left, y: event.clientY - rect.top };
      bar.setPointerCapture(event.pointerId);
      bar.style.cursor = "grabbing";
    });
    bar.addEventListener("pointermove", (event) => {
      if (!start) return;
      const maxX = window.innerWidth - bar.offsetWidth;
      const maxY = window.innerHeight - bar.offsetHeight;
      Object.assign(bar.style, {
        left: Math.max(0, Math.min(maxX, event.clientX - start.x)) + "px",
        top: Math.max(0, Math.min(maxY, event.clientY - start.y)) + "px",
        right: "auto", bottom: "auto",
      });
    });
    const stop = () => {
      start = null;
      bar.style.cursor = "grab";
      if (this.iframe && this.bar) this.placeIframeUnderBar();
    };
    bar.addEventListener("pointerup", stop);
    bar.addEventListener("pointercancel", stop);
  };

  EmbeddedRoom.prototype.paintBar = function () {
    const { speaking, mic, leave } = this.barParts;
    if (this.ended) {
      speaking.textContent = "The room has ended";
      mic.hidden = true;
      leave.textContent = "Close";
      return;
    }
    const state = this.state || {};
    const names = (state.speaking || []).map((id) => this.user(id).name);
    const title = (state.room && state.room.title) || "Live audio room";
    speaking.textContent = names.length ? "🔊 " + names.join(", ") : title;
    const me = this.member(state.userID);
    mic.hidden = !me || me.seat_index === null;
    mic.textContent = me && me.mic_on ? "Mute" : "Unmute";
    mic.setAttribute("aria-pressed", String(Boolean(me && me.mic_on)));
  };

  // --- notifiers that follow the pushed state -------------------------------------------------

  EmbeddedRoom.prototype.keyedNotifier = function (key, compute) {
    let entry = this.notifiers.get(key);
    if (!entry) {
      entry = { notifier: notifier(compute()), compute };
      this.notifiers.set(key, entry);
    }
    return entry.notifier;
  };

  EmbeddedRoom.prototype.refreshNotifiers = function () {
    for (const entry of this.notifiers.values()) entry.notifier._set(entry.compute());
  };

  function emit(fn, ...args) {
    if (typeof fn === "function") safely(fn, ...args);
  }

  // --- the controller (WEB-API.md §5; the seed's names) ---------------------------------------

  function makeController(r) {
    const call = (method) => (...args) => r.call(method, args);
    const me = () => (r.state ? r.member(r.state.userID) : null);
    const role = () => (me() ? me().role : null);
    const hostPresent = () => {
      const members = (r.state && r.state.room && r.state.room.members) || [];
      return members.some((m) => m.role === "host" && m.online);
    };
    const userMap = () => {
      const map = {};
      for (const seat of r.seats()) if (seat.user_id) map[String(seat.index)] = seat.user_id;
      return map;
    };
    const seatAt = (i) => r.seats().find((s) => s.index === i) || null;
    const micOf = (userID) => Boolean(r.member(userID) && r.member(userID).mic_on);
    const localMutes = () => (r.state && r.state.localMutes) || [];
    const askUnavailable = (name) => (...args) => r.call(name, args);

    const volumeNotifier = notifier(30);
    const currentProgressNotifier = notifier(0);
    const playStateNotifier = notifier("noPlay");
    const typeNotifier = notifier("unknown");
    const muteNotifier = notifier(false);

    return {
      leave: (options = {}) => r.call("leave", [options]),
      hideInMemberList: (userIDs) => r.call("hideInMemberList", [[].concat(userIDs || [])]),

      media: {
        get volume() { return volumeNotifier.value; },
        get totalDuration() { return 0; },
        get currentProgress() { return currentProgressNotifier.value; },
        get type() { return typeNotifier.value; },
        get info() { return { width: 0, height: 0, frameRate: 0 }; },
        volumeNotifier, currentProgressNotifier, playStateNotifier, typeNotifier, muteNotifier,
        play: askUnavailable("media.play"),
        stop: askUnavailable("media.stop"),
        destroy: askUnavailable("media.destroy"),
        pause: askUnavailable("media.pause"),
        resume: askUnavailable("media.resume"),
        seekTo: askUnavailable("media.seekTo"),
        setVolume: askUnavailable("media.setVolume"),
        muteLocal: askUnavailable("media.muteLocal"),
        pickPureAudioFile: askUnavailable("media.pickPureAudioFile"),
        pickVideoFile: askUnavailable("media.pickVideoFile"),
        pickFile: askUnavailable("media.pickFile"),
      },

      message: {
        send: (text) => r.sendMessage(text),
        list: () => r.messageList(),
        stream: stream(r.messageListeners, () => r.messageList()),
      },

      minimize: {
        get state() { return r.minimizeState; },
        get isMinimizing() { return r.minimizeState === "minimizing"; },
        minimize: () => r.minimize(),
        restore: () => r.restore(),
        hide: () => r.hide(),
      },

      seat: {
        get userMapNotifier() { return r.keyedNotifier("userMap", userMap); },
        get localIsHost() { return role() === "host"; },
        get localIsAudience() { return role() === "audience"; },
        get localIsSpeaker() { return role() === "speaker"; },
        get localIsCoHost() { return role() === "cohost"; },
        get localHasHostPermissions() {
          return role() === "host" || (role() === "cohost" && !hostPresent());
        },
        getUserByIndex(i) {
          const seat = seatAt(i);
          return seat && seat.user_id ? { id: seat.user_id, name: seat.user_name } : null;
        },
        getEmptySeats({ includeHostSeats = false } = {}) {
          return r.seats()
            .filter((s) => !s.user_id && (includeHostSeats || !s.is_host_seat))
            .map((s) => s.index);
        },
        getSeatIndexByUserID(userID) {
          const m = r.member(userID);
          return m && m.seat_index !== null ? m.seat_index : -1;
        },
        muteStateNotifier(i, { isLocally = false } = {}) {
          return r.keyedNotifier("mute:" + i + ":" + isLocally, () => {
            const seat = seatAt(i);
            if (!seat || !seat.user_id) return isLocally ? false : true;
            return isLocally ? localMutes().includes(seat.user_id) : !seat.mic_on;
          });
        },
        muteLocally: call("seat.muteLocally"),
        muteLocallyByUserID: call("seat.muteLocallyByUserID"),
        host: {
          open: call("seat.host.open"),
          close: call("seat.host.close"),
          removeSpeaker: call("seat.host.removeSpeaker"),
          acceptTakingRequest: call("seat.host.acceptTakingRequest"),
          rejectTakingRequest: call("seat.host.rejectTakingRequest"),
          inviteToTake: call("seat.host.inviteToTake"),
          mute: call("seat.host.mute"),
          muteByUserID: call("seat.host.muteByUserID"),
        },
        audience: {
          take: call("seat.audience.take"),
          applyToTake: call("seat.audience.applyToTake"),
          cancelTakingRequest: call("seat.audience.cancelTakingRequest"),
          acceptTakingInvitation: call("seat.audience.acceptTakingInvitation"),
        },
        speaker: {
          leave: call("seat.speaker.leave"),
        },
      },

      audioVideo: {
        microphone: {
          get localState() { return micOf(r.state && r.state.userID); },
          get localStateNotifier() {
            return r.keyedNotifier("mic:local", () => micOf(r.state && r.state.userID));
          },
          state: (userID) => micOf(userID),
          stateNotifier: (userID) => r.keyedNotifier("mic:" + userID, () => micOf(userID)),
          turnOn: (isOn, { userID } = {}) =>
            r.call("audioVideo.microphone.turnOn", [isOn, userID ? { userID } : {}]),
          switchState: ({ userID } = {}) =>
            r.call("audioVideo.microphone.switchState", [userID ? { userID } : {}]),
        },
        seiStream: unavailableStream("audioVideo.seiStream"),
        sendSEI: askUnavailable("audioVideo.sendSEI"),
      },

      room: {
        updateProperty: askUnavailable("room.updateProperty"),
        updateProperties: askUnavailable("room.updateProperties"),
        deleteProperties: askUnavailable("room.deleteProperties"),
        queryProperties: askUnavailable("room.queryProperties"),
        propertiesStream: unavailableStream("room.propertiesStream"),
        sendCommand: askUnavailable("room.sendCommand"),
        commandReceivedStream: unavailableStream("room.commandReceivedStream"),
      },

      // Not the seed's: for pages that want the raw state the iframe pushed.
      get roomState() { return r.state ? r.state.room : null; },
      get config() { return r.config; },
    };
  }

  const LiveAudioRoom = { create, config, version: "1" };
  global.LiveAudioRoom = LiveAudioRoom;
})(typeof globalThis !== "undefined" ? globalThis : window);
