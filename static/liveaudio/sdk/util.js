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

export function emit(fn, ...args) {
  if (typeof fn === "function") safely(fn, ...args);
}

export function same(a, b) {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
