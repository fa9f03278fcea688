// The embed SDK as an ES module: `import { LiveAudioRoom } from ".../embed.mjs"`.
// embed.js is the one implementation (it also works as a classic <script>); importing it here
// runs it once and it defines globalThis.LiveAudioRoom.
import "./embed.js";

export const LiveAudioRoom = globalThis.LiveAudioRoom;
export default LiveAudioRoom;
