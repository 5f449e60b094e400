// Several bunchat nodes (child processes) joined through a real redis-server: one chat.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { TestClient, eventually, handshake, type Frame } from "./helpers/client.ts";
import { freePort, RedisServer } from "./helpers/redis.ts";
import { spawnServer, type ChildServer } from "./helpers/spawn-server.ts";
import { redisAvailable } from "./helpers/tools.ts";
import { redact } from "../src/redis/cluster.ts";

const REDIS = await redisAvailable();

let redis: RedisServer;
const nodes: ChildServer[] = [];
const clients: TestClient[] = [];

beforeAll(async () => {
  if (REDIS) redis = await RedisServer.start();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  if (!REDIS) return;
  for (const c of clients.splice(0)) c.close();
  for (const n of nodes.splice(0)) {
    n.proc.kill("SIGKILL");
    await n.proc.exited;
  }
  // A clean Redis for the next test.
  await redis.restart(0);
});

async function node(id: string, env: Record<string, string> = {}): Promise<ChildServer> {
  const n = await spawnServer(["bun", "src/server.ts"], { HOST: "127.0.0.1", PORT: "0", REDIS_URL: redis.url, NODE_ID: id, RATE_LIMIT: "0", PRESENCE_WINDOW: "30", ...env });
  nodes.push(n);
  return n;
}

async function connect(n: ChildServer | number, query: Record<string, string | number>): Promise<TestClient> {
  const port = typeof n === "number" ? n : n.port;
  const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`, query);
  clients.push(c);
  return c;
}

const texts = (c: TestClient, from?: string) => c.all("message").filter((m) => !from || m.from === from).map((m) => m.text);

describe.skipIf(!REDIS)("three nodes, one chat", () => {
  test("rooms, presence and private messages cross nodes; names are unique cluster-wide", async () => {
    const [a, b, c] = [await node("a"), await node("b"), await node("c")];
    const alice = await connect(a, { name: "alice" });
    const bob = await connect(b, { name: "bob" });
    const carol = await connect(c, { name: "carol" });
    expect(carol.frames[0]).toMatchObject({ type: "welcome", online: 3 });
    expect((carol.frames[0]!.members as string[]).sort()).toEqual(["alice", "bob", "carol"]);
    await alice.next("presence", (p) => (p.joined as string[]).includes("carol"));

    alice.send({ type: "chat", text: "hello from a", ref: "r" });
    const [ma, mb, mc] = await Promise.all([alice.next("message"), bob.next("message"), carol.next("message")]);
    expect(ma).toMatchObject({ from: "alice", text: "hello from a", id: 1, ref: "r" });
    expect(mb).toEqual(ma);
    expect(mc).toEqual(ma);

    bob.send({ type: "private", to: "Carol", text: "psst", ref: "p" });
    expect(await carol.next("private")).toMatchObject({ from: "bob", to: "carol", text: "psst" });
    expect(await bob.next("private")).toMatchObject({ text: "psst", ref: "p" });
    carol.send("after the private one");
    await alice.next("message", (m) => m.text === "after the private one");
    expect(alice.all("private")).toHaveLength(0);

    const taken = await fetch(`http://127.0.0.1:${a.port}/api/admission?name=BOB`);
    expect(taken.status).toBe(409);
    expect((await handshake(`http://127.0.0.1:${c.port}`, "/ws?name=alice")).status).toBe(409);

    bob.send({ type: "who", ref: "w" });
    expect(await bob.next("who")).toMatchObject({ online: 3 });
    const health = (await (await fetch(`http://127.0.0.1:${b.port}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: "ok", node: "b", redis: "up" });
    await eventually(async () => {
      const h = (await (await fetch(`http://127.0.0.1:${b.port}/healthz`)).json()) as { cluster: string[] };
      return ["a", "b", "c"].every((id) => h.cluster.includes(id));
    }, 8000, "cluster membership in /healthz");
  });

  test("since replay works on whichever node a client reconnects to", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const alice = await connect(a, { name: "alice" });
    const bob = await connect(a, { name: "bob" });
    alice.send("one");
    const seen = await bob.next("message");
    const resume = bob.frames[0]!.resume as string;
    bob.close();
    for (const t of ["two", "three", "four"]) alice.send(t);
    await alice.next("message", (m) => m.text === "four");
    // bob's name stays his (grace period): he comes back on another node with his resume key.
    const bobAgain = await connect(b, { name: "bob", since: seen.id as number, resume });
    expect((bobAgain.frames[0]!.history as Frame[]).map((m) => m.text)).toEqual(["two", "three", "four"]);
    alice.send("five");
    expect(await bobAgain.next("message")).toMatchObject({ text: "five", id: 5 });
  });

  test("concurrent publishers on different nodes: everyone sees one order, ids without gaps", async () => {
    const [a, b, c] = [await node("a"), await node("b"), await node("c")];
    const alice = await connect(a, { name: "alice" });
    const bob = await connect(b, { name: "bob" });
    const carol = await connect(c, { name: "carol" });
    const dave = await connect(a, { name: "dave" });
    const n = 150;
    for (let i = 0; i < n; i++) {
      alice.send(`a${i}`);
      bob.send(`b${i}`);
    }
    for (const watcher of [alice, bob, carol, dave]) await eventually(() => watcher.all("message").length >= 2 * n, 10_000, "all messages");
    const order = (c: TestClient) => c.all("message").map((m) => `${m.id}:${m.text}`);
    expect(order(bob)).toEqual(order(carol));
    expect(order(dave)).toEqual(order(carol));
    expect(order(alice)).toEqual(order(carol));
    expect(carol.all("message").map((m) => m.id)).toEqual(Array.from({ length: 2 * n }, (_, i) => i + 1));
    // Each publisher's own messages keep their order.
    expect(texts(carol, "alice")).toEqual(Array.from({ length: n }, (_, i) => `a${i}`));
    expect(texts(carol, "bob")).toEqual(Array.from({ length: n }, (_, i) => `b${i}`));
  });

  test("a node killed with -9 has its users leave everyone's presence within the bound", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const alice = await connect(a, { name: "alice" });
    const bob = await connect(b, { name: "bob" });
    await alice.next("presence", (p) => (p.joined as string[]).includes("bob"));
    const killedAt = Date.now();
    nodes[1]!.proc.kill("SIGKILL");
    const left = await alice.next("presence", (p) => (p.left as string[]).includes("bob"), 20_000);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(left.online).toBe(1);
    // bob comes back on the surviving node as himself; a stranger cannot take his name.
    expect((await handshake(`http://127.0.0.1:${a.port}`, "/ws?name=bob")).status).toBe(409);
    const bobBack = await connect(a, { name: "bob", resume: bob.frames[0]!.resume as string });
    expect(bobBack.frames[0]).toMatchObject({ type: "welcome", you: { name: "bob", person: (bob.frames[0]!.you as { person: string }).person } });
  }, 40_000);
});

describe.skipIf(!REDIS)("Redis outages", () => {
  test("a Redis restart: sends get store_unavailable meanwhile, then the nodes resume by themselves", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const alice = await connect(a, { name: "alice" });
    const bob = await connect(b, { name: "bob" });
    alice.send("before");
    await bob.next("message", (m) => m.text === "before");
    await redis.stop();
    await eventually(async () => ((await (await fetch(`http://127.0.0.1:${a.port}/healthz`)).json()) as { redis: string }).redis === "down", 5000, "healthz shows redis down");
    alice.send({ type: "chat", text: "during", ref: "d" });
    expect(await alice.next("error", (e) => e.ref === "d")).toMatchObject({ code: "store_unavailable" });
    expect(alice.closeEvent).toBeNull();
    await redis.boot();
    await eventually(async () => ((await (await fetch(`http://127.0.0.1:${b.port}/healthz`)).json()) as { redis: string }).redis === "up", 10_000, "healthz shows redis up");
    // The resubscription may take a beat after the connection is up: retry until through.
    await eventually(async () => {
      alice.send({ type: "chat", text: "after", ref: "x" });
      await Bun.sleep(150);
      return bob.all("message").some((m) => m.text === "after");
    }, 10_000, "cross-node delivery resumed");
    expect(bob.all("message").some((m) => m.text === "during")).toBe(false);
    const metrics = await (await fetch(`http://127.0.0.1:${a.port}/metrics`)).text();
    expect(metrics).toMatch(/^bunchat_redis_reconnects [1-9]\d*$/m);
    expect(metrics).toContain("bunchat_redis_round_trip_seconds_bucket");
  }, 40_000);
});

describe("REDIS_URL (no redis-server needed)", () => {
  test("logs and errors show the URL without its password", () => {
    expect(redact("redis://app:s3cret@10.0.0.5:6379/0")).toBe("redis://app:***@10.0.0.5:6379/0");
    expect(redact("redis://:s3cret@10.0.0.5:6379")).toBe("redis://:***@10.0.0.5:6379");
    expect(redact("redis://10.0.0.5:6379")).toBe("redis://10.0.0.5:6379");
  });

  test("a bad REDIS_URL fails the start with one clear line", async () => {
    const proc = Bun.spawn(["bun", "src/server.ts", "--port", "0"], { env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${await freePort()}` }, stdout: "pipe", stderr: "pipe" });
    const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(code).toBe(2);
    expect(err.trim().split("\n")).toHaveLength(1);
    expect(err).toContain("cannot connect to --redis-url / REDIS_URL");
  });
});

describe.skipIf(!REDIS)("--workers", () => {
  test("two workers share one port and one chat", async () => {
    const port = await freePort();
    const supervisor = Bun.spawn(["bun", "src/server.ts", "--workers", "2", "--port", String(port), "--host", "127.0.0.1", "--node-id", "w", "--rate-limit", "0"], {
      env: { ...process.env, REDIS_URL: redis.url, LOG_LEVEL: "info", LOG_FORMAT: "json" },
      stdout: "pipe",
      stderr: "inherit",
    });
    const output = new Response(supervisor.stdout).text();
    try {
      const seenNodes = new Set<string>();
      await eventually(async () => {
        try {
          for (let i = 0; i < 10; i++) {
            const h = (await (await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { connection: "close" } })).json()) as { node: string };
            seenNodes.add(h.node);
          }
        } catch {
          return false;
        }
        return seenNodes.size === 2;
      }, 15_000, "both workers answering");
      expect([...seenNodes].sort()).toEqual(["w-w0", "w-w1"]);
      const people = await Promise.all(Array.from({ length: 8 }, (_, i) => connect(port, { name: `p${i}` })));
      people[0]!.send("to everyone on both workers");
      for (const p of people) await p.next("message", (m) => m.text === "to everyone on both workers");
      for (const p of people) p.close();
      clients.length = 0;
    } finally {
      supervisor.kill("SIGTERM");
      expect(await supervisor.exited).toBe(0);
    }
    // A clean stop is not an outage: no Redis warnings on the way out.
    const lines = await output;
    expect(lines).toContain('"event":"stopped"');
    expect(lines).not.toContain("redis_down");
  }, 40_000);
});

describe.skipIf(!REDIS)("the listening line in cluster mode", () => {
  test("names the node and the Redis URL, not a SQLite file", async () => {
    const n = await node("listener");
    const listening = n.output().split("\n").find((l) => l.includes('"listening"'))!;
    expect(JSON.parse(listening)).toMatchObject({ node: "listener", redis: redis.url });
    expect(listening).not.toContain("history");
  });
});
