// Cluster mode under interleavings a client or a Redis hiccup can cause: each test here
// reproduces a defect found in review (issue #10) against real nodes and a real
// redis-server, and holds the fix.
import { describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import type { ChatServer } from "../src/app.ts";
import { eventually, TestClient } from "./helpers/client.ts";
import { redisNodes } from "./helpers/redis-nodes.ts";
import { spawnServer, type ChildServer } from "./helpers/spawn-server.ts";
import { redisAvailable } from "./helpers/tools.ts";

const REDIS = await redisAvailable();

const cluster = redisNodes(REDIS);
const node = cluster.node;
let admin: RedisClient | undefined;

async function adminClient(): Promise<RedisClient> {
  const client = new RedisClient(cluster.redis.url);
  admin = client;
  cluster.after(() => {
    client.close();
    if (admin === client) admin = undefined;
  });
  await client.connect();
  return client;
}

/** A node in a child process of its own (it may be killed), gone after the test. */
function child(n: ChildServer): ChildServer {
  cluster.after(async () => {
    n.proc.kill("SIGKILL");
    await n.proc.exited;
  });
  return n;
}

async function connect(s: ChatServer, query: Record<string, string | number>): Promise<TestClient> {
  const c = await TestClient.connect(s.wsUrl, query);
  cluster.track(c);
  return c;
}

/** Subscribers Redis counts on a room's channel (one per node that listens). */
async function roomSubscribers(room: string): Promise<number> {
  const r = admin ?? (await adminClient());
  const reply = (await r.send("PUBSUB", ["NUMSUB", `bc:t:r:${room}`])) as [string, number];
  return Number(reply[1]);
}

/** Open a WebSocket handshake over raw TCP and drop it right after sending. */
async function abandonHandshake(port: number, name: string, waitMs: number): Promise<void> {
  const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, error() {} } });
  socket.write(
    `GET /ws?name=${name}&room=lobby HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  if (waitMs > 0) await Bun.sleep(waitMs);
  socket.terminate();
}

describe.skipIf(!REDIS)("what a client does never crashes a node", () => {
  test("handshakes dropped 0–2 ms after sending: the node stays up, its counts return to zero", async () => {
    const n = await spawnServer(["bun", "src/server.ts"], { HOST: "127.0.0.1", PORT: "0", REDIS_URL: cluster.redis.url, NODE_ID: "a" });
    child(n);
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => abandonHandshake(n.port, `ghost${round}x${i}`, i % 3)));
    }
    // A browser-style client that closes right on open.
    for (let i = 0; i < 5; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${n.port}/ws?name=blink${i}&room=r${i}`);
      ws.onopen = () => ws.close();
    }
    await Bun.sleep(300);
    expect(n.proc.exitCode).toBeNull();
    await eventually(async () => ((await (await fetch(`${n.url}/healthz`)).json()) as { connections: number }).connections === 0, 5000, "no connections left");
    const alice = await connect({ wsUrl: `ws://127.0.0.1:${n.port}/ws` } as ChatServer, { name: "alice" });
    alice.send({ type: "chat", text: "still here", ref: 1 });
    expect(await alice.next("message")).toMatchObject({ text: "still here" });
    await eventually(async () => (await roomSubscribers("r0")) === 0, 5000, "no channel left subscribed for rooms nobody is in");
  });
});

describe.skipIf(!REDIS)("Redis reconnects", () => {
  test("after 3 kills of the pub/sub connection every message arrives exactly once", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const alice = await connect(a, { name: "alice" });
    const bob = await connect(b, { name: "bob" });
    const r = await adminClient();
    for (let kill = 0; kill < 3; kill++) {
      await r.send("CLIENT", ["KILL", "TYPE", "pubsub"]);
      // Wait until cross-node delivery works again.
      await eventually(async () => {
        alice.send({ type: "chat", text: `probe${kill}` });
        await Bun.sleep(100);
        return bob.all("message").some((m) => m.text === `probe${kill}`);
      }, 10_000, "delivery after the kill");
    }
    alice.send({ type: "chat", text: "counted", ref: "c" });
    bob.send({ type: "private", to: "alice", text: "dm", ref: "p" });
    await bob.next("message", (m) => m.text === "counted");
    await alice.next("private", (m) => m.text === "dm");
    await Bun.sleep(300);
    for (const c of [alice, bob]) {
      expect(c.all("message").filter((m) => m.text === "counted")).toHaveLength(1);
      expect(c.all("private").filter((m) => m.text === "dm")).toHaveLength(1);
      const ids = c.all("message").map((m) => m.id as number);
      expect(new Set(ids).size).toBe(ids.length);
    }
  }, 40_000);

  test("ids never repeat after Redis restarts without persistence; replay across the loss says so", async () => {
    const a = await node("a");
    const alice = await connect(a, { name: "alice" });
    for (let i = 0; i < 5; i++) alice.send(`before ${i}`);
    await eventually(() => alice.all("message").length === 5, 5000, "five messages");
    const lastBefore = alice.all("message").at(-1)!.id as number;
    await cluster.redis.restart(0);
    await eventually(async () => {
      alice.send({ type: "chat", text: "after", ref: "after" });
      await Bun.sleep(150);
      return alice.all("message").some((m) => m.text === "after");
    }, 10_000, "publishing after the restart");
    const after = alice.all("message").find((m) => m.text === "after")!;
    expect(after.id as number).toBeGreaterThan(lastBefore);
    // A client that saw the old ids and reconnects is told its replay is incomplete.
    const bob = await connect(a, { name: "bob", since: 2 });
    expect(bob.frames[0]).toMatchObject({ type: "welcome", incomplete: true });
    expect((bob.frames[0]!.history as { id: number }[]).every((m) => m.id > lastBefore)).toBe(true);
  }, 30_000);

  test("missed messages are replayed before live ones after an outage, with no gap", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const alice = await connect(a, { name: "alice" });
    const bob = await connect(b, { name: "bob" });
    const r = await adminClient();
    // Kill only node a's subscriber: bob's messages keep being stored while a cannot hear them.
    const list = (await r.send("CLIENT", ["LIST", "TYPE", "pubsub"])) as string;
    const ids = [...list.matchAll(/id=(\d+)/g)].map((m) => m[1]!);
    // Every pub/sub connection dies; both nodes reconnect, bob keeps sending throughout.
    let sending = true;
    let i = 0;
    const sender = (async () => {
      while (sending && i < 400) {
        bob.send(`m${i++}`);
        await Bun.sleep(2);
      }
    })();
    await Bun.sleep(50);
    for (const id of ids) await r.send("CLIENT", ["KILL", "ID", id]);
    await Bun.sleep(400);
    sending = false;
    await sender;
    await eventually(() => alice.all("message").length >= i, 10_000, "every message at alice");
    const got = alice.all("message").map((m) => m.id as number);
    expect(got).toEqual(Array.from({ length: i }, (_, k) => k + 1));
  }, 30_000);
});

describe.skipIf(!REDIS)("membership races", () => {
  test("a socket that closes during its join leaves no channel subscribed (20 of 20)", async () => {
    const a = await node("a");
    await adminClient();
    for (let k = 0; k < 20; k++) {
      const ws = new WebSocket(`${a.wsUrl}?name=quick${k}&room=lobby`);
      await new Promise<void>((resolve) => {
        ws.onmessage = (e) => {
          if (JSON.parse(String(e.data)).type !== "welcome") return;
          ws.send(JSON.stringify({ type: "join", room: `gone${k}` }));
          ws.close();
          resolve();
        };
      });
    }
    await Bun.sleep(300);
    for (let k = 0; k < 20; k++) expect(await roomSubscribers(`gone${k}`)).toBe(0);
  });

  test("joining while the room's last local member leaves: the joiner still hears the room", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const bob = await connect(b, { name: "bob", room: "elsewhere" });
    for (let k = 0; k < 15; k++) {
      const room = `hot${k}`;
      const alice = await connect(a, { name: `alice${k}`, room });
      const carol = await connect(a, { name: `carol${k}`, room: "elsewhere" });
      // carol joins while alice (the room's only member on a) leaves, in the same turn.
      carol.send({ type: "join", room });
      alice.send({ type: "leave", room });
      await carol.next("joined");
      bob.send({ type: "join", room, ref: `j${k}` });
      await bob.next("joined", (f) => f.room === room);
      bob.send({ type: "chat", room, text: `to ${room}` });
      await carol.next("message", (m) => m.text === `to ${room}`, 3000);
      carol.send({ type: "chat", room, text: `from carol ${k}` });
      await carol.next("message", (m) => m.text === `from carol ${k}`, 3000);
    }
  }, 40_000);

  test("concurrent joins respect MAX_ROOMS_PER_CONNECTION", async () => {
    const a = await node("a", { maxRoomsPerConnection: 2 });
    const alice = await connect(a, { name: "alice" });
    for (let k = 0; k < 30; k++) alice.send({ type: "join", room: `many${k}`, ref: k });
    await eventually(() => alice.all("joined").length + alice.all("error").length === 30, 5000, "30 answers");
    expect(alice.all("joined")).toHaveLength(1);
    expect(alice.all("error").every((e) => e.code === "too_many_rooms")).toBe(true);
    alice.send({ type: "who", ref: "w" });
    await alice.next("who");
  });

  test("nick moves cluster membership: no ghost in member lists or counts", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const alice = await connect(a, { name: "alice" });
    const bob = await connect(b, { name: "bob" });
    alice.send({ type: "nick", name: "alicia", ref: "n" });
    await bob.next("nick");
    await Bun.sleep(100);
    bob.send({ type: "who", ref: "w" });
    const who = await bob.next("who");
    expect(who.online).toBe(2);
    expect((who.members as string[]).sort()).toEqual(["alicia", "bob"]);
    // The old name is free cluster-wide.
    const another = await connect(b, { name: "alice" });
    expect(another.frames[0]!.type).toBe("welcome");
  });
});

describe.skipIf(!REDIS)("server API paging", () => {
  test("rooms, a page at a time: a room listed but emptied meanwhile does not end the paging early", async () => {
    const a = await node("a");
    await connect(a, { name: "alice", room: "aaa" });
    await connect(a, { name: "carol", room: "ccc" });
    // "bbb" is listed but has nobody: what a read between its last person leaving and
    // its removal from the list sees (two commands, not one transaction).
    await (await adminClient()).send("ZADD", ["bc:rooms", "0", "bbb"]);
    const seen: string[] = [];
    let cursor = "";
    for (let pages = 0; pages < 10; pages++) {
      const body = (await (await fetch(`${a.url}/api/rooms?limit=1&cursor=${cursor}`)).json()) as { rooms: { room: string }[]; next: string | null };
      seen.push(...body.rooms.map((r) => r.room));
      if (body.next === null) break;
      cursor = body.next;
    }
    expect(seen).toEqual(["aaa", "ccc"]);
  });

  test("a member cursor too large for Redis is 400 bad_cursor, not 503 store_unavailable", async () => {
    const a = await node("a");
    await connect(a, { name: "alice" });
    const res = await fetch(`${a.url}/api/rooms/lobby/members?cursor=99999999999999999999`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe("bad_cursor");
    const ok = await fetch(`${a.url}/api/rooms/lobby/members?cursor=18446744073709551615`);
    expect(ok.status).toBe(200);
  });
});

describe.skipIf(!REDIS)("Redis down", () => {
  test("refusals during an outage say the store is unavailable, not that a name is taken or a user unknown", async () => {
    const a = await node("a");
    const alice = await connect(a, { name: "alice" });
    await cluster.redis.stop();
    await eventually(async () => ((await (await fetch(`${a.url}/healthz`)).json()) as { redis: string }).redis === "down", 5000, "redis down");
    const res = await fetch(`${a.url}/ws?name=newcomer`, { headers: { upgrade: "websocket", connection: "upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" } });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toBe("store_unavailable");
    alice.send({ type: "private", to: "somebody", text: "hi", ref: "p" });
    expect(await alice.next("error", (e) => e.ref === "p")).toMatchObject({ code: "store_unavailable" });
    await cluster.redis.boot();
  }, 20_000);

  test("the server API's bans and mutes during an outage answer 503 store_unavailable, not 500", async () => {
    const a = await node("a");
    await cluster.redis.stop();
    await eventually(async () => ((await (await fetch(`${a.url}/healthz`)).json()) as { redis: string }).redis === "down", 5000, "redis down");
    const json = { "content-type": "application/json" };
    const answers = await Promise.all([
      fetch(`${a.url}/api/bans`, { method: "POST", headers: json, body: JSON.stringify({ ip: "203.0.113.7" }) }),
      fetch(`${a.url}/api/bans`),
      fetch(`${a.url}/api/mutes`),
      fetch(`${a.url}/api/bans/someid`, { method: "DELETE" }),
    ]);
    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: string }).error).toBe("store_unavailable");
    }
    await cluster.redis.boot();
  }, 20_000);

  test("a send whose connection drops after it went out answers store_uncertain, not store_unavailable", async () => {
    const a = await node("a");
    const alice = await connect(a, { name: "alice", room: "lobby" });
    const r = await adminClient();
    // Redis holds writes, so the send is out on the wire and unanswered when its connection dies.
    await r.send("CLIENT", ["PAUSE", "3000", "WRITE"]);
    try {
      alice.send({ type: "chat", text: "did it go through?", ref: "u" });
      await Bun.sleep(150);
      await r.send("CLIENT", ["KILL", "TYPE", "normal", "SKIPME", "yes"]);
      expect(await alice.next("error", (e) => e.ref === "u")).toMatchObject({ code: "store_uncertain" });
    } finally {
      await r.send("CLIENT", ["UNPAUSE"]);
    }
    // The node reconnects by itself and sending works again.
    await eventually(async () => {
      alice.send({ type: "chat", text: "again", ref: "v" });
      const answer = await alice.next("message", (m) => m.text === "again", 1000).catch(() => null);
      return answer !== null;
    }, 10_000, "sending works after the reconnect");
  }, 20_000);

  test("burying a dead node touches only that node's users (no scan over every name)", async () => {
    const a = await node("a");
    const users: TestClient[] = [];
    for (let k = 0; k < 20; k++) users.push(await connect(a, { name: `user${k}` }));
    const dead = await spawnServer(["bun", "src/server.ts"], { HOST: "127.0.0.1", PORT: "0", REDIS_URL: cluster.redis.url, NODE_ID: "dead" });
    child(dead);
    const victim = await TestClient.connect(`ws://127.0.0.1:${dead.port}/ws`, { name: "victim" });
    cluster.track(victim);
    const r = await adminClient();
    await r.send("CONFIG", ["RESETSTAT"]);
    dead.proc.kill("SIGKILL");
    const watcher = users[0]!;
    await watcher.next("presence", (p) => (p.left as string[]).includes("victim"), 20_000);
    const stats = (await r.send("INFO", ["commandstats"])) as string;
    expect(stats).not.toContain("cmdstat_hgetall");
    expect(stats).not.toContain("cmdstat_hkeys");
  }, 40_000);
});
