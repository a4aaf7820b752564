// Unit tests for hub/static/hub/hub-client.js: `node --test tests/js/` (Node >= 20, no packages).
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { FakeClock, makeFakeWebSocket } from "./fakes.mjs";
import { loadModule } from "./load.mjs";

const { HubClient, backoffDelay, connect, resolveUrl } = await loadModule("../../hub/static/hub/hub-client.js");

const LOCATION = { href: "http://hub.example:8000/dashboard/?x=1" };

function setup(options = {}) {
  const clock = new FakeClock();
  const WS = makeFakeWebSocket();
  const randoms = options.randoms ? [...options.randoms] : null;
  const client = new HubClient({
    WebSocket: WS,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.dateNow,
    random: randoms ? () => (randoms.length ? randoms.shift() : 0.5) : () => 0.5,
    location: LOCATION,
    window: null,
    ...options.client,
  });
  const events = [];
  for (const type of ["state", "reset", "recovered", "subscribed", "error", "auth_failed", "heartbeat"]) {
    client.on(type, (payload) => events.push([type, payload]));
  }
  const of = (type) => events.filter(([t]) => t === type).map(([, p]) => p);
  return { clock, WS, client, events, of };
}

function publication(channel, offset, type = "job_state_changed", data = {}) {
  return { type, channel, offset, timestamp: "2026-11-22T10:00:05.120Z", data };
}

describe("resolveUrl", () => {
  test("a path resolves against the page, http -> ws", () => {
    assert.equal(resolveUrl("/ws/", LOCATION), "ws://hub.example:8000/ws/");
    assert.equal(resolveUrl(undefined, LOCATION), "ws://hub.example:8000/ws/");
    assert.equal(resolveUrl("/", LOCATION), "ws://hub.example:8000/");
  });

  test("https pages get wss", () => {
    assert.equal(resolveUrl("/ws/", { href: "https://hub.example/" }), "wss://hub.example/ws/");
    assert.equal(resolveUrl("https://other.example/ws/"), "wss://other.example/ws/");
  });

  test("absolute ws URLs pass through, including the server root", () => {
    assert.equal(resolveUrl("ws://127.0.0.1:9000/"), "ws://127.0.0.1:9000/");
    assert.equal(resolveUrl("wss://h/ws/abc?token=t"), "wss://h/ws/abc?token=t");
  });

  test("a path without a location is an error", () => {
    assert.throws(() => resolveUrl("/ws/", null), /location/);
  });
});

describe("backoffDelay (full jitter above a floor)", () => {
  test("the first retry comes within 250-1000 ms, then the ceiling doubles", () => {
    assert.equal(backoffDelay(0, { random: () => 0 }), 250);
    assert.equal(backoffDelay(0, { random: () => 0.999999 }), 999);
    assert.equal(backoffDelay(0, { random: () => 0.5 }), 625);
    assert.equal(backoffDelay(1, { random: () => 0.999999 }), 1999);
    assert.equal(backoffDelay(3, { random: () => 0.5 }), 250 + 3875);
    assert.equal(backoffDelay(1000, { random: () => 0.999999 }), 29999);
    assert.equal(backoffDelay(0, { minDelay: 0, baseDelay: 500, random: () => 0.5 }), 250);
  });

  test("stays within bounds for any random value, capped at 30 s", () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(30000, 1000 * 2 ** attempt);
      for (const r of [0, 0.1, 0.5, 0.9, 0.999]) {
        const d = backoffDelay(attempt, { random: () => r });
        assert.ok(d >= 250 && d < ceiling, `attempt ${attempt}: ${d}`);
      }
    }
  });

  test("is jittered: different random draws give different delays", () => {
    const delays = new Set([0.1, 0.4, 0.7].map((r) => backoffDelay(4, { random: () => r })));
    assert.equal(delays.size, 3);
  });
});

describe("connection", () => {
  test("goes connecting -> open -> connected and records the server's hello", () => {
    const { client, WS, of } = setup();
    client.connect("/ws/");
    assert.equal(WS.last().url, "ws://hub.example:8000/ws/");
    WS.last().accept({ client_id: "c_9", user: "bob", heartbeat_interval: 10 });
    assert.deepEqual(of("state").map((s) => s.state), ["connecting", "open", "connected"]);
    assert.equal(client.state, "connected");
    assert.equal(client.clientId, "c_9");
    assert.equal(client.user, "bob");
    assert.equal(client.heartbeatInterval, 10);
  });

  test("a repeated `connected` on the same socket does not resubscribe", () => {
    const { client, WS, of } = setup();
    client.subscribe("jobs", () => {});
    client.connect("/ws/");
    const ws = WS.last();
    ws.accept();
    ws.serverSend({ type: "connected", client_id: "c_1", user: "alice", heartbeat_interval: 30 });
    assert.equal(ws.sentOfType("subscribe").length, 1);
    assert.equal(of("state").filter((s) => s.state === "connected").length, 1);
    assert.equal(client.connectedCount, 1);
  });

  test("module-level connect() works against the server root", () => {
    const WS = makeFakeWebSocket();
    const client = connect("ws://127.0.0.1:9000/", { WebSocket: WS, window: null });
    assert.equal(WS.last().url, "ws://127.0.0.1:9000/");
    assert.ok(client instanceof HubClient);
    client.close();
  });

  test("connect() twice keeps one socket", () => {
    const { client, WS } = setup();
    client.connect("/ws/");
    client.connect();
    assert.equal(WS.instances.length, 1);
  });

  test("answers heartbeat with pong", () => {
    const { client, WS, of } = setup();
    client.connect("/ws/");
    const ws = WS.last();
    ws.accept();
    ws.serverSend({ type: "heartbeat", timestamp: "2026-11-22T10:00:30.000Z" });
    assert.deepEqual(ws.sentOfType("pong"), [{ type: "pong" }]);
    assert.equal(of("heartbeat").length, 1);
  });

  test("sends a token as the first frame when given one", () => {
    const { client, WS } = setup({ client: { token: () => "secret-token" } });
    client.subscribe("jobs", () => {});
    client.connect("/ws/");
    const ws = WS.last();
    ws.serverOpen();
    assert.deepEqual(ws.sent, [{ type: "auth", token: "secret-token" }]);
    ws.serverSend({ type: "connected", client_id: "c", user: "a", server: "s", heartbeat_interval: 30 });
    assert.deepEqual(ws.sent[1], { type: "subscribe", channels: ["jobs"] });
  });

  test("queues frames until connected, then flushes them after subscriptions", () => {
    const { client, WS } = setup();
    client.connect("/ws/");
    assert.equal(client.send({ type: "chat_message", text: "hi" }), true);
    client.subscribe("jobs", () => {});
    const ws = WS.last();
    ws.serverOpen();
    assert.deepEqual(ws.sent, []);
    ws.serverSend({ type: "connected", client_id: "c", heartbeat_interval: 30 });
    assert.deepEqual(ws.sent.map((f) => f.type), ["subscribe", "chat_message"]);
  });

  test("ignores frames that are not JSON objects", () => {
    const { client, WS } = setup();
    client.connect("/ws/");
    const ws = WS.last();
    ws.accept();
    ws.serverSend("not json");
    ws.serverSend("[1,2]");
    ws.serverSend("null");
    assert.equal(client.state, "connected");
  });
});

describe("reconnect", () => {
  test("waits a full-jitter delay that doubles per attempt, then reconnects", () => {
    const { client, WS, clock, of } = setup({ randoms: [0.5, 0.5, 0.5] });
    client.connect("/ws/");
    WS.last().serverClose(1006);
    let waits = of("state").filter((s) => s.state === "reconnecting");
    assert.equal(waits.at(-1).delay, 625);
    clock.advance(624);
    assert.equal(WS.instances.length, 1);
    clock.advance(1);
    assert.equal(WS.instances.length, 2);
    clock.advance(10000); // this attempt hangs a while before it fails
    WS.last().serverClose(1006);
    waits = of("state").filter((s) => s.state === "reconnecting");
    assert.equal(waits.at(-1).delay, 1125);
    clock.advance(1125);
    clock.advance(10000);
    WS.last().serverClose(1006);
    assert.equal(of("state").filter((s) => s.state === "reconnecting").at(-1).delay, 2125);
  });

  test("the attempt count resets once connected", () => {
    const { client, WS, clock, of } = setup();
    client.connect("/ws/");
    for (let i = 0; i < 4; i++) { WS.last().serverClose(1006); clock.advance(60000); }
    WS.last().accept();
    assert.equal(client.attempt, 0);
    WS.last().serverClose(1001, "server shutting down");
    const last = of("state").at(-1);
    assert.equal(last.state, "reconnecting");
    assert.equal(last.code, 1001);
    assert.equal(last.delay, 625);
  });

  test("after a clean close or a server restart the first retries come within a second or two", () => {
    // Refused connections fail in milliseconds: five quick failures (low draws) must not
    // push the next wait towards 30 s while the hub has been gone for under a second.
    const { client, WS, clock, of } = setup({ randoms: [0, 0, 0, 0, 0, 0.999999, 0.999999] });
    client.connect("/ws/");
    WS.last().accept();
    WS.last().serverClose(1000, "");
    for (let i = 0; i < 5; i++) {
      const wait = of("state").at(-1);
      assert.equal(wait.state, "reconnecting");
      assert.ok(wait.delay >= 250 && wait.delay < 1000, String(wait.delay));
      clock.advance(wait.delay);
      WS.last().serverClose(1006); // refused: the server is still restarting
    }
    const down = clock.now; // 1.25 s since the close
    const next = of("state").at(-1);
    assert.ok(next.delay < down, `waited ${next.delay} ms after ${down} ms down`);
    clock.advance(next.delay);
    assert.equal(WS.instances.length, 7);
    WS.last().accept();
    assert.equal(client.state, "connected");
  });

  test("the ceiling still grows with the outage, up to maxDelay", () => {
    const { client, WS, clock, of } = setup({ randoms: Array(40).fill(0.999999) });
    client.connect("/ws/");
    for (let i = 0; i < 20; i++) { WS.last().serverClose(1006); clock.advance(of("state").at(-1).delay); }
    const delays = of("state").filter((s) => s.state === "reconnecting").map((s) => s.delay);
    assert.ok(delays.at(-1) >= 29000 && delays.at(-1) < 30000, String(delays));
    for (let i = 1; i < delays.length; i++) assert.ok(delays[i] >= delays[i - 1], String(delays));
  });

  test("reconnectNow() during the wait connects at once and a success resets the outage", () => {
    const { client, WS, clock, of } = setup({ randoms: Array(40).fill(0.999999) });
    client.connect("/ws/");
    for (let i = 0; i < 10; i++) { WS.last().serverClose(1006); clock.advance(of("state").at(-1).delay); }
    WS.last().serverClose(1006);
    assert.ok(of("state").at(-1).delay > 10000);
    client.reconnectNow();
    assert.equal(client.state, "connecting");
    WS.last().accept();
    WS.last().serverClose(1001, "server shutting down");
    assert.ok(of("state").at(-1).delay < 1000, "a fresh outage starts fast again");
  });

  test("never waits longer than maxDelay", () => {
    const { client, WS, clock, of } = setup({ client: { maxDelay: 4000 }, randoms: Array(30).fill(0.99) });
    client.connect("/ws/");
    for (let i = 0; i < 12; i++) { WS.last().serverClose(1006); clock.advance(5000); }
    const delays = of("state").filter((s) => s.state === "reconnecting").map((s) => s.delay);
    assert.ok(Math.max(...delays) < 4000, String(delays));
    assert.ok(delays.at(-1) >= 3900);
  });

  test("close() stops reconnecting", () => {
    const { client, WS, clock } = setup();
    client.connect("/ws/");
    WS.last().accept();
    client.close();
    assert.equal(WS.last().closedWith.code, 1000);
    assert.equal(client.state, "closed");
    clock.advance(120000);
    assert.equal(WS.instances.length, 1);
  });

  test("close() during the backoff wait cancels it", () => {
    const { client, WS, clock } = setup();
    client.connect("/ws/");
    WS.last().serverClose(1006);
    client.close();
    clock.advance(120000);
    assert.equal(WS.instances.length, 1);
  });

  test("auth failure (4001) stops and says so", () => {
    const { client, WS, clock, of } = setup();
    client.connect("/ws/");
    WS.last().serverOpen();
    WS.last().serverClose(4001, "authentication failed");
    assert.equal(of("auth_failed").length, 1);
    assert.equal(client.state, "closed");
    clock.advance(120000);
    assert.equal(WS.instances.length, 1);
  });

  test("reconnectNow() skips the wait", () => {
    const { client, WS, clock } = setup({ randoms: [0.99] });
    client.connect("/ws/");
    clock.advance(10);
    WS.last().serverClose(1006);
    client.reconnectNow();
    assert.equal(WS.instances.length, 2);
    clock.advance(120000);
    assert.equal(WS.instances.length, 2, "the cancelled timer must not open a third socket");
  });

  test("a socket silent for 2.5 heartbeat intervals is replaced", () => {
    const { client, WS, clock, of } = setup();
    client.connect("/ws/");
    const first = WS.last();
    first.accept({ heartbeat_interval: 10 });
    clock.advance(20000);
    first.serverSend({ type: "heartbeat" }); // activity postpones the verdict
    clock.advance(24000);
    assert.equal(WS.instances.length, 1);
    clock.advance(1000);
    assert.equal(first.closedWith.code, 4000);
    assert.equal(of("state").at(-1).state, "reconnecting");
    clock.advance(1000);
    assert.equal(WS.instances.length, 2);
    first.serverClose(4000); // the late close of the dropped socket changes nothing
    assert.equal(client.state, "connecting");
  });
});

describe("subscriptions", () => {
  test("subscribe sends one frame; publications reach the callback", () => {
    const { client, WS } = setup();
    client.connect("/ws/");
    const ws = WS.last();
    ws.accept();
    const got = [];
    client.subscribe("jobs", (msg) => got.push(msg));
    assert.deepEqual(ws.sentOfType("subscribe"), [{ type: "subscribe", channels: ["jobs"] }]);
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 41, epoch: "e1" });
    ws.serverSend(publication("jobs", 42, "job_state_changed", { job_id: "1", state: "RUNNING" }));
    ws.serverSend(publication("nodes", 7)); // not ours
    assert.equal(got.length, 1);
    assert.equal(got[0].type, "job_state_changed");
    assert.equal(got[0].data.state, "RUNNING");
    assert.deepEqual(client.channels(), [{ name: "jobs", offset: 42, epoch: "e1", subscribed: true }]);
  });

  test("channels subscribed before connecting go in one frame after connected", () => {
    const { client, WS } = setup();
    client.subscribe("jobs", () => {});
    client.subscribe("nodes", () => {});
    client.subscribe("jobs", () => {}); // second callback, same channel
    client.connect("/ws/");
    WS.last().accept();
    assert.deepEqual(WS.last().sentOfType("subscribe"), [{ type: "subscribe", channels: ["jobs", "nodes"] }]);
  });

  test("more than 100 channels are split into frames of 100", () => {
    const { client, WS } = setup();
    for (let i = 0; i < 205; i++) client.subscribe(`c${i}`, () => {});
    client.connect("/ws/");
    WS.last().accept();
    assert.deepEqual(WS.last().sentOfType("subscribe").map((f) => f.channels.length), [100, 100, 5]);
  });

  test("unsubscribe(channel, cb) keeps the channel while other callbacks remain", () => {
    const { client, WS } = setup();
    client.connect("/ws/");
    const ws = WS.last();
    ws.accept();
    const a = [];
    const b = [];
    const cbA = (m) => a.push(m);
    const offB = client.subscribe("jobs", (m) => b.push(m));
    client.subscribe("jobs", cbA);
    client.unsubscribe("jobs", cbA);
    ws.serverSend(publication("jobs", 1));
    assert.equal(a.length, 0);
    assert.equal(b.length, 1);
    assert.equal(ws.sentOfType("unsubscribe").length, 0);
    offB();
    assert.deepEqual(ws.sentOfType("unsubscribe"), [{ type: "unsubscribe", channel: "jobs" }]);
    ws.serverSend(publication("jobs", 2));
    assert.equal(b.length, 1);
  });

  test("unsubscribe(channel) without a callback drops them all", () => {
    const { client, WS } = setup();
    client.connect("/ws/");
    WS.last().accept();
    client.subscribe("jobs", () => {});
    client.subscribe("jobs", () => {});
    client.unsubscribe("jobs");
    assert.equal(WS.last().sentOfType("unsubscribe").length, 1);
    assert.deepEqual(client.channels(), []);
  });

  test("a failing callback does not stop the others", () => {
    const { client, WS } = setup();
    client.connect("/ws/");
    WS.last().accept();
    const got = [];
    const originalError = console.error;
    console.error = () => {};
    try {
      client.subscribe("jobs", () => { throw new Error("page bug"); });
      client.subscribe("jobs", (m) => got.push(m));
      WS.last().serverSend(publication("jobs", 1));
    } finally {
      console.error = originalError;
    }
    assert.equal(got.length, 1);
  });

  test("server errors are emitted, the socket stays", () => {
    const { client, WS, of } = setup();
    client.connect("/ws/");
    WS.last().accept();
    client.subscribe("alerts", () => {});
    WS.last().serverSend({ type: "error", code: "forbidden", message: "staff only", channel: "alerts" });
    assert.equal(of("error")[0].code, "forbidden");
    assert.equal(client.state, "connected");
  });
});

describe("recovery after reconnect", () => {
  function connectedWithJobs(options) {
    const ctx = setup(options);
    const got = [];
    ctx.client.subscribe("jobs", (m) => got.push(m.offset));
    ctx.client.connect("/ws/");
    const ws = ctx.WS.last();
    ws.accept();
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 10, epoch: "e1" });
    ws.serverSend(publication("jobs", 11));
    ws.serverSend(publication("jobs", 12));
    ws.serverClose(1006);
    ctx.clock.advance(60000);
    ctx.WS.last().accept();
    return { ...ctx, got, ws: ctx.WS.last() };
  }

  test("resubscribes with since = last offset seen", () => {
    const { ws } = connectedWithJobs();
    assert.deepEqual(ws.sentOfType("subscribe"), [{ type: "subscribe", channels: ["jobs"], since: { jobs: 12 } }]);
  });

  test("replayed publications are delivered once, in order; recovered:true is quiet", () => {
    const { ws, got, of } = connectedWithJobs();
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 14, epoch: "e1" });
    ws.serverSend(publication("jobs", 12)); // already seen: dropped
    ws.serverSend(publication("jobs", 13));
    ws.serverSend(publication("jobs", 14));
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: true, missed: 2 });
    ws.serverSend(publication("jobs", 15));
    assert.deepEqual(got, [11, 12, 13, 14, 15]);
    assert.equal(of("recovered")[0].missed, 2);
    assert.equal(of("reset").length, 0);
    assert.equal(of("subscribed").at(-1).initial, false);
  });

  test("recovered:false emits reset so the page reloads", () => {
    const { ws, of } = connectedWithJobs();
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 500, epoch: "e1" });
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: false });
    assert.deepEqual(of("reset"), [{ channel: "jobs", reason: "not_recovered", recovered: false }]);
  });

  test("a new epoch emits one reset and restarts the position at the server's offset", () => {
    const { ws, of, got, client } = connectedWithJobs();
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 0, epoch: "e2" });
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: false });
    ws.serverSend(publication("jobs", 1));
    assert.equal(of("reset").length, 1);
    assert.equal(of("reset")[0].reason, "epoch_changed");
    assert.deepEqual(got, [11, 12, 1]);
    assert.deepEqual(client.channels()[0], { name: "jobs", offset: 1, epoch: "e2", subscribed: true });
  });

  test("a live recovered:false forgets the offset: the new epoch's publications are delivered", () => {
    const { ws, of, got, client } = connectedWithJobs();
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 14, epoch: "e1" });
    ws.serverSend(publication("jobs", 13));
    ws.serverSend(publication("jobs", 14));
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: true, missed: 2 });
    // Later, live: the hub lost the history; the channel starts over at offset 1.
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: false });
    ws.serverSend(publication("jobs", 1));
    ws.serverSend(publication("jobs", 2));
    ws.serverSend(publication("jobs", 2)); // still never twice
    assert.deepEqual(got, [11, 12, 13, 14, 1, 2]);
    assert.deepEqual(of("reset").map((r) => r.reason), ["not_recovered"]);
    assert.equal(client.channels()[0].offset, 2);
  });

  test("each live reset is reported, not only the first of a subscription", () => {
    const { ws, of, got } = connectedWithJobs();
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 12, epoch: "e1" });
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: true, missed: 0 });
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: false });
    ws.serverSend(publication("jobs", 1));
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: false });
    ws.serverSend(publication("jobs", 1));
    assert.deepEqual(got, [11, 12, 1, 1]);
    assert.equal(of("reset").length, 2);
  });

  test("a reset with nothing since leaves no position: the next connection resets too", () => {
    const { ws, of, WS, clock } = connectedWithJobs();
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 12, epoch: "e1" });
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: true, missed: 0 });
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: false });
    ws.serverClose(1006);
    clock.advance(60000);
    WS.last().accept();
    assert.deepEqual(WS.last().sentOfType("subscribe"), [{ type: "subscribe", channels: ["jobs"] }]);
    WS.last().serverSend({ type: "subscribed", channel: "jobs", offset: 4, epoch: "e2" });
    assert.deepEqual(of("reset").map((r) => r.reason), ["not_recovered", "epoch_changed"]);
  });

  test("a `subscribed` with a changed epoch delivers the new epoch's publications", () => {
    const { ws, of, got } = connectedWithJobs();
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 3, epoch: "e2" });
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: false });
    ws.serverSend(publication("jobs", 4));
    ws.serverSend(publication("jobs", 5));
    assert.deepEqual(got, [11, 12, 4, 5]);
    assert.equal(of("reset").length, 1);
  });

  test("a drop before the first `subscribed` resets on the next one", () => {
    const { client, WS, clock, of } = setup();
    client.subscribe("jobs", () => {});
    client.connect("/ws/");
    WS.last().accept();
    WS.last().serverClose(1006); // subscribed never came
    clock.advance(60000);
    WS.last().accept();
    assert.deepEqual(WS.last().sentOfType("subscribe"), [{ type: "subscribe", channels: ["jobs"] }]);
    WS.last().serverSend({ type: "subscribed", channel: "jobs", offset: 3, epoch: "e1" });
    assert.equal(of("reset")[0].reason, "no_position");
  });

  test("a first connection that never opened does not reset", () => {
    const { client, WS, clock, of } = setup();
    client.subscribe("jobs", () => {});
    client.connect("/ws/");
    WS.last().serverClose(1006);
    clock.advance(60000);
    WS.last().accept();
    WS.last().serverSend({ type: "subscribed", channel: "jobs", offset: 3, epoch: "e1" });
    assert.equal(of("reset").length, 0);
    assert.equal(of("subscribed")[0].initial, true);
  });

  test("the connected event says it is a reconnect", () => {
    const { of } = connectedWithJobs();
    const connected = of("state").filter((s) => s.state === "connected");
    assert.deepEqual(connected.map((s) => s.reconnected), [false, true]);
  });
});

describe("requests", () => {
  test("ping() resolves with the pong echoing its id", async () => {
    const { client, WS } = setup();
    client.connect("/ws/");
    const ws = WS.last();
    ws.accept();
    const reply = client.ping();
    const sent = ws.sentOfType("ping")[0];
    assert.ok(sent.id !== undefined);
    ws.serverSend({ type: "pong", id: sent.id, timestamp: "t" });
    assert.equal((await reply).type, "pong");
  });

  test("an error reply rejects with its code", async () => {
    const { client, WS } = setup();
    client.connect("/ws/");
    const ws = WS.last();
    ws.accept();
    const reply = client.publish("jobs", { x: 1 }, "custom");
    const sent = ws.sentOfType("publish")[0];
    assert.deepEqual({ ...sent, id: undefined }, { type: "publish", channel: "jobs", data: { x: 1 }, event: "custom", id: undefined });
    ws.serverSend({ type: "error", code: "forbidden", message: "no", id: sent.id });
    await assert.rejects(reply, (err) => err.code === "forbidden");
  });

  test("pending requests fail when the connection drops", async () => {
    const { client, WS } = setup();
    client.connect("/ws/");
    WS.last().accept();
    const reply = client.ping();
    WS.last().serverClose(1006);
    await assert.rejects(reply, /closed/);
  });

  test("a request with no reply times out", async () => {
    const { client, WS, clock } = setup();
    client.connect("/ws/");
    WS.last().accept();
    const reply = client.request({ type: "ping" }, { timeout: 1000 });
    clock.advance(1000);
    await assert.rejects(reply, /no reply/);
  });
});

describe("browser hooks", () => {
  test("coming back online reconnects at once", () => {
    const listeners = {};
    const win = {
      addEventListener: (type, fn) => { listeners[type] = fn; },
      removeEventListener: (type) => { delete listeners[type]; },
      document: { visibilityState: "visible", addEventListener() {}, removeEventListener() {} },
    };
    const { client, WS } = setup({ client: { window: win }, randoms: [0.99] });
    client.connect("/ws/");
    WS.last().serverClose(1006);
    listeners.online();
    assert.equal(WS.instances.length, 2);
    client.close();
    assert.equal(listeners.online, undefined);
  });
});

describe("subscribing from a REST snapshot's position", () => {
  test("since is sent, kept through subscribed, and nothing at or below it is delivered", () => {
    const ctx = setup();
    const got = [];
    ctx.client.subscribe("jobs", (m) => got.push(m.offset), { since: 40, epoch: "e1" });
    ctx.client.connect("/ws/");
    const ws = ctx.WS.last();
    ws.accept();
    assert.deepEqual(ws.sentOfType("subscribe"), [{ type: "subscribe", channels: ["jobs"], since: { jobs: 40 } }]);
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 43, epoch: "e1" });
    ws.serverSend(publication("jobs", 40)); // in the snapshot already
    ws.serverSend(publication("jobs", 41));
    ws.serverSend(publication("jobs", 42));
    ws.serverSend(publication("jobs", 43));
    ws.serverSend({ type: "recovered", channel: "jobs", recovered: true, missed: 3 });
    assert.deepEqual(got, [41, 42, 43]);
    assert.equal(ctx.of("reset").length, 0);
  });

  test("another epoch than the snapshot's resets; an unknown epoch does not", () => {
    const ctx = setup();
    ctx.client.subscribe("jobs", () => {}, { since: 40, epoch: "e1" });
    ctx.client.subscribe("nodes", () => {}, { since: 7, epoch: null });
    ctx.client.connect("/ws/");
    const ws = ctx.WS.last();
    ws.accept();
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 3, epoch: "e2" });
    ws.serverSend({ type: "subscribed", channel: "nodes", offset: 9, epoch: "e9" });
    assert.deepEqual(ctx.of("reset").map((r) => [r.channel, r.reason]), [["jobs", "epoch_changed"]]);
    assert.deepEqual(ctx.client.channels().find((c) => c.name === "nodes"), { name: "nodes", offset: 7, epoch: "e9", subscribed: true });
  });
});
