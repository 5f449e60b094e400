// People across nodes: one person with connections on two nodes is one member of a room,
// joins and leaves once, gets private messages on every connection, and finds what was
// sent while they were away on whichever node they come back to.
import { nameKey } from "../src/protocol/names.ts";
import { describe, expect, test } from "bun:test";
import type { ChatServer } from "../src/app.ts";
import { eventually, handshake, quietFor, TestClient, type Frame } from "./helpers/client.ts";
import { redisNodes } from "./helpers/redis-nodes.ts";
import { redisAvailable } from "./helpers/tools.ts";

const REDIS = await redisAvailable();

const cluster = redisNodes(REDIS);
const node = cluster.node;

async function connect(s: ChatServer, query: Record<string, string | number>): Promise<TestClient> {
  const c = await TestClient.connect(s.wsUrl, query);
  cluster.track(c);
  return c;
}

const welcomeOf = (c: TestClient) => c.frames.find((f) => f.type === "welcome")!;

describe.skipIf(!REDIS)("one person, two nodes", () => {
  test("one member, one join, one leave; private messages reach both connections", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const bob = await connect(a, { name: "bob" });
    const onA = await connect(a, { name: "alice" });
    await bob.next("presence", (p) => (p.joined as string[]).includes("alice"));
    const onB = await connect(b, { name: "alice", resume: welcomeOf(onA).resume as string });
    expect(welcomeOf(onB)).toMatchObject({ online: 2, you: { person: (welcomeOf(onA).you as { person: string }).person } });
    await quietFor(bob, "presence", 200, (p) => (p.joined as string[]).includes("alice"));
    bob.send({ type: "who", ref: "w" });
    expect(await bob.next("who")).toMatchObject({ online: 2 });
    bob.send({ type: "private", to: "alice", text: "both nodes" });
    for (const c of [onA, onB]) expect(await c.next("private")).toMatchObject({ text: "both nodes", box: 1 });
    onA.close();
    await quietFor(bob, "presence", 300, (p) => (p.left as string[]).includes("alice"));
    onB.close();
    expect(await bob.next("presence", (p) => (p.left as string[]).includes("alice"))).toMatchObject({ online: 1 });
  }, 20_000);

  test("a connection on another node asking for a look-alike of the person's name joins under the person's name", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const bob = await connect(a, { name: "bob" });
    const onA = await connect(a, { name: "alice" });
    await bob.next("presence", (p) => (p.joined as string[]).includes("alice"));
    // "AIice" (capital I) has alice's key: the resume key makes it alice's connection on b.
    const onB = await connect(b, { name: "AIice", resume: welcomeOf(onA).resume as string });
    expect(welcomeOf(onB).you).toMatchObject({ name: "alice" });
    onB.send({ type: "chat", text: "from b" });
    expect(await bob.next("message", (m) => m.text === "from b")).toMatchObject({ from: "alice" });
    expect(await a.engine.directory.lookup(nameKey("alice"))).toMatchObject({ name: "alice" });
  }, 20_000);

  test("a resume key whose person is connected under another name joins as them, on any node", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const onA = await connect(a, { name: "alice" });
    onA.send({ type: "nick", name: "alicia", ref: "n" });
    await onA.next("nick", (f) => f.ref === "n");
    // A tab that was away during the rename still asks for "alice": it is alicia's.
    const onB = await connect(b, { name: "alice", resume: welcomeOf(onA).resume as string });
    expect(welcomeOf(onB).resume).toBeUndefined();
    expect(welcomeOf(onB).you).toMatchObject({ name: "alicia", person: (welcomeOf(onA).you as { person: string }).person });
  }, 20_000);

  test("the name is held cluster-wide; a message sent while away is delivered on another node", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const alice = await connect(a, { name: "alice" });
    const bob = await connect(a, { name: "bob" });
    const key = welcomeOf(bob).resume as string;
    bob.close();
    await eventually(async () => (await b.engine.directory.lookup(nameKey("bob")))?.online === false, 5000, "bob away");
    expect((await handshake(`http://127.0.0.1:${b.port}`, "/ws?name=bob")).status).toBe(409);
    alice.send({ type: "private", to: "bob", text: "while you were away", ref: "q" });
    expect(await alice.next("private")).toMatchObject({ state: "queued" });
    const back = await connect(b, { name: "bob", resume: key });
    expect((await back.next("private")) as Frame).toMatchObject({ text: "while you were away", from: "alice" });
  }, 20_000);

  test("after a nick on one node, the person's connections on another speak under the new name", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const onA = await connect(a, { name: "alice" });
    const onB = await connect(b, { name: "alice", resume: welcomeOf(onA).resume as string });
    const watcher = await connect(b, { name: "watcher" });
    onA.send({ type: "nick", name: "alicia", ref: "n" });
    await onB.next("nick", (f) => f.name === "alicia");
    // The old name is free at once: someone else may take it (on b) ...
    const mallory = await connect(b, { name: "alice" });
    expect(welcomeOf(mallory).resume).toBeDefined();
    // ... and alicia's tab on b must not go on speaking as "alice".
    await eventually(() => b.engine.registry.people.get((welcomeOf(onB).you as { person: string }).person)?.name === "alicia", 5000, "b renamed");
    onB.send({ type: "chat", text: "from b after the rename" });
    expect(await watcher.next("message", (m) => m.text === "from b after the rename")).toMatchObject({ from: "alicia" });
  }, 20_000);

  test("nick moves the person's name on every node", async () => {
    const [a, b] = [await node("a"), await node("b")];
    const alice = await connect(a, { name: "alice" });
    const watcher = await connect(b, { name: "watcher" });
    alice.send({ type: "nick", name: "alicia" });
    await watcher.next("nick");
    await Bun.sleep(50);
    watcher.send({ type: "who", ref: "w" });
    expect(((await watcher.next("who")).members as string[]).sort()).toEqual(["alicia", "watcher"]);
    const fresh = await connect(b, { name: "alice" });
    expect(welcomeOf(fresh).resume).toBeDefined();
  }, 20_000);
});
