/**
 * hub-client.js: the hub's JavaScript client (PROTOCOL.md v1). One ES module, no build step.
 *
 *   import { connect } from "/static/hub/hub-client.js";
 *   const hub = connect("/ws/");                      // or connect() / "ws://host:8000/"
 *   hub.on("state", ({ state }) => ...);              // connecting|open|connected|reconnecting|closed
 *   hub.on("reset", ({ channel }) => reloadFromRest(channel));   // history lost: reload state
 *   const off = hub.subscribe("jobs", (msg) => ...);  // msg = {type, channel, offset, timestamp, data}
 *   hub.unsubscribe("jobs", callback?);  hub.send({type: "ping"});  hub.close();
 *
 * Contract:
 * - Reconnects after any close but a deliberate close() or an auth failure (4001), waiting
 *   random(minDelay, ceiling) ms ("full jitter" above a small floor), where the ceiling
 *   doubles per failed attempt from baseDelay up to maxDelay but never exceeds how long the
 *   connection has been down (at least baseDelay): the first retry comes after 250-1000 ms,
 *   and a hub back after a 2 s restart is reached within about 2 s more, however many
 *   quick failures came first (attempts alone climb fast when refusals take milliseconds:
 *   a 28 s wait after a 2 s restart was seen). The attempt count resets once the server
 *   says `connected`; reconnectNow() skips the wait.
 * - Tracks per channel the last offset and epoch; after a reconnect it subscribes with
 *   `since` and emits "reset" when the history could not fill the gap (`recovered: false`,
 *   a changed epoch, or no known position). Publications at or below the known offset are
 *   dropped, so a callback never sees one twice. A reset forgets the offset: the history
 *   restarts (a new epoch counts from 1 again), so the next publication is the new position.
 * - Answers server `heartbeat` with `pong`; a socket silent for 2.5 heartbeat intervals is
 *   considered dead and replaced.
 * - Frames sent before the server's `connected` are queued (bounded) and flushed after it.
 * Everything environment-specific (WebSocket, timers, random, location) can be injected,
 * which is how tests/js drives it with a fake socket and fake clock.
 */

const CONTROL_TYPES = new Set([
  "connected", "pong", "subscribed", "unsubscribed", "published", "recovered", "heartbeat", "error",
]);
const CLOSE_AUTH_FAILED = 4001;
const CLOSE_CLIENT_GONE = 4000; // our own code when we drop a silent socket
const MAX_CHANNELS_PER_FRAME = 100;

export const DEFAULTS = Object.freeze({
  minDelay: 250, // ms: every reconnect waits at least this (no tight loop against a dead server)
  baseDelay: 1000, // ms: the first reconnect waits up to this; doubles per failed attempt
  maxDelay: 30000, // ms: cap of the exponential backoff
  token: null, // string or () => string: sent as a first `auth` frame
  reconnect: true,
  reconnectOnAuthFailure: false,
  heartbeatGrace: 2.5, // heartbeat intervals of silence before the socket is declared dead
  maxQueue: 1000, // frames queued while not connected
  requestTimeout: 10000, // ms, for request()
});

/**
 * Full-jitter backoff above a floor: a random delay in [minDelay, ceiling), ceiling =
 * min(maxDelay, baseDelay * 2^attempt, max(baseDelay, downFor)). `downFor`: ms the
 * connection has been down. Attempt 0 waits 250-1000 ms by default.
 */
export function backoffDelay(attempt, { minDelay = DEFAULTS.minDelay, baseDelay = DEFAULTS.baseDelay,
  maxDelay = DEFAULTS.maxDelay, downFor = Infinity, random = Math.random } = {}) {
  const floor = Math.max(0, Math.min(minDelay, maxDelay));
  const grown = Math.min(maxDelay, baseDelay * 2 ** Math.min(attempt, 30), Math.max(baseDelay, downFor));
  const ceiling = Math.max(floor, grown);
  return floor + Math.floor(random() * (ceiling - floor));
}

/**
 * The WebSocket URL for `url`: absolute ws(s) URLs pass through, http(s) become ws(s), and a
 * path (or nothing: "/ws/") is resolved against the page's location.
 */
export function resolveUrl(url, location = globalThis.location) {
  const target = url == null || url === "" ? "/ws/" : String(url);
  if (/^wss?:\/\//i.test(target)) return target;
  if (/^https?:\/\//i.test(target)) return target.replace(/^http/i, "ws");
  if (!location) throw new Error(`hub-client: cannot resolve ${target} without a location`);
  const resolved = new URL(target, location.href);
  resolved.protocol = resolved.protocol === "https:" ? "wss:" : "ws:";
  return resolved.toString();
}

/** A tiny event emitter: on() returns its own off(). Listener errors never break the client. */
class Emitter {
  constructor() { this._listeners = new Map(); }

  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  once(type, fn) {
    const off = this.on(type, (payload) => { off(); fn(payload); });
    return off;
  }

  off(type, fn) {
    const set = this._listeners.get(type);
    if (!set) return;
    if (fn) set.delete(fn); else set.clear();
  }

  emit(type, payload) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) safeCall(fn, payload, type);
  }
}

function safeCall(fn, payload, what) {
  try {
    fn(payload);
  } catch (err) {
    // A page bug in one listener must not stop the others or the socket loop.
    if (globalThis.console) console.error(`hub-client: ${what} listener failed`, err);
  }
}

/**
 * Per-channel position and callbacks.
 * offset/epoch: the last position seen (null until the first `subscribed`).
 * lost: a connection dropped while we had no position, so the first `subscribed` must reset.
 */
class ChannelState {
  constructor(name) {
    this.name = name;
    this.callbacks = new Set();
    this.offset = null;
    this.epoch = null;
    this.subscribed = false;
    this.lost = false;
    this.resumed = false; // offset given by subscribe({since}): keep it through the first `subscribed`
    this.resetSent = false; // one "reset" per subscription, even if two signs say so
  }
}

export class HubClient extends Emitter {
  constructor(options = {}) {
    super();
    this.options = { ...DEFAULTS, ...options };
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    this._setTimeout = options.setTimeout || globalThis.setTimeout.bind(globalThis);
    this._clearTimeout = options.clearTimeout || globalThis.clearTimeout.bind(globalThis);
    this._random = options.random || Math.random;
    this._now = options.now || Date.now;
    this._location = options.location || globalThis.location;
    this.url = null;
    this.state = "idle";
    this.attempt = 0;
    this.clientId = null;
    this.user = null;
    this.server = null;
    this.heartbeatInterval = null;
    this.connectedCount = 0;
    this._channels = new Map();
    this._queue = [];
    this._pending = new Map();
    this._nextId = 1;
    this._ws = null;
    this._retryTimer = null;
    this._watchdog = null;
    this._closedByUser = false;
    this._browserHooks = null;
    this._downSince = null; // when the connection was lost (null while connected)
  }

  // --- connection ------------------------------------------------------------------

  /** Open the connection (idempotent). `url`: "/ws/", "ws://host:port/", "https://host/ws/"... */
  connect(url) {
    if (url !== undefined || this.url === null) this.url = resolveUrl(url, this._location);
    this._closedByUser = false;
    this._installBrowserHooks();
    if (this._ws) return this;
    this._cancelRetry();
    this._open();
    return this;
  }

  /** Close for good: no reconnect until connect() is called again. */
  close(code = 1000, reason = "client closed") {
    this._closedByUser = true;
    this._downSince = null;
    this._cancelRetry();
    this._stopWatchdog();
    this._removeBrowserHooks();
    const ws = this._ws;
    this._detach();
    if (ws) {
      try { ws.close(code, reason); } catch (_) { /* already closing */ }
    }
    this._markChannelsDown();
    this._failPending(new Error("connection closed"));
    this._setState("closed", { code, reason, willReconnect: false });
    return this;
  }

  disconnect() { return this.close(); }

  /** Skip the backoff wait (e.g. the browser came back online, or a "reconnect now" button). */
  reconnectNow() {
    if (this._closedByUser || this._ws) return;
    this._cancelRetry();
    this._open();
  }

  get connected() { return this.state === "connected"; }

  _open() {
    if (!this._WebSocket) throw new Error("hub-client: no WebSocket implementation");
    this._setState("connecting", { attempt: this.attempt, url: this.url });
    let ws;
    try {
      ws = new this._WebSocket(this.url);
    } catch (err) {
      this.emit("error", { code: "connect_failed", message: String(err && err.message || err) });
      this._scheduleReconnect({ code: 1006, reason: "connect failed" });
      return;
    }
    this._ws = ws;
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (event) => this._onMessage(ws, event);
    ws.onclose = (event) => this._onClose(ws, event);
    ws.onerror = () => { /* a close event always follows */ };
  }

  _detach() {
    const ws = this._ws;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this._ws = null;
  }

  _onOpen(ws) {
    if (ws !== this._ws) return;
    this._setState("open", {});
    const token = typeof this.options.token === "function" ? this.options.token() : this.options.token;
    if (token) this._rawSend({ type: "auth", token });
    // Until `connected`, only the watchdog of a default interval guards a hung handshake.
    this._armWatchdog(30);
  }

  _onClose(ws, event) {
    if (ws !== this._ws) return;
    this._detach();
    this._stopWatchdog();
    this._markChannelsDown();
    this._failPending(new Error("connection closed"));
    this.heartbeatInterval = null;
    const code = event && event.code !== undefined ? event.code : 1006;
    const reason = (event && event.reason) || "";
    if (code === CLOSE_AUTH_FAILED) {
      this.emit("auth_failed", { code, reason });
      if (!this.options.reconnectOnAuthFailure) {
        this._setState("closed", { code, reason, willReconnect: false });
        return;
      }
    }
    this._scheduleReconnect({ code, reason });
  }

  _scheduleReconnect({ code, reason }) {
    if (this._closedByUser || !this.options.reconnect) {
      this._setState("closed", { code, reason, willReconnect: false });
      return;
    }
    if (this._downSince === null) this._downSince = this._now();
    const delay = backoffDelay(this.attempt, {
      minDelay: this.options.minDelay, baseDelay: this.options.baseDelay, maxDelay: this.options.maxDelay,
      downFor: this._now() - this._downSince, random: this._random,
    });
    this.attempt += 1;
    this._setState("reconnecting", { code, reason, willReconnect: true, delay, attempt: this.attempt });
    this._retryTimer = this._setTimeout(() => {
      this._retryTimer = null;
      if (!this._closedByUser && !this._ws) this._open();
    }, delay);
  }

  _cancelRetry() {
    if (this._retryTimer !== null) this._clearTimeout(this._retryTimer);
    this._retryTimer = null;
  }

  /** Drop a socket that has gone silent and start over (the close event may never come). */
  _dropDeadSocket() {
    const ws = this._ws;
    if (!ws) return;
    this._detach();
    try { ws.close(CLOSE_CLIENT_GONE, "no heartbeat"); } catch (_) { /* ignore */ }
    this._markChannelsDown();
    this._failPending(new Error("connection lost"));
    this._scheduleReconnect({ code: CLOSE_CLIENT_GONE, reason: "no heartbeat" });
  }

  /** Declare the socket dead after `heartbeatGrace` intervals with no frame at all. */
  _armWatchdog(intervalSeconds) {
    this._stopWatchdog();
    this._silenceLimit = Math.max(1000, intervalSeconds * 1000 * this.options.heartbeatGrace);
    this._lastSeen = this._now();
    const check = () => {
      const quiet = this._now() - this._lastSeen;
      if (quiet >= this._silenceLimit) {
        this._watchdog = null;
        this._dropDeadSocket();
      } else {
        this._watchdog = this._setTimeout(check, this._silenceLimit - quiet);
      }
    };
    this._watchdog = this._setTimeout(check, this._silenceLimit);
  }

  _stopWatchdog() {
    if (this._watchdog !== null) this._clearTimeout(this._watchdog);
    this._watchdog = null;
  }

  _setState(state, detail) {
    const previous = this.state;
    this.state = state;
    const payload = { state, previous, ...detail };
    this.emit("state", payload);
    this.emit(state, payload);
  }

  // --- sending ---------------------------------------------------------------------

  /** Send one frame (an object). Queued until `connected`; returns false if dropped. */
  send(frame) {
    if (frame === null || typeof frame !== "object") throw new TypeError("send() takes an object");
    if (this.state === "connected") return this._rawSend(frame);
    if (this._queue.length >= this.options.maxQueue) return false;
    this._queue.push(frame);
    return true;
  }

  /** Send a frame with an `id`; resolves with the reply echoing it (rejects on `error`). */
  request(frame, { timeout = this.options.requestTimeout } = {}) {
    const id = frame.id !== undefined ? frame.id : `r${this._nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = this._setTimeout(() => {
        this._pending.delete(id);
        reject(new Error(`no reply to ${frame.type} within ${timeout} ms`));
      }, timeout);
      this._pending.set(id, { resolve, reject, timer });
      if (!this.send({ ...frame, id })) {
        this._clearTimeout(timer);
        this._pending.delete(id);
        reject(new Error("send queue full"));
      }
    });
  }

  ping() { return this.request({ type: "ping" }); }

  publish(channel, data, event) {
    const frame = { type: "publish", channel, data };
    if (event) frame.event = event;
    return this.request(frame);
  }

  _rawSend(frame) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch (_) {
      return false;
    }
  }

  _failPending(err) {
    for (const [id, entry] of this._pending) {
      this._clearTimeout(entry.timer);
      entry.reject(err);
      this._pending.delete(id);
    }
  }

  // --- subscriptions ---------------------------------------------------------------

  /**
   * Call `callback(msg)` for each publication on `channel`; returns a function that undoes it.
   * `options.since`: where to resume a new subscription, e.g. a REST snapshot's `position`
   * (docs/protocol.md section 6): either `position[channel]` itself (`{offset, epoch}`) or the
   * offset as a number with `options.epoch`. Every publication after it arrives once and none
   * before it; a changed epoch or `recovered: false` emits "reset". Only for a new subscription.
   */
  subscribe(channel, callback, options = {}) {
    if (typeof channel !== "string" || !channel) throw new TypeError("channel must be a string");
    let entry = this._channels.get(channel);
    const isNew = !entry;
    if (isNew) {
      entry = new ChannelState(channel);
      const given = options ? options.since : null;
      const since = given && typeof given === "object" ? given.offset : given;
      const epoch = given && typeof given === "object" ? given.epoch : options && options.epoch;
      if (Number.isInteger(since) && since >= 0) {
        entry.offset = since;
        entry.epoch = typeof epoch === "string" && epoch ? epoch : null;
        entry.resumed = true;
      }
      this._channels.set(channel, entry);
    }
    if (callback) entry.callbacks.add(callback);
    if (isNew && this.state === "connected") this._sendSubscribe([entry]);
    return () => this.unsubscribe(channel, callback);
  }

  /** Remove one callback, or all of them; the server subscription goes with the last one. */
  unsubscribe(channel, callback) {
    const entry = this._channels.get(channel);
    if (!entry) return;
    if (callback) entry.callbacks.delete(callback); else entry.callbacks.clear();
    if (entry.callbacks.size > 0) return;
    this._channels.delete(channel);
    if (this.state === "connected") this._rawSend({ type: "unsubscribe", channel });
  }

  /** Channel names with their last known position, e.g. for a status panel. */
  channels() {
    return [...this._channels.values()].map(({ name, offset, epoch, subscribed }) =>
      ({ name, offset, epoch, subscribed }));
  }

  _sendSubscribe(entries) {
    for (let i = 0; i < entries.length; i += MAX_CHANNELS_PER_FRAME) {
      const chunk = entries.slice(i, i + MAX_CHANNELS_PER_FRAME);
      const since = {};
      for (const entry of chunk) if (entry.offset !== null) since[entry.name] = entry.offset;
      const frame = { type: "subscribe", channels: chunk.map((e) => e.name) };
      if (Object.keys(since).length) frame.since = since;
      this._rawSend(frame);
    }
  }

  _markChannelsDown() {
    for (const entry of this._channels.values()) {
      // No position (never subscribed, or reset since and nothing arrived): the next
      // subscription cannot ask for what is missed, so it must reset.
      if (entry.offset === null) entry.lost = entry.lost || this.connectedCount > 0 || entry.subscribed;
      entry.subscribed = false;
    }
  }

  // --- receiving -------------------------------------------------------------------

  _onMessage(ws, event) {
    if (ws !== this._ws) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (_) {
      return; // the server only sends JSON; ignore anything else
    }
    if (!frame || typeof frame !== "object") return;
    this._lastSeen = this._now();
    this.emit("message", frame);
    this._settlePending(frame);
    switch (frame.type) {
      case "connected": return this._onConnected(frame);
      case "heartbeat": this._rawSend({ type: "pong" }); return this.emit("heartbeat", frame);
      case "subscribed": return this._onSubscribed(frame);
      case "unsubscribed": return this.emit("unsubscribed", frame);
      case "recovered": return this._onRecovered(frame);
      case "error": return this.emit("error", frame);
      case "pong": case "published": return undefined;
      default: return this._onPublication(frame);
    }
  }

  _settlePending(frame) {
    if (frame.id === undefined || !this._pending.has(frame.id)) return;
    const entry = this._pending.get(frame.id);
    this._pending.delete(frame.id);
    this._clearTimeout(entry.timer);
    if (frame.type === "error") {
      const err = new Error(frame.message || frame.code);
      err.code = frame.code;
      err.frame = frame;
      entry.reject(err);
    } else {
      entry.resolve(frame);
    }
  }

  _onConnected(frame) {
    if (this.state === "connected") return; // a repeated hello on the same socket changes nothing
    this.attempt = 0;
    this._downSince = null;
    this.connectedCount += 1;
    this.clientId = frame.client_id ?? null;
    this.user = frame.user ?? null;
    this.server = frame.server ?? null;
    this.heartbeatInterval = Number(frame.heartbeat_interval) > 0 ? Number(frame.heartbeat_interval) : 30;
    this._armWatchdog(this.heartbeatInterval);
    this._setState("connected", { ...frame, reconnected: this.connectedCount > 1 });
    if (this._channels.size) this._sendSubscribe([...this._channels.values()]);
    const queued = this._queue.splice(0);
    for (const queuedFrame of queued) this._rawSend(queuedFrame);
  }

  _onSubscribed(frame) {
    const entry = this._channels.get(frame.channel);
    if (!entry) return;
    const hadPosition = entry.epoch !== null || entry.resumed;
    entry.resumed = false;
    const epochChanged = hadPosition && entry.epoch !== null && frame.epoch !== undefined && frame.epoch !== entry.epoch;
    const lost = entry.lost;
    entry.subscribed = true;
    entry.lost = false;
    entry.resetSent = false;
    if (frame.epoch !== undefined) entry.epoch = frame.epoch;
    // A fresh subscription starts at the server's offset; a resumed one keeps ours, since the
    // replay that follows moves it forward (a changed epoch restarts it).
    if (!hadPosition || epochChanged || entry.offset === null) {
      if (typeof frame.offset === "number") entry.offset = frame.offset;
    }
    this.emit("subscribed", { ...frame, initial: !hadPosition && !lost });
    if (epochChanged) this._reset(entry, "epoch_changed");
    else if (lost) this._reset(entry, "no_position");
  }

  _onRecovered(frame) {
    this.emit("recovered", frame);
    const entry = this._channels.get(frame.channel);
    if (entry && frame.recovered === false) {
      // The history restarted (a live one: the hub lost it; or it no longer reaches our
      // offset). Publications of the new epoch count from 1 again: keeping the old offset
      // would drop them as already seen, so the next one becomes the position.
      entry.offset = null;
      this._reset(entry, "not_recovered");
    }
  }

  _reset(entry, reason) {
    if (entry.resetSent) return;
    entry.resetSent = true;
    this.emit("reset", { channel: entry.name, reason, recovered: false });
  }

  _onPublication(frame) {
    if (typeof frame.type !== "string" || CONTROL_TYPES.has(frame.type)) return;
    const entry = frame.channel !== undefined ? this._channels.get(frame.channel) : undefined;
    if (entry && typeof frame.offset === "number") {
      if (entry.offset !== null && frame.offset <= entry.offset) return; // seen already
      entry.offset = frame.offset;
      entry.resetSent = false; // past the gap: a later reset is another one
    }
    this.emit("publication", frame);
    if (!entry) return;
    for (const callback of [...entry.callbacks]) safeCall(callback, frame, `channel ${entry.name}`);
  }

  // --- browser niceties ------------------------------------------------------------

  _installBrowserHooks() {
    const win = this.options.window !== undefined ? this.options.window : globalThis.window;
    if (this._browserHooks || !win || typeof win.addEventListener !== "function") return;
    const online = () => this.reconnectNow();
    const visible = () => {
      if (win.document && win.document.visibilityState === "visible") this.reconnectNow();
    };
    win.addEventListener("online", online);
    win.document?.addEventListener?.("visibilitychange", visible);
    this._browserHooks = { win, online, visible };
  }

  _removeBrowserHooks() {
    const hooks = this._browserHooks;
    if (!hooks) return;
    hooks.win.removeEventListener("online", hooks.online);
    hooks.win.document?.removeEventListener?.("visibilitychange", hooks.visible);
    this._browserHooks = null;
  }
}

/** Create a client and connect it: `const hub = connect("/ws/", { token })`. */
export function connect(url, options = {}) {
  return new HubClient(options).connect(url);
}

export default { connect, HubClient, backoffDelay, resolveUrl };
