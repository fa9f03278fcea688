// The postMessage channel to the room's iframe: only that iframe's window, only at the
// server's origin, both ways. Calls are requests with an id and a time-out; pushes (the
// iframe speaking first) go to `onPush`. bridge.js is the other end.
//
//   page -> iframe   {liveaudio: 1, id, method, args}           a controller call
//                    {liveaudio: 1, id, decision}               the answer to a "decide" push
//   iframe -> page   {liveaudio: 1, id, ok, result | error}     a call's answer
//                    {liveaudio: 1, push: "...", ...}           everything else

import { failure } from "./util.js";

export class Transport {
  constructor({ onPush, onFirstMessage }) {
    this.origin = null;
    this.onPush = onPush;
    this.onFirstMessage = onFirstMessage;
    this.iframe = null;
    this.pending = new Map(); // request id -> {resolve, reject, timer}
    this.nextID = 0;
    this.onWindowMessage = this.onWindowMessage.bind(this);
  }

  open(iframe, origin) {
    this.iframe = iframe;
    this.origin = origin;
    window.addEventListener("message", this.onWindowMessage);
  }

  // No more messages either way; every call still waiting rejects with `error`.
  close(error) {
    window.removeEventListener("message", this.onWindowMessage);
    this.iframe = null;
    this.rejectPending(error);
  }

  rejectPending(error) {
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
      this.pending.delete(id);
    }
  }

  post(message) {
    this.iframe.contentWindow.postMessage({ liveaudio: 1, ...message }, this.origin);
  }

  // A request: its time-out (null: none) runs from now, it is posted once `after` resolves
  // (the room has joined), and it settles with the iframe's answer.
  request(method, args, { timeout, after }) {
    const id = "r" + ++this.nextID;
    return new Promise((resolve, reject) => {
      const timer = timeout === null ? null : setTimeout(() => {
        this.pending.delete(id);
        reject(failure("timeout", method + " got no answer within " + timeout + " ms."));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      after.then(() => {
        if (!this.iframe) return; // closed meanwhile: already rejected
        try {
          this.post({ id, method, args });
        } catch (error) { // a function or a DOM node in the arguments
          clearTimeout(timer);
          this.pending.delete(id);
          reject(failure("bad_arguments", method + ": " + error.message));
        }
      }, () => {});
    });
  }

  onWindowMessage(event) {
    if (!this.iframe || event.origin !== this.origin) return;
    if (event.source !== this.iframe.contentWindow) return;
    const data = event.data;
    if (!data || data.liveaudio !== 1) return;
    this.onFirstMessage();
    if (data.push) {
      this.onPush(data);
      return;
    }
    const waiter = this.pending.get(data.id);
    if (!waiter) return;
    this.pending.delete(data.id);
    clearTimeout(waiter.timer);
    if (data.ok) waiter.resolve(data.result);
    else waiter.reject(failure(data.error.code, data.error.message));
  }
}
