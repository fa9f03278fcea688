// What the SDK knows of the room: the state the iframe last pushed, the chat list, and the
// notifiers that follow them. Getters read it synchronously; the events it gives back say
// what changed between two states (the session calls the integrator's callbacks with them).

import { failure, safely, same } from "./util.js";
import { notAvailableMessage } from "./calls.js";

// --- notifiers and streams (the seed's ValueNotifier<T> and Stream<T>) ----------------------

export function notifier(initial) {
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
export function stream(listeners, current) {
  const subscribe = (fn) => {
    listeners.add(fn);
    if (current) safely(fn, current());
    return () => listeners.delete(fn);
  };
  return (fn) => (typeof fn === "function" ? subscribe(fn) : { subscribe });
}

export function unavailableStream(member) {
  const subscribe = () => {
    throw failure("not_available", notAvailableMessage(member));
  };
  return (fn) => (typeof fn === "function" ? subscribe(fn) : { subscribe });
}

// --- the store ------------------------------------------------------------------------------

export class RoomStore {
  constructor() {
    this.state = null; // {userID, room, localMutes, hiddenMembers, connection, speaking, media}
    this.messages = []; // the server's
    this.localMessages = []; // this user's, still sending or failed
    this.messageListeners = new Set();
    this.eventListeners = new Map(); // room event -> its stream's subscribers (calls.js STREAMS)
    this.notifiers = new Map();
    this.names = new Map(); // userID -> name, kept after they leave (events name the leaver)
  }

  // The new state; returns the events its changes make, as [eventPath, ...args].
  setState(next, { quiet = false } = {}) {
    const before = this.state;
    this.state = next;
    for (const m of membersIn(next)) this.names.set(m.user_id, m.user_name);
    this.recompute();
    if (quiet || !before) return [];
    return this.changes(before, next);
  }

  changes(before, next) {
    const events = [];
    const was = onlineUsers(before);
    const now = onlineUsers(next);
    for (const user of now.values()) if (!was.has(user.id)) events.push(["user.onEnter", user]);
    for (const user of was.values()) if (!now.has(user.id)) events.push(["user.onLeave", user]);
    const roleBefore = new Map(membersIn(before).map((m) => [m.user_id, m.role]));
    for (const m of membersIn(next)) {
      const role = roleBefore.get(m.user_id);
      if (role && role !== m.role) events.push(["user.onRoleChanged", this.user(m.user_id), m.role]);
    }
    if (!same(before.room && before.room.members, next.room && next.room.members)) {
      events.push(["user.onCountOrPropertyChanged", users(next)]);
    }
    if (before.connection !== next.connection) {
      events.push(["room.onStateChanged", connectionState(next.connection)]);
    }
    return events;
  }

  get userID() {
    return this.state ? this.state.userID : null;
  }

  user(userID) {
    return { id: userID, name: this.names.get(userID) || userID };
  }

  member(userID) {
    return membersIn(this.state).find((m) => m.user_id === userID) || null;
  }

  me() {
    return this.state ? this.member(this.state.userID) : null;
  }

  seats() {
    const rows = (this.state && this.state.room && this.state.room.rows) || [];
    return rows.flat();
  }

  seatAt(index) {
    return this.seats().find((s) => s.index === index) || null;
  }

  // The media player's progress and this user's mute, pushed between states.
  setMedia(media) {
    if (!this.state) return;
    this.state = { ...this.state, media };
    this.recompute();
  }

  recompute() {
    for (const entry of this.notifiers.values()) entry.notifier._set(entry.compute());
  }

  // A notifier per key, created on first use, recomputed on every new state.
  keyedNotifier(key, compute) {
    let entry = this.notifiers.get(key);
    if (!entry) {
      entry = { notifier: notifier(compute()), compute };
      this.notifiers.set(key, entry);
    }
    return entry.notifier;
  }

  // --- streams of room events ---

  listenersOf(event) {
    if (!this.eventListeners.has(event)) this.eventListeners.set(event, new Set());
    return this.eventListeners.get(event);
  }

  // A room event's payload to its stream's subscribers, after its callback.
  announceEvent(event, payload) {
    for (const fn of [...(this.eventListeners.get(event) || [])]) safely(fn, payload);
  }

  // --- chat ---

  messageList() {
    return this.messages.concat(this.localMessages);
  }

  applyMessageEvent(frame) {
    if (frame.type === "message.onReceived") {
      this.messages.push(frame.message);
    } else if (frame.type === "message.onDeleted") {
      this.messages = this.messages.filter((m) => m.messageID !== frame.messageID);
    }
  }

  announceMessages() {
    const list = this.messageList();
    for (const fn of [...this.messageListeners]) safely(fn, list);
  }
}

function membersIn(state) {
  return (state && state.room && state.room.members) || [];
}

function onlineUsers(state) {
  const online = new Map();
  for (const m of membersIn(state)) {
    if (m.online) online.set(m.user_id, { id: m.user_id, name: m.user_name });
  }
  return online;
}

function users(state) {
  return membersIn(state).map((m) => ({
    id: m.user_id, name: m.user_name, role: m.role, online: m.online,
    microphoneOn: m.mic_on, seatIndex: m.seat_index === null ? -1 : m.seat_index,
  }));
}

export function connectionState(connection) {
  return { live: "connected", closed: "disconnected" }[connection] || connection;
}
