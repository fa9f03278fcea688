// The embed SDK's entry: LiveAudioRoom.create(element, options) and the config presets.
// These modules are the source; scripts/bundle_sdk.py writes them into ../embed.js (a classic
// script, window.LiveAudioRoom) and ../embed.mjs (an ES module), committed, so nobody who
// uses the SDK runs a build (tests/test_sdk_bundle.py fails when those are out of date).

import { EmbeddedRoom } from "./session.js";

// The widget's ZegoUIKitPrebuiltLiveAudioRoomConfig.host() / .audience(): what sets each role
// apart; the server fills in every other default of the role (rooms.config.preset), so a
// config built on a preset need name only what it changes.
const config = {
  host: () => ({ role: "host", turnOnMicrophoneWhenJoining: true, seat: { takeIndexWhenJoining: 0 } }),
  audience: () => ({ role: "audience" }),
};

function create(container, options) {
  const session = new EmbeddedRoom(container, options || {});
  return {
    ready: session.ready,
    controller: session.controller,
    destroy: () => session.destroy(),
  };
}

export const LiveAudioRoom = { create, config, version: "1" };
export default LiveAudioRoom;
