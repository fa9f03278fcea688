// The controller (WEB-API.md §5, the seed's names): getters and notifiers read the store
// synchronously; every call in calls.js becomes a member that asks the iframe, so the list of
// calls is the one table the bridge answers from.

import { CALLS, NOT_AVAILABLE, STREAMS } from "./calls.js";
import { stream, unavailableStream } from "./state.js";

// What the getters answer before the room has a player state: the seed's defaults.
const NO_MEDIA = {
  state: "noPlay", type: "unknown", volume: 30, totalDuration: 0, position: 0, mute: false,
  info: { width: 0, height: 0, frameRate: 0 },
};

// The minimize calls act at once and return their result at once, and like every other call
// they can be awaited or chained: a Promise of the result that also carries it as `.value`.
export function settledWith(value) {
  return Object.assign(Promise.resolve(value), { value });
}

export function makeController(session) {
  const store = session.store;
  const role = () => (store.me() ? store.me().role : null);
  const userMap = () => {
    const map = {};
    for (const seat of store.seats()) if (seat.user_id) map[String(seat.index)] = seat.user_id;
    return map;
  };
  const micOf = (userID) => Boolean(store.member(userID) && store.member(userID).mic_on);
  const localMutes = () => (store.state && store.state.localMutes) || [];

  // The media player: the server's state of it, with the progress and this user's mute
  // that the iframe pushes between states (bridge.js, player.js).
  const player = () => (store.state && store.state.media) || NO_MEDIA;
  const mediaNotifier = (key, read) => store.keyedNotifier("media:" + key, () => read(player()));

  const controller = {
    media: {
      get volume() { return player().volume; },
      get totalDuration() { return player().totalDuration; },
      get currentProgress() { return player().position; },
      get type() { return player().type; },
      get info() { return { ...NO_MEDIA.info, ...player().info }; },
      get volumeNotifier() { return mediaNotifier("volume", (m) => m.volume); },
      get currentProgressNotifier() { return mediaNotifier("progress", (m) => m.position); },
      get playStateNotifier() { return mediaNotifier("state", (m) => m.state); },
      get typeNotifier() { return mediaNotifier("type", (m) => m.type); },
      get muteNotifier() { return mediaNotifier("mute", (m) => Boolean(m.mute)); },
    },

    message: {
      send: (text) => session.sendMessage(text), // shows as "sending" in list() at once
      list: () => store.messageList(),
      stream: stream(store.messageListeners, () => store.messageList()),
    },

    minimize: {
      get state() { return session.minimizeState; },
      get isMinimizing() { return session.minimizeState === "minimizing"; },
      minimize: () => settledWith(session.minimize()),
      restore: () => settledWith(session.restore()),
      hide: () => settledWith(session.hide()),
    },

    seat: {
      get userMapNotifier() { return store.keyedNotifier("userMap", userMap); },
      get localIsHost() { return role() === "host"; },
      get localIsAudience() { return role() === "audience"; },
      get localIsSpeaker() { return role() === "speaker"; },
      get localIsCoHost() { return role() === "cohost"; },
      // The server's rule, computed into the state it sends (rooms.roles): read, not re-derived.
      get localHasHostPermissions() {
        return Boolean(store.me() && store.me().has_host_permissions);
      },
      getUserByIndex(i) {
        const seat = store.seatAt(i);
        return seat && seat.user_id ? { id: seat.user_id, name: seat.user_name } : null;
      },
      getEmptySeats({ includeHostSeats = false } = {}) {
        return store.seats()
          .filter((s) => !s.user_id && (includeHostSeats || !s.is_host_seat))
          .map((s) => s.index);
      },
      getSeatIndexByUserID(userID) {
        const m = store.member(userID);
        return m && m.seat_index !== null ? m.seat_index : -1;
      },
      muteStateNotifier(i, { isLocally = false } = {}) {
        return store.keyedNotifier("mute:" + i + ":" + isLocally, () => {
          const seat = store.seatAt(i);
          if (!seat || !seat.user_id) return isLocally ? false : true;
          return isLocally ? localMutes().includes(seat.user_id) : !seat.mic_on;
        });
      },
    },

    audioVideo: {
      microphone: {
        get localState() { return micOf(store.userID); },
        get localStateNotifier() {
          return store.keyedNotifier("mic:local", () => micOf(store.userID));
        },
        state: (userID) => micOf(userID),
        stateNotifier: (userID) => store.keyedNotifier("mic:" + userID, () => micOf(userID)),
      },
    },

    room: {},

    // Not the seed's: for pages that want the raw state the iframe pushed.
    get roomState() { return store.state ? store.state.room : null; },
    get config() { return session.config; },
  };

  for (const member of Object.keys(CALLS)) {
    place(controller, member, (...args) => session.call(member, args));
  }
  for (const [member, entry] of Object.entries(STREAMS)) {
    const made = entry === NOT_AVAILABLE
      ? unavailableStream(member)
      : stream(store.listenersOf(entry.event));
    place(controller, member, made);
  }
  return controller;
}

// controller["seat"]["host"]["open"] = fn, for "seat.host.open"; a member written above by
// hand (message.send) stays as it is.
function place(controller, member, fn) {
  const path = member.split(".");
  const name = path.pop();
  let group = controller;
  for (const key of path) group = group[key] || (group[key] = {});
  if (!Object.hasOwn(group, name)) group[name] = fn;
}
