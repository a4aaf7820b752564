// Test doubles for hub-client.js: a fake WebSocket driven by the test, and a manual clock.

export class FakeClock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.nextId = 1;
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.timers.set(id, { fn, at: this.now + Math.max(0, ms) });
      return id;
    };
    this.clearTimeout = (id) => { this.timers.delete(id); };
    this.dateNow = () => this.now;
  }

  /** Move time forward by `ms`, running due timers in order (including ones they schedule). */
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const [id, t] of this.timers) if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
      if (!next) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
    }
    this.now = end;
  }

  pending() { return this.timers.size; }
}

/** A WebSocket stand-in. Every instance is recorded on the class in `FakeWebSocket.instances`. */
export function makeFakeWebSocket() {
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      FakeWebSocket.instances.push(this);
    }

    send(text) {
      if (this.readyState !== 1) throw new Error("not open");
      this.sent.push(JSON.parse(text));
    }

    close(code, reason) {
      this.closedWith = { code, reason };
      this.readyState = 2;
    }

    // --- driven by the test ---
    serverOpen() {
      this.readyState = 1;
      this.onopen?.({});
    }

    serverSend(frame) {
      this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
    }

    serverClose(code = 1006, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean: code !== 1006 });
    }

    /** Open and say `connected`, as the hub does once the socket is accepted. */
    accept(extra = {}) {
      this.serverOpen();
      this.serverSend({ type: "connected", client_id: "c_1", user: "alice", server: "hub-1",
        heartbeat_interval: 30, timestamp: "2026-11-22T10:00:00.000Z", ...extra });
    }

    sentOfType(type) { return this.sent.filter((f) => f.type === type); }
  }
  FakeWebSocket.instances = [];
  FakeWebSocket.last = () => FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
  return FakeWebSocket;
}
