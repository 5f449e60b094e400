// Reference server: the ceiling. A bare Bun.serve pub/sub broadcast with no features:
// every text frame goes to everyone (the sender included) via server.publish, except
// "@name text", which goes to that name only. Usage: bun bench/peers/bare-bun.ts [port]
const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const byName = new Map<string, import("bun").ServerWebSocket<{ name: string }>>();

const server: import("bun").Server<{ name: string }> = Bun.serve<{ name: string }>({
  port,
  hostname: "127.0.0.1",
  reusePort: false,
  fetch(req, srv): Response | undefined {
    const url = new URL(req.url);
    // The bare handler /healthz is compared with: same JSON shape, nothing else.
    if (url.pathname === "/healthz") return Response.json({ status: "ok", connections: server.pendingWebSockets, uptime: Math.round(performance.now() / 1000) });
    const name = url.searchParams.get("name") ?? crypto.randomUUID();
    if (srv.upgrade(req, { data: { name } })) return;
    return new Response("bare bun broadcast", { status: 200 });
  },
  websocket: {
    idleTimeout: 0,
    open(ws) {
      ws.subscribe("all");
      byName.set(ws.data.name, ws);
    },
    message(ws, message) {
      const text = typeof message === "string" ? message : message.toString();
      if (text.charCodeAt(0) === 64 /* @ */) {
        const space = text.indexOf(" ");
        byName.get(text.slice(1, space))?.send(text);
        return;
      }
      server.publish("all", text);
    },
    close(ws) {
      byName.delete(ws.data.name);
    },
  },
});
console.log(JSON.stringify({ event: "listening", url: `http://127.0.0.1:${server.port}`, pid: process.pid }));
