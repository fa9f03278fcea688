// The controller (WEB-API.md §5, the seed's names): getters and notifiers read the store
// synchronously; every call in calls.js becomes a member that asks the iframe, so the list of
// calls is the one table the bridge answers from.

import { CALLS, STREAMS } from "./calls.js";
import { notifier, stream, unavailableStream } from "./state.js";

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

  const volumeNotifier = notifier(30);
  const currentProgressNotifier = notifier(0);
  const playStateNotifier = notifier("noPlay");
  const typeNotifier = notifier("unknown");
  const muteNotifier = notifier(false);

  const controller = {
    media: {
      get volume() { return volumeNotifier.value; },
      get totalDuration() { return 0; },
      get currentProgress() { return currentProgressNotifier.value; },
      get type() { return typeNotifier.value; },
      get info() { return { width: 0, height: 0, frameRate: 0 }; },
      volumeNotifier, currentProgressNotifier, playStateNotifier, typeNotifier, muteNotifier,
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
  for (const member of Object.keys(STREAMS)) place(controller, member, unavailableStream(member));
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
