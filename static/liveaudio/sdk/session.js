// One embedded room in the integrator's page: asks the server for a session, adds the iframe,
// follows what it pushes (state, events, questions, the end), and minimizes it into the bar.

import { failure, emit } from "./util.js";
import { CALLS } from "./calls.js";
import { Transport } from "./transport.js";
import { RoomStore, connectionState } from "./state.js";
import { callbackAt, decision, roomEventCall } from "./events.js";
import { makeController } from "./controller.js";
import { MinimizeBar } from "./minimize-bar.js";

const CALL_TIMEOUT_MS = 15000;
const JOIN_TIMEOUT_MS = 30000;
const NO_BRIDGE_MS = 5000; // after the iframe loaded: no bridge means the page refused us
const LEAVE_ON_DESTROY_MS = 1000;

export class EmbeddedRoom {
  constructor(container, options) {
    this.options = options;
    this.events = options.events || {};
    this.container = container;
    this.iframe = null;
    this.transport = new Transport({
      onPush: (data) => this.onPush(data),
      onFirstMessage: () => this.markBridgeUp(),
    });
    this.bar = null;
    this.store = new RoomStore();
    this.config = undefined;
    this.joined = false;
    this.failed = null;
    this.ended = false;
    this.destroyed = false;
    this.shrunk = false;
    this.minimizeState = "idle";
    this.controller = makeController(this);
    let settle;
    this.ready = new Promise((resolve, reject) => { settle = { resolve, reject }; });
    this.ready.catch(() => {}); // an integrator who never awaits it gets no unhandled rejection
    this.settleReady = settle;
    this.bridgeUp = new Promise((resolve) => { this.markBridgeUp = resolve; });
    this.start().catch((error) => this.fail(error));
  }

  // The callback at `path` of the integrator's events, called safely.
  emit(path, ...args) {
    emit(callbackAt(this.events, path), ...args);
  }

  async start() {
    if (!(this.container instanceof Element)) {
      throw failure("bad_options", "create() needs an element to put the room in.");
    }
    let server;
    try {
      server = new URL(this.options.server);
    } catch (error) {
      throw failure("bad_options", "'server' must be the liveaudio server's URL.");
    }
    const answer = await this.askForSession(server.origin);
    this.config = answer.config || {};
    if (this.destroyed) return;
    const iframe = document.createElement("iframe");
    iframe.src = answer.url;
    iframe.allow = "microphone; autoplay";
    iframe.title = "Live audio room";
    iframe.className = "liveaudio-room";
    Object.assign(iframe.style, { width: "100%", height: "100%", border: "0", display: "block" });
    iframe.addEventListener("load", () => this.checkBridge());
    this.iframe = iframe;
    this.transport.open(iframe, server.origin);
    this.container.appendChild(iframe);
    this.joinTimer = setTimeout(
      () => this.fail(failure("timeout", "The room did not answer in time.")),
      this.options.joinTimeout || JOIN_TIMEOUT_MS,
    );
  }

  // POST /embed/sessions/ -> {session, url, config}, or a refusal that rejects `ready`.
  async askForSession(origin) {
    const o = this.options;
    const body = { appID: o.appID, roomID: o.roomID, userID: o.userID, userName: o.userName };
    if (o.token !== undefined) body.token = o.token;
    if (o.appSign !== undefined) body.appSign = o.appSign;
    if (o.config !== undefined) body.config = o.config;
    let response;
    try {
      response = await fetch(origin + "/embed/sessions/", {
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
    if (new URL(answer.url).origin !== origin) {
      throw failure("bad_answer", "The server answered a room URL of another origin.");
    }
    return answer;
  }

  checkBridge() {
    let up = false;
    this.bridgeUp.then(() => { up = true; });
    setTimeout(() => {
      if (!up && !this.joined) {
        this.fail(failure("embed_refused", "The server refused to show the room in this page."));
      }
    }, NO_BRIDGE_MS);
  }

  // Joining failed: `ready` rejects and nothing is left behind in the page.
  fail(error) {
    if (this.joined || this.failed) return;
    this.failed = error;
    clearTimeout(this.joinTimer);
    this.transport.close(error);
    if (this.iframe) this.iframe.remove();
    this.iframe = null;
    this.settleReady.reject(error);
  }

  // --- what the iframe pushes -----------------------------------------------------------------

  onPush(data) {
    switch (data.push) {
      case "ready":
        this.store.messages = data.messages || [];
        this.setState(data.state, { quiet: true });
        this.joined = true;
        clearTimeout(this.joinTimer);
        this.setMinimizeState("inAudioRoom");
        this.settleReady.resolve(this.controller);
        this.emit("room.onStateChanged", connectionState(data.state.connection));
        break;
      case "state":
        this.setState(data.state);
        break;
      case "media":
        this.store.setMedia(data.media);
        break;
      case "event": {
        const call = roomEventCall(data.event, this.store);
        if (call) {
          this.emit(...call);
          this.store.announceEvent(...call);
        }
        break;
      }
      case "message":
        this.store.applyMessageEvent(data.event);
        if (data.event.type === "message.onReceived") {
          this.emit("inRoomMessage.onReceived", data.event.message);
        }
        this.store.announceMessages();
        break;
      case "decide":
        this.decide(data.id, data.name, data.payload || {});
        break;
      case "error":
        this.emit("onError", data.error);
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
  }

  // The state comes before the events of its change: getters are true inside the callbacks.
  setState(next, options) {
    const changes = this.store.setState(next, options);
    this.paintBar();
    for (const change of changes) this.emit(...change);
  }

  async decide(id, name, payload) {
    const answer = await decision(this.events, name, payload);
    if (!this.destroyed && this.iframe) this.transport.post({ id, decision: answer });
  }

  // --- calls ----------------------------------------------------------------------------------

  // A controller call: the member of calls.js, asked of the iframe once joined (its time-out
  // runs from now; none for a call that waits for the user, like a file picker).
  async call(member, args) {
    if (this.destroyed) throw failure("destroyed", "This room was destroyed.");
    if (this.failed) throw this.failed;
    if (this.ended) throw failure("room_left", "This user is no longer in the room.");
    const untimed = Object.hasOwn(CALLS, member) && CALLS[member].untimed;
    const timeout = untimed ? null : this.options.callTimeout || CALL_TIMEOUT_MS;
    return this.transport.request(member, args, { timeout, after: this.ready });
  }

  // A message shows as "sending" at once, then "success" (the server's copy replaces it) or
  // "failed" (it stays, with a negative messageID, as the seed does).
  async sendMessage(text) {
    await this.ready;
    const store = this.store;
    const local = {
      messageID: -(store.localMessages.length + 1) - this.transport.nextID,
      user: store.user(store.userID), message: String(text), attributes: {},
      timestamp: Date.now(), state: "sending",
    };
    store.localMessages.push(local);
    store.announceMessages();
    try {
      await this.call("message.send", [text]);
      store.localMessages = store.localMessages.filter((m) => m !== local);
      store.announceMessages();
      return true;
    } catch (error) {
      local.state = "failed";
      store.announceMessages();
      throw error;
    }
  }

  // --- the end --------------------------------------------------------------------------------

  end(reason) {
    if (this.ended) return;
    this.ended = true;
    this.transport.rejectPending(failure("room_left", "This user is no longer in the room."));
    const isFromMinimizing = this.minimizeState === "minimizing";
    const defaultAction = () => this.hide();
    this.paintBar();
    if (this.events.onEnded) {
      this.emit("onEnded", reason, { reason, isFromMinimizing, defaultAction });
    } else if (isFromMinimizing) {
      defaultAction();
    }
  }

  async destroy() {
    if (this.destroyed) return;
    if (this.joined && !this.ended) {
      // Leave properly, so the seat frees now rather than after the grace period.
      await Promise.race([
        this.call("leave", [{ showConfirmation: false }]).catch(() => {}),
        new Promise((resolve) => setTimeout(resolve, LEAVE_ON_DESTROY_MS)),
      ]);
    }
    this.destroyed = true;
    const destroyed = failure("destroyed", "This room was destroyed.");
    this.fail(destroyed); // if it never joined
    clearTimeout(this.joinTimer);
    this.transport.close(destroyed);
    this.removeBar();
    if (this.iframe) this.iframe.remove();
    this.iframe = null;
    this.minimizeState = "idle";
  }

  // --- minimize -------------------------------------------------------------------------------

  setMinimizeState(state) {
    if (this.minimizeState === state) return;
    this.minimizeState = state;
    this.emit("minimize.onStateChanged", state);
  }

  minimize() {
    if (!this.joined || this.ended || this.destroyed || this.shrunk) return false;
    this.bar = new MinimizeBar({
      onMicrophone: () => {
        this.controller.audioVideo.microphone.switchState().catch((e) => console.warn(e));
      },
      onRestore: () => this.restore(),
      onLeave: () => {
        if (this.ended) this.hide();
        else this.controller.leave({ showConfirmation: true }).catch((e) => console.warn(e));
      },
      onMoved: () => {
        if (this.iframe && this.bar) this.bar.placeUnder(this.iframe);
      },
    });
    this.paintBar();
    // The iframe stays where it is in the DOM (moving it would reload the room) and stays
    // rendered: it shrinks under the bar, invisible, and its audio keeps playing.
    this.savedStyle = this.iframe.style.cssText;
    // The integrator's box for the room folds away too, or it stays on the page, empty. Not
    // display: none, which would take the iframe (and its audio) with it.
    this.savedContainerStyle = this.container.style.cssText;
    Object.assign(this.container.style, {
      height: "0px", minHeight: "0px", padding: "0px", border: "0", overflow: "hidden",
    });
    this.shrunk = true;
    this.bar.placeUnder(this.iframe);
    this.setMinimizeState("minimizing");
    return true;
  }

  restore() {
    if (!this.shrunk || this.ended || this.destroyed) return false;
    this.removeBar();
    this.unshrink();
    this.setMinimizeState("inAudioRoom");
    return true;
  }

  // The bar goes; a room still live keeps playing unseen (restore() brings it back), an
  // ended one shows its last screen again.
  hide() {
    this.removeBar();
    if (this.ended) this.unshrink();
    this.setMinimizeState("idle");
  }

  unshrink() {
    // cssText, not the style attribute: a page whose CSP forbids inline styles allows it.
    if (this.shrunk && this.iframe) this.iframe.style.cssText = this.savedStyle;
    if (this.shrunk) this.container.style.cssText = this.savedContainerStyle;
    this.shrunk = false;
  }

  removeBar() {
    if (this.bar) this.bar.remove();
    this.bar = null;
  }

  paintBar() {
    if (!this.bar) return;
    if (this.ended) {
      this.bar.paint({ ended: true });
      return;
    }
    const state = this.store.state || {};
    const me = this.store.me();
    this.bar.paint({
      speakingNames: (state.speaking || []).map((id) => this.store.user(id).name),
      title: (state.room && state.room.title) || "Live audio room",
      seated: Boolean(me) && me.seat_index !== null,
      micOn: Boolean(me && me.mic_on),
    });
  }
}
