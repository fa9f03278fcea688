// The minimized room: a floating bar in the integrator's page (who is speaking, the
// microphone, Restore, Leave), draggable, built with DOM calls only (textContent, never HTML
// strings). The iframe is never moved in the DOM (that would reload the room): it shrinks to
// one invisible pixel under the bar and keeps playing.

const BAR_STYLE = {
  position: "fixed", right: "16px", bottom: "16px", zIndex: "2147483647",
  display: "flex", alignItems: "center", gap: "8px", padding: "8px 12px",
  borderRadius: "999px", background: "#1b1e2e", color: "#fff", cursor: "grab",
  font: "14px system-ui, sans-serif", boxShadow: "0 4px 16px rgba(0,0,0,.3)",
  userSelect: "none", touchAction: "none", maxWidth: "90vw",
};

const BUTTON_STYLE = {
  font: "inherit", border: "0", borderRadius: "999px", padding: "4px 10px",
  background: "#2e3350", color: "#fff", cursor: "pointer",
};

function element(tag, className, style) {
  const node = document.createElement(tag);
  node.className = className;
  Object.assign(node.style, style || {});
  return node;
}

function button(className, style, onClick) {
  const node = element("button", className, style);
  node.type = "button";
  node.addEventListener("click", onClick);
  // A press on a button is not the start of a drag.
  node.addEventListener("pointerdown", (event) => event.stopPropagation());
  return node;
}

export class MinimizeBar {
  // onMicrophone / onRestore / onLeave: the buttons; onMoved: the bar was dragged.
  constructor({ onMicrophone, onRestore, onLeave, onMoved }) {
    this.onMoved = onMoved;
    const bar = element("div", "liveaudio-minimized", BAR_STYLE);
    bar.setAttribute("role", "region");
    bar.setAttribute("aria-label", "Live audio room (minimized)");
    this.speaking = element("span", "liveaudio-speaking", {
      overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap", maxWidth: "240px",
    });
    this.mic = button("liveaudio-mic", BUTTON_STYLE, onMicrophone);
    const restore = button("liveaudio-restore", BUTTON_STYLE, onRestore);
    restore.textContent = "Restore";
    this.leave = button("liveaudio-leave", { ...BUTTON_STYLE, background: "#b3261e" }, onLeave);
    this.leave.textContent = "Leave";
    bar.append(this.speaking, this.mic, restore, this.leave);
    this.makeDraggable(bar);
    this.node = bar;
    document.body.appendChild(bar);
  }

  remove() {
    this.node.remove();
  }

  // What the bar shows: {ended} or {speakingNames, title, seated, micOn}.
  paint({ ended, speakingNames = [], title, seated, micOn }) {
    if (ended) {
      this.speaking.textContent = "The room has ended";
      this.mic.hidden = true;
      this.leave.textContent = "Close";
      return;
    }
    this.speaking.textContent = speakingNames.length ? "🔊 " + speakingNames.join(", ") : title;
    this.mic.hidden = !seated;
    this.mic.textContent = micOn ? "Mute" : "Unmute";
    this.mic.setAttribute("aria-pressed", String(Boolean(micOn)));
  }

  // The iframe, shrunk under the bar: rendered (so its audio plays) but not seen.
  placeUnder(iframe) {
    const rect = this.node.getBoundingClientRect();
    Object.assign(iframe.style, {
      position: "fixed", left: rect.left + "px", top: rect.top + "px",
      width: "1px", height: "1px", opacity: "0", pointerEvents: "none", zIndex: "2147483646",
    });
  }

  makeDraggable(bar) {
    let start = null;
    bar.addEventListener("pointerdown", (event) => {
      const rect = bar.getBoundingClientRect();
      start = { x: event.clientX - rect.left, y: event.clientY - rect.top };
      bar.setPointerCapture(event.pointerId);
      bar.style.cursor = "grabbing";
    });
    bar.addEventListener("pointermove", (event) => {
      if (!start) return;
      const maxX = window.innerWidth - bar.offsetWidth;
      const maxY = window.innerHeight - bar.offsetHeight;
      Object.assign(bar.style, {
        left: Math.max(0, Math.min(maxX, event.clientX - start.x)) + "px",
        top: Math.max(0, Math.min(maxY, event.clientY - start.y)) + "px",
        right: "auto", bottom: "auto",
      });
    });
    const stop = () => {
      start = null;
      bar.style.cursor = "grab";
      this.onMoved();
    };
    bar.addEventListener("pointerup", stop);
    bar.addEventListener("pointercancel", stop);
  }
}
