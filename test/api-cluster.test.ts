// The server API across two nodes joined by Redis: a request to either node acts on every
// node; bans survive a node's restart; webhook events arrive once per cluster.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { apiClient } from "./helpers/api.ts";
import { eventually, handshake, TestClient, type Frame } from "./helpers/client.ts";
import { RedisServer } from "./helpers/redis.ts";
import { spawnServer, type ChildServer } from "./helpers/spawn-server.ts";
import { redisAvailable } from "./helpers/tools.ts";
import { WebhookReceiver } from "./helpers/webhook-receiver.ts";

// test/setup.ts's 30 s default reaches only the first file bun test loads (Bun 1.4.5): say it here.
setDefaultTimeout(30_000);

const REDIS = await redisAvailable();
const KEY = "cluster-api-key-0123456789";
const SECRET = "webhook-secret-for-tests";

let redis: RedisServer;
let receiver: WebhookReceiver;
const nodes: Record<string, ChildServer> = {};
const clients: TestClient[] = [];

async function startNode(id: string): Promise<ChildServer> {
  const n = await spawnServer(["bun", "src/server.ts"], {
    HOST: "127.0.0.1", PORT: "0", REDIS_URL: redis.url, NODE_ID: id, RATE_LIMIT: "0", PRESENCE_WINDOW: "30",
    API_KEY: KEY, WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: SECRET,
  });
  nodes[id] = n;
  return n;
}

async function stopNode(id: string): Promise<void> {
  const n = nodes[id]!;
  n.proc.kill("SIGTERM");
  await n.proc.exited;
}

beforeAll(async () => {
  if (!REDIS) return;
  redis = await RedisServer.start();
  receiver = WebhookReceiver.start(SECRET);
  await Promise.all([startNode("a"), startNode("b")]);
  // Each node must know the other before requests can wait for it.
  await eventually(async () => {
    const h = (await (await fetch(`http://127.0.0.1:${nodes.a!.port}/healthz`)).json()) as { cluster: string[] };
    return h.cluster.includes("b");
  }, 8000, "the nodes to see each other");
});

afterAll(async () => {
  if (!REDIS) return;
  for (const n of Object.values(nodes)) n.proc.kill("SIGKILL");
  await receiver.stop();
  await redis.stop();
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

const api = (id: string) => apiClient(`http://127.0.0.1:${nodes[id]!.port}`, KEY);

async function connect(id: string, query: Record<string, string | number>): Promise<TestClient> {
  const c = await TestClient.connect(`ws://127.0.0.1:${nodes[id]!.port}/ws`, query);
  clients.push(c);
  return c;
}

describe.skipIf(!REDIS)("server API across two nodes", () => {
  test("announce to one node reaches every connection on every node", async () => {
    const people = [await connect("a", { name: "ann1" }), await connect("b", { name: "ben1", room: "dev" }), await connect("b", { name: "cat1" })];
    const answer = await api("a").post("/api/announce", { text: "maintenance at noon" });
    expect(answer.body).toMatchObject({ nodes: ["a", "b"], missing: [] });
    expect(answer.body.connections).toBeGreaterThanOrEqual(3);
    for (const c of people) expect(await c.next("system")).toEqual({ type: "system", text: "maintenance at noon" });
    await api("b").post("/api/announce", { text: "dev only", room: "dev" });
    expect(await people[1]!.next("system")).toMatchObject({ text: "dev only", room: "dev" });
  });

  test("the backend's messages, published on one node, reach people on the other", async () => {
    const dora = await connect("b", { name: "dora2", room: "news" });
    const sent = await api("a").post("/api/rooms/news/messages", { text: "extra!", from: "newsbot" });
    expect(await dora.next("message")).toEqual(sent.body as Frame);
    const dm = await api("a").post("/api/users/dora2/messages", { text: "just you" });
    expect(dm.body.state).toBe("delivered");
    expect(await dora.next("private")).toMatchObject({ from: "system", text: "just you", bot: true });
  });

  test("rooms, members and a person's connections are the whole cluster's", async () => {
    const eve = await connect("a", { name: "eve3", room: "r3" });
    await connect("b", { name: "eve3", room: "r3b", resume: eve.frames[0]!.resume as string });
    await connect("b", { name: "fay3", room: "r3" });
    const rooms = (await api("b").get("/api/rooms?cursor=r2&limit=2")).body;
    expect(rooms.rooms).toEqual([{ room: "r3", online: 2 }, { room: "r3b", online: 1 }]);
    const members = (await api("a").get("/api/rooms/r3/members")).body;
    expect((members.members as { name: string }[]).map((m) => m.name).sort()).toEqual(["eve3", "fay3"]);
    const who = (await api("a").get("/api/users/eve3")).body;
    expect(who).toMatchObject({ name: "eve3", online: true, rooms: ["r3", "r3b"], nodes: ["a", "b"], missing: [] });
    expect((who.connections as { node: string }[]).map((c) => c.node).sort()).toEqual(["a", "b"]);
  });

  test("kick on one node closes the person's connections on both, with 4001", async () => {
    const gil = await connect("a", { name: "gil4" });
    const gilToo = await connect("b", { name: "gil4", resume: gil.frames[0]!.resume as string });
    const answer = await api("b").post("/api/users/gil4/kick", { reason: "time out" });
    expect(answer.body).toMatchObject({ closed: 2, nodes: ["b", "a"], missing: [] });
    for (const c of [gil, gilToo]) expect(await c.closed()).toEqual({ code: 4001, reason: "time out" });
  });

  test("a ban on one node refuses on the other, survives that node's restart, and is lifted everywhere", async () => {
    const hal = await connect("b", { name: "hal5" });
    const ban = await api("a").post("/api/bans", { name: "hal5", reason: "spam" });
    expect(ban.body).toMatchObject({ closed: 1, nodes: ["a", "b"], missing: [] });
    expect(await hal.closed()).toEqual({ code: 4003, reason: "spam" });
    expect((await handshake(`http://127.0.0.1:${nodes.b!.port}`, "/ws?name=hal5")).status).toBe(403);
    await stopNode("b");
    await startNode("b");
    expect((await handshake(`http://127.0.0.1:${nodes.b!.port}`, "/ws?name=HAL5")).status).toBe(403);
    await eventually(async () => ((await (await fetch(`http://127.0.0.1:${nodes.a!.port}/healthz`)).json()) as { cluster: string[] }).cluster.includes("b"), 8000, "b back in the cluster");
    const lifted = await api("a").del(`/api/bans/${(ban.body.ban as { id: string }).id}`);
    expect(lifted.body.missing).toEqual([]);
    expect((await handshake(`http://127.0.0.1:${nodes.b!.port}`, "/ws?name=hal5&room=x")).status).not.toBe(403);
  }, 30_000);

  test("a mute on one node holds on the other; unmuted there too", async () => {
    const ivy = await connect("b", { name: "ivy6" });
    const mute = await api("a").post("/api/mutes", { name: "ivy6", room: "lobby" });
    expect(mute.body.missing).toEqual([]);
    ivy.send({ type: "chat", text: "hello?", ref: "m" });
    expect(await ivy.next("error")).toMatchObject({ code: "muted", ref: "m" });
    await api("a").del(`/api/mutes/${(mute.body.mute as { id: string }).id}`);
    ivy.send({ type: "chat", text: "hello!", ref: "u" });
    expect(await ivy.next("message")).toMatchObject({ text: "hello!", ref: "u" });
  });

  test("delete on one node: gone from the shared history, members on both nodes told", async () => {
    const jo = await connect("a", { name: "jo7", room: "del" });
    const kim = await connect("b", { name: "kim7", room: "del" });
    jo.send("oops");
    const sent = await kim.next("message");
    expect((await api("b").del(`/api/rooms/del/messages/${sent.id}`)).body.removed).toBe(true);
    for (const c of [jo, kim]) expect(await c.next("deleted")).toEqual({ type: "deleted", room: "del", id: sent.id as number });
    expect(((await api("a").get("/api/rooms/del/messages")).body.messages as unknown[]).length).toBe(0);
  });

  test("either node refuses a missing key, a wrong one, bad input and wrong methods alike", async () => {
    for (const id of ["a", "b"]) {
      const url = `http://127.0.0.1:${nodes[id]!.port}`;
      expect((await apiClient(url).get("/api/rooms")).status).toBe(401);
      expect((await apiClient(url, "wrong").post("/api/announce", { text: "x" })).status).toBe(401);
      expect((await api(id).post("/api/announce", { text: "" })).body.error).toBe("empty_text");
      expect((await api(id).post("/api/bans", { ip: "not an address" })).status).toBe(400);
      expect((await api(id).post("/api/users/nobody-here/kick")).status).toBe(404);
      expect((await fetch(`${url}/api/announce`)).headers.get("allow")).toBe("POST");
    }
  });

  test("webhooks: every event once per cluster, however many nodes saw it", async () => {
    const lia = await connect("a", { name: "lia8", room: "hooked" });
    const person = (lia.frames[0]!.you as { person: string }).person;
    const liaToo = await connect("b", { name: "lia8", room: "hooked", resume: lia.frames[0]!.resume as string });
    const max = await connect("b", { name: "max8", room: "hooked" });
    lia.send("hello hooks");
    await max.next("message", (m) => m.text === "hello hooks");
    for (const c of [lia, liaToo, max]) c.close();
    const inRoom = (d: Record<string, unknown>) => d.room === "hooked";
    await eventually(() => receiver.of("room.vacated", inRoom).length > 0 && receiver.of("user.disconnected", (d) => d.person === person).length > 0, 8000, "the last events");
    await Bun.sleep(600); // a duplicate would come in the next batch
    const count = (type: string, match: (d: Record<string, unknown>) => boolean) => receiver.of(type, match).length;
    expect({
      occupied: count("room.occupied", inRoom), joined: count("member.joined", inRoom), stored: count("message.stored", (d) => d.text === "hello hooks"),
      left: count("member.left", inRoom), vacated: count("room.vacated", inRoom),
      liaConnected: count("user.connected", (d) => d.person === person), liaDisconnected: count("user.disconnected", (d) => d.person === person),
    }).toEqual({ occupied: 1, joined: 2, stored: 1, left: 2, vacated: 1, liaConnected: 1, liaDisconnected: 1 });
    expect(receiver.of("message.stored", (d) => d.text === "hello hooks")[0]!.data).toMatchObject({ kind: "room", room: "hooked", from: "lia8", person });
    expect(receiver.forged).toBe(0);
  }, 20_000);
});
