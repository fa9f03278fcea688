// The integrator's callbacks (docs/embedding.md, Events): which callback a room event calls
// and with what, and which callback decides each question the room asks.

import { base64ToBytes } from "./util.js";

// The callback at a dotted path of `events` ("seat.host.onTakingRequested"), or undefined.
export function callbackAt(events, path) {
  let node = events;
  for (const key of path.split(".")) node = node && node[key];
  return node;
}

// A room event the iframe pushed -> [callback path, ...arguments], or null.
export function roomEventCall(event, store) {
  const user = (userID) => store.user(userID);
  switch (event.type ?? event.name) {
    case "seat.onChanged": {
      const taken = {};
      for (const [index, userID] of Object.entries(event.taken || {})) taken[index] = user(userID);
      return ["seat.onChanged", taken, Object.keys(event.untaken || {}).map(Number)];
    }
    case "seat.onClosed":
    case "seat.onOpened":
      return [event.type, event.indexes];
    case "seat.host.onTakingRequested":
      return [event.type, event.user];
    case "seat.host.onTakingRequestCanceled":
    case "seat.host.onTakingInvitationFailed":
      return [event.type, user(event.userID), { reason: event.reason }];
    case "seat.host.onTakingInvitationRejected":
      return [event.type, user(event.userID)];
    case "seat.audience.onTakingRequestRejected":
      return [event.type];
    case "seat.audience.onTakingRequestFailed":
      return [event.type, { reason: event.reason }];
    case "audioVideo.microphone.onStateChanged":
      return ["audioVideo.onMicrophoneStateChanged", user(event.userID), event.isOn,
              { byHost: Boolean(event.byHost) }];
    case "media.onPlayStateChanged":
      return ["media.onPlayStateChanged", event.state];
    case "media.onError": // a file that failed to decode mid-way (it ends with playEnded)
      return ["onError", { code: event.code, message: event.message }];
    case "room.onPropertiesUpdated": // the seed's ZegoSignalingPluginRoomPropertiesUpdatedEvent
      return [event.type, {
        roomID: event.roomID,
        setProperties: event.setProperties || {},
        deleteProperties: event.deleteProperties || {},
      }];
    case "audioVideo.sei": // the seed's ZegoUIKitReceiveSEIEvent, as this page hears its audio
      return ["audioVideo.onSEIReceived", {
        typeIdentifier: event.typeIdentifier,
        senderID: event.senderID,
        sei: event.sei,
        streamID: event.streamID,
        streamType: event.streamType,
      }];
    case "room.commands": // the seed's ZegoSignalingPluginRoomCommandReceivedEvent, by orderKey
      return ["room.onCommandReceived", {
        roomID: event.roomID,
        messages: (event.messages || []).map((m) => ({
          message: base64ToBytes(m.message),
          senderUserID: m.senderUserID,
          timestamp: m.timestamp,
          orderKey: m.orderKey,
        })),
      }];
    default:
      return null;
  }
}

// A question the room asks ("decide" push) -> the integrator's callback that answers it.
const DECIDERS = {
  leave: (events) => events.onLeaveConfirmation && ((p) => events.onLeaveConfirmation(p)),
  microphoneTurnOn: (events) => {
    const fn = callbackAt(events, "audioVideo.onMicrophoneTurnOnByOthersConfirmation");
    return fn && ((p) => fn(p.fromUser));
  },
  takingInvitation: (events) => {
    const fn = callbackAt(events, "seat.audience.onTakingInvitationReceived");
    return fn && ((p) => fn(p.inviter));
  },
};

// The callback's decision: true / false, or null (none, or no boolean: the widget asks).
export async function decision(events, name, payload) {
  const pick = Object.hasOwn(DECIDERS, name) ? DECIDERS[name] : null;
  const callback = pick && pick(events);
  if (!callback) return null;
  try {
    const answer = await callback(payload);
    return typeof answer === "boolean" ? answer : null;
  } catch (error) {
    console.error("liveaudio: a deciding callback failed", error);
    return null;
  }
}
