// A publish hook as small as a backend can write one: Bun.serve answering every check
// with {"result":"allow"}. bench/hook.ts measures what asking it costs bunchat.
//
//   bun bench/peers/hook-server.ts [port]
const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const allow = JSON.stringify({ result: "allow" });
let checks = 0;

const server = Bun.serve({
  port,
  hostname: "127.0.0.1",
  async fetch(req) {
    await req.arrayBuffer();
    checks++;
    return new Response(allow, { headers: { "content-type": "application/json" } });
  },
});

console.log(JSON.stringify({ event: "listening", url: `http://127.0.0.1:${server.port}` }));
process.on("SIGTERM", () => {
  console.log(JSON.stringify({ event: "stopped", checks }));
  process.exit(0);
});
