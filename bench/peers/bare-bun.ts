// Reference server: the ceiling. A bare Bun.serve pub/sub broadcast with no features:
// every text frame goes to everyone (the sender included) via server.publish, except
// "@name text", which goes to that name only.
//
// With --framed it wraps each message in a frame shaped like bunchat's
// ({"type":"message","id","room","from","text","ts"}, one JSON.stringify per message) and
// greets with {"type":"welcome"}: the same bytes on the wire as bunchat, none of its
// features, so a comparison shows what the features cost apart from the frame format.
//
//   bun bench/peers/bare-bun.ts [port] [--framed]
import type { Server, ServerWebSocket } from "bun";

const port = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? process.env.PORT ?? 0);
const framed = process.argv.includes("--framed");
type Data = { name: string };
const byName = new Map<string, ServerWebSocket<Data>>();
let nextId = 0;

function forward(ws: ServerWebSocket<Data>, text: string): void {
  if (!framed) {
    if (text.charCodeAt(0) === 64 /* @ */) {
      const space = text.indexOf(" ");
      byName.get(text.slice(1, space))?.send(text);
      return;
    }
    server.publish("all", text);
    return;
  }
  if (text.charCodeAt(0) === 123 /* { */) {
    const frame = JSON.parse(text) as { type: string; to?: string; text?: string };
    if (frame.type === "private" && frame.to) {
      const out = JSON.stringify({ type: "private", id: ++nextId, from: ws.data.name, to: frame.to, text: frame.text, ts: Date.now() });
      byName.get(frame.to)?.send(out);
      ws.send(out);
      return;
    }
    text = frame.text ?? "";
  }
  server.publish("all", JSON.stringify({ type: "message", id: ++nextId, room: "bench", from: ws.data.name, text, ts: Date.now() }));
}

const server: Server<Data> = Bun.serve<Data>({
  port,
  hostname: "127.0.0.1",
  reusePort: false,
  fetch(req, srv): Response | undefined {
    const url = new URL(req.url);
    // The bare handler /healthz is compared with: same JSON shape, nothing else.
    if (url.pathname === "/healthz") return Response.json({ status: "ok", connections: srv.pendingWebSockets, uptime: Math.round(performance.now() / 1000) });
    const name = url.searchParams.get("name") ?? crypto.randomUUID();
    if (srv.upgrade(req, { data: { name } })) return;
    return new Response("bare bun broadcast", { status: 200 });
  },
  websocket: {
    idleTimeout: 0,
    open(ws) {
      ws.subscribe("all");
      byName.set(ws.data.name, ws);
      if (framed) ws.send(JSON.stringify({ type: "welcome", you: { name: ws.data.name } }));
    },
    message(ws, message) {
      forward(ws, typeof message === "string" ? message : message.toString());
    },
    close(ws) {
      byName.delete(ws.data.name);
    },
  },
});
console.log(JSON.stringify({ event: "listening", url: `http://127.0.0.1:${server.port}`, pid: process.pid }));
