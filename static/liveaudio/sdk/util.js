// Small helpers every module of the SDK uses (and bridge.js, inside the iframe).

// An Error with the `code` the docs promise (docs/embedding.md), and any extra fields.
export function failure(code, message, extra) {
  return Object.assign(new Error(message), { code }, extra || {});
}

// An integrator's callback that throws must not break the SDK.
export function safely(fn, ...args) {
  try {
    return fn(...args);
  } catch (error) {
    console.error("liveaudio: a callback failed", error);
    return undefined;
  }
}

// A room command's bytes on the wire: standard base64 (the socket is text).
export function bytesToBase64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function base64ToBytes(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export function emit(fn, ...args) {
  if (typeof fn === "function") safely(fn, ...args);
}

export function same(a, b) {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
