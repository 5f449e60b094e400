// bunchat/client against two nodes joined through Redis: requests answered across nodes,
// a reader that hops between nodes on every reconnect while messages keep flowing (no
// gap, no duplicate, room and inbox), and a node restart.
import { describe, expect, test } from "bun:test";
import { connect, type ChatClient, type ConnectOptions, type MessageFrame, type PrivateFrame } from "../src/client/index.ts";
import { eventually } from "./helpers/client.ts";
import { redisNodes } from "./helpers/redis-nodes.ts";
import { redisAvailable } from "./helpers/tools.ts";

const REDIS = await redisAvailable();

const cluster = redisNodes(REDIS);
const node = cluster.node;

async function client(url: string, options: ConnectOptions): Promise<ChatClient> {
  const c = connect(url, { reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
  cluster.track(c);
  await c.ready();
  return c;
}

/** A WebSocket class that connects to the next node on every attempt, and can be dropped. */
function hopping(ports: () => number[]): { WebSocket: NonNullable<ConnectOptions["WebSocket"]>; sockets: WebSocket[]; ports: number[] } {
  const sockets: WebSocket[] = [];
  const used: number[] = [];
  class Hopper extends WebSocket {
    constructor(url: string, protocols?: string[]) {
      const list = ports();
      const target = new URL(url);
      target.port = String(list[sockets.length % list.length]);
      super(target.toString(), protocols);
      used.push(Number(target.port));
      sockets.push(this);
    }
  }
  return { WebSocket: Hopper, sockets, ports: used };
}

describe.skipIf(!REDIS)("the client on two nodes", () => {
  test("requests are answered across nodes", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const alice = await client(a.wsUrl, { name: "alice" });
    const bob = await client(b.wsUrl, { name: "bob" });
    await eventually(() => alice.rooms.get("lobby")!.members.has("bob"), 5000, "bob in alice's member set");
    const seen: MessageFrame[] = [];
    bob.on("message", (m) => seen.push(m));
    const sent = await alice.send("across");
    await eventually(() => seen.some((m) => m.id === sent.id));
    expect(await alice.private("bob", "psst")).toMatchObject({ state: "delivered", to: "bob" });
    await expect(alice.private("nobody", "hi")).rejects.toMatchObject({ code: "no_such_user" });
    await expect(bob.nick("alice")).rejects.toMatchObject({ code: "name_taken" });
  });

  test("a reader hopping between nodes misses nothing and sees nothing twice, in rooms and inbox", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const hop = hopping(() => [b.port, a.port]);
    const bob = await client(a.wsUrl, { name: "bob", WebSocket: hop.WebSocket });
    const alice = await client(a.wsUrl, { name: "alice" });
    const rooms: MessageFrame[] = [];
    const privates: PrivateFrame[] = [];
    bob.on("message", (m) => rooms.push(m));
    bob.on("private", (m) => privates.push(m));
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      acks.push(alice.send(`n${i}`));
      if (i % 10 === 5) acks.push(alice.private("bob", `p${i}`));
      if (i % 50 === 25) hop.sockets.at(-1)!.close();
      if (i % 10 === 0) await Bun.sleep(1);
    }
    await Promise.all(acks);
    await eventually(() => rooms.length >= 200 && privates.length >= 20, 15_000, "everything at bob");
    expect(new Set(hop.ports)).toEqual(new Set([a.port, b.port]));
    expect(rooms.map((m) => m.text)).toEqual(Array.from({ length: 200 }, (_, i) => `n${i}`));
    expect(privates.map((m) => m.text)).toEqual(Array.from({ length: 20 }, (_, i) => `p${i * 10 + 5}`));
    expect(privates.map((m) => m.box)).toEqual(Array.from({ length: 20 }, (_, i) => privates[0]!.box! + i));
  });

  test("a node restart: its clients come back through the other node with what was said meanwhile", async () => {
    const [a, b] = [await node("a"), await node("b")];
    let aPort = a.port;
    const hop = hopping(() => [aPort, b.port]);
    const alice = await client(a.wsUrl, { name: "alice", rooms: ["dev"], WebSocket: hop.WebSocket });
    await eventually(() => alice.rooms.get("dev")?.epoch !== undefined);
    const bob = await client(b.wsUrl, { name: "bob", room: "dev" });
    const got: MessageFrame[] = [];
    alice.on("message", (m) => got.push(m));
    await bob.send("before", { room: "dev" });
    await a.stop();
    aPort = b.port; // node a is gone: every attempt goes to b
    await bob.send("during", { room: "dev" });
    await bob.private("alice", "waiting for you");
    const privates: PrivateFrame[] = [];
    alice.on("private", (m) => privates.push(m));
    await eventually(() => got.some((m) => m.text === "during") && privates.length === 1, 15_000, "alice caught up on b");
    expect(got.map((m) => m.text)).toEqual(["before", "during"]);
    expect(privates[0]).toMatchObject({ from: "bob", text: "waiting for you" });
    expect(await alice.send("back", { room: "dev" })).toMatchObject({ room: "dev", from: "alice" });
  });
});
