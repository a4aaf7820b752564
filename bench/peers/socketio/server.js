// Bench peer: a plain socket.io server (Node), the way its docs do a fan-out.
//
// Rooms: "subscribe" joins the socket to the channel's room; "publish" emits the publication
// once to the room (io.to(channel).emit: socket.io encodes the packet once and writes the
// same frame to every member), then answers the publisher with a "published" event. It
// speaks the bench's subset of the hub's protocol *as socket.io events*: every frame is
// Engine.IO v4 + socket.io over WebSocket only, e.g. 42["tick",{...}]; the load tool speaks
// that framing itself for this peer (bench/wsproto.py, dialect "socketio"). No adapter sits
// in between: what is measured is socket.io's own server, Engine.IO and ws.
//
//     node bench/peers/socketio/server.js --port 8767
"use strict";

const { Server } = require("socket.io");

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const host = arg("--host", "127.0.0.1");
const port = parseInt(arg("--port", "8767"), 10);
const offsets = new Map();

const io = new Server({
  transports: ["websocket"], // the load tool opens /socket.io/?EIO=4&transport=websocket
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 1 << 20,
});

io.on("connection", (socket) => {
  socket.on("subscribe", (msg) => {
    const ch = String(msg && msg.channel);
    socket.join(ch);
    socket.emit("subscribed", { type: "subscribed", channel: ch, offset: offsets.get(ch) || 0, epoch: "s" });
  });
  socket.on("publish", (msg) => {
    const ch = String(msg && msg.channel);
    const off = (offsets.get(ch) || 0) + 1;
    offsets.set(ch, off);
    const event = (msg && msg.event) || "message";
    io.to(ch).emit(event, { type: event, channel: ch, offset: off,
                            timestamp: new Date().toISOString(), data: msg && msg.data });
    const reply = { type: "published", channel: ch, offset: off };
    if (msg && msg.id !== undefined) reply.id = msg.id;
    socket.emit("published", reply);
  });
});

const httpServer = require("http").createServer();
io.attach(httpServer);
httpServer.listen({ host, port, backlog: 4096 }, () => {
  console.log(`socket.io peer pid ${process.pid} on ${host}:${port}`);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => { io.close(); process.exit(0); });
}
