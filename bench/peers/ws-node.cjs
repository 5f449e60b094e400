// Reference server: what most people run today. A Node.js `ws` broadcast server in the
// style of the classic tutorial: loop over wss.clients and send to each; "@name text"
// goes to that name only. Usage: node bench/peers/ws-node.cjs [port]
const http = require("node:http");
const { WebSocketServer, WebSocket } = require("ws");

const port = Number(process.argv[2] || process.env.PORT || 0);
const server = http.createServer((req, res) => res.end("ws node broadcast"));
const wss = new WebSocketServer({ server });
const byName = new Map();

wss.on("connection", (ws, req) => {
  const name = new URL(req.url, "http://x").searchParams.get("name") || String(Math.random());
  byName.set(name, ws);
  ws.on("message", (data, isBinary) => {
    const text = data.toString();
    if (text.startsWith("@")) {
      const target = byName.get(text.slice(1, text.indexOf(" ")));
      if (target && target.readyState === WebSocket.OPEN) target.send(text);
      return;
    }
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(text, { binary: isBinary });
    }
  });
  ws.on("close", () => byName.delete(name));
  ws.on("error", () => {});
});

server.listen(port, "127.0.0.1", () => {
  console.log(JSON.stringify({ event: "listening", url: `http://127.0.0.1:${server.address().port}`, pid: process.pid }));
});
