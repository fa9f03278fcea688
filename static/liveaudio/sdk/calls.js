// The controller's calls, in the one table both sides read: the SDK in the integrator's page
// (embed.js, which is built from these modules) makes a controller member of each entry, and
// the bridge in the iframe (bridge.js) answers each. The tables below are JSON (quoted keys,
// no comments, no trailing commas): tests/test_sdk_calls.py reads them and checks every
// socket action they name against the server's action registry (rooms/realtime/actions.py).
//
// member -> one of
//   "not_available"                        the server has no feature for it yet: the bridge
//                                          rejects it with code not_available
//   {"action": A, "args": [...], "options": {...}}
//                                          sent as socket action A: positional arguments
//                                          become the fields named in "args", then one
//                                          options object whose fields (with these defaults;
//                                          null: left out) are sent too. Resolves true.
//   {"action": A | [A, ...], "bridge": true}
//                                          bridge.js has its own handler (a confirmation
//                                          first, a fan-out, local state) using action(s) A
//   {"bridge": true}                       handled in the iframe alone, no socket action
//
// and "untimed": true on an entry that waits for the user (a file picker): the SDK's call
// time-out does not apply; it settles when the user is done or the room goes.
export const CALLS = {
  "leave": {"action": "room.leave", "bridge": true},
  "hideInMemberList": {"bridge": true},
  "message.send": {"action": "message.send", "bridge": true},
  "seat.muteLocally": {"action": "seat.muteLocallyByUserID", "bridge": true},
  "seat.muteLocallyByUserID": {"action": "seat.muteLocallyByUserID", "bridge": true},
  "seat.host.open": {"action": "seat.host.open", "options": {"targetIndex": -1}},
  "seat.host.close": {"action": "seat.host.close", "options": {"targetIndex": -1}},
  "seat.host.removeSpeaker": {"action": "seat.host.removeSpeaker", "bridge": true},
  "seat.host.acceptTakingRequest": {"action": "seat.host.acceptTakingRequest", "args": ["userID"]},
  "seat.host.rejectTakingRequest": {"action": "seat.host.rejectTakingRequest", "args": ["userID"]},
  "seat.host.inviteToTake": {"action": "seat.host.inviteToTake", "args": ["userID"]},
  "seat.host.mute": {"action": ["seat.host.mute", "seat.host.muteByUserID", "seat.host.muteAll"], "bridge": true},
  "seat.host.muteByUserID": {"action": "seat.host.muteByUserID", "args": ["userID"], "options": {"muted": true}},
  "seat.audience.take": {"action": "seat.audience.take", "args": ["index"]},
  "seat.audience.applyToTake": {"action": "seat.audience.applyToTake"},
  "seat.audience.cancelTakingRequest": {"action": "seat.audience.cancelTakingRequest"},
  "seat.audience.acceptTakingInvitation": {"action": "seat.audience.acceptTakingInvitation"},
  "seat.speaker.leave": {"action": "seat.speaker.leave", "bridge": true},
  "audioVideo.microphone.turnOn": {"action": "microphone.turnOn", "bridge": true},
  "audioVideo.microphone.switchState": {"action": "microphone.switchState", "options": {"userID": null}},
  "audioVideo.sendSEI": {"action": "audioVideo.sendSEI", "bridge": true},
  "media.play": {"action": "media.play", "bridge": true},
  "media.stop": {"action": "media.stop"},
  "media.destroy": {"action": "media.destroy"},
  "media.pause": {"action": "media.pause"},
  "media.resume": {"action": "media.resume"},
  "media.seekTo": {"action": "media.seekTo", "bridge": true},
  "media.setVolume": {"action": "media.setVolume", "args": ["volume"]},
  "media.muteLocal": {"action": "media.muteLocal", "args": ["mute"]},
  "media.pickPureAudioFile": {"bridge": true, "untimed": true},
  "media.pickVideoFile": {"bridge": true, "untimed": true},
  "media.pickFile": {"bridge": true, "untimed": true},
  "room.updateProperty": {"action": "room.updateProperty", "options": {"roomID": null, "key": null, "value": null, "isForce": false, "isDeleteAfterOwnerLeft": false, "isUpdateOwner": false}},
  "room.updateProperties": {"action": "room.updateProperties", "options": {"roomID": null, "roomProperties": null, "isForce": false, "isDeleteAfterOwnerLeft": false, "isUpdateOwner": false}},
  "room.deleteProperties": {"action": "room.deleteProperties", "options": {"roomID": null, "keys": null, "isForce": false}},
  "room.queryProperties": {"action": "room.queryProperties", "bridge": true},
  "room.sendCommand": {"action": "room.sendCommand", "bridge": true}
};

// The controller's streams (the seed's Stream<T>): member -> "not_available" (subscribing
// throws), or {"event": E}: each room event E, as its callback gets it (events.js), goes to
// every subscriber too.
export const STREAMS = {
  "audioVideo.seiStream": {"event": "audioVideo.onSEIReceived"},
  "room.propertiesStream": {"event": "room.onPropertiesUpdated"},
  "room.commandReceivedStream": {"event": "room.onCommandReceived"}
};

export const NOT_AVAILABLE = "not_available";

export function notAvailableMessage(member) {
  return member + " is not available on this server yet.";
}
