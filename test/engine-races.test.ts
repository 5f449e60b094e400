// The engine under interleavings, step by step: fake sockets, a fake fan-out and a broker
// whose answers (and deliveries) the test releases when it chooses. Each race found in
// review (issue #10) is a fixed sequence of events here, so it fails or passes every time.
import { describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { LocalBroker } from "../src/broker/local.ts";
import { SqliteStore } from "../src/broker/sqlite.ts";
import { testConfig } from "../src/config.ts";
import { LocalDirectory } from "../src/engine/local-directory.ts";
import { MemoryIdentities } from "../src/broker/identities.ts";
import type { Claim, ClaimRequest, Directory, DirectoryEvent } from "../src/engine/ports.ts";
import type { Registry } from "../src/engine/registry.ts";
import type { Session } from "../src/engine/session.ts";
import { Metrics } from "../src/obs/metrics.ts";
import { nameKey } from "../src/protocol/names.ts";
import { Admission } from "../src/transport/admission.ts";
import { ControlledBroker } from "./helpers/controlled-broker.ts";
import { engineHarness, FakeSocket, settle, type EngineHarness } from "./helpers/fakes.ts";
import { bunchatDialect } from "../src/protocol/dialects/bunchat.ts";
import { inboxConversation, topics } from "../src/engine/topics.ts";

function setup(overrides: Parameters<typeof engineHarness>[1] = {}) {
  const inner = new LocalBroker(new SqliteStore({ path: ":memory:", limit: 1000, maxAgeSeconds: 0 }));
  const broker = new ControlledBroker(inner);
  return { inner, broker, ...engineHarness(broker, overrides) };
}

const texts = (frames: readonly unknown[]) => frames.map((f) => (f as { text?: unknown }).text);

/** alice connected; bob connected once and gone, known by his resume key (away). */
async function bobAway(connect: EngineHarness["connect"]): Promise<{ alice: FakeSocket; resume: string }> {
  const alice = connect("alice");
  const bob = connect("bob");
  await settle();
  const resume = bob.last("welcome")!.resume as string;
  bob.close();
  await settle();
  return { alice, resume };
}

describe("joins and leaves", () => {
  test("joining while the room's last member leaves: the joiner still hears the room", async () => {
    const { broker, connect } = setup();
    const alice = connect("alice", "hot");
    const carol = connect("carol", "other");
    await settle();
    broker.hold("subscribe");
    carol.say({ type: "join", room: "hot" });
    alice.say({ type: "leave", room: "hot" });
    await settle();
    broker.release("subscribe");
    await settle();
    expect(carol.last("joined")).toMatchObject({ room: "hot", online: 1 });
    carol.say({ type: "chat", room: "hot", text: "anyone?", ref: 1 });
    await settle();
    expect(carol.last("message")).toMatchObject({ room: "hot", text: "anyone?", ref: 1 });
  });

  test("a connection that closes during its join leaves nothing subscribed", async () => {
    const { broker, inner, engine, connect } = setup();
    const alice = connect("alice");
    await settle();
    broker.hold("subscribe");
    alice.say({ type: "join", room: "gone" });
    await settle();
    alice.close();
    broker.release("subscribe");
    await settle();
    expect(inner.subscribedTopics()).toBe(0);
    expect(engine.registry.roomCount).toBe(0);
    expect(engine.registry.people.size).toBe(0);
  });

  test("joins in flight count toward MAX_ROOMS_PER_CONNECTION", async () => {
    const { broker, connect } = setup({ maxRoomsPerConnection: 3 });
    const alice = connect("alice");
    await settle();
    broker.hold("subscribe");
    for (let k = 0; k < 10; k++) alice.say({ type: "join", room: `r${k}`, ref: k });
    await settle();
    expect(alice.all("error").map((e) => e.code)).toEqual(Array(8).fill("too_many_rooms"));
    broker.release("subscribe", "reversed");
    await settle();
    expect(alice.all("joined").map((j) => j.room).sort()).toEqual(["r0", "r1"]);
    expect(alice.session.rooms.size).toBe(3);
  });

  test("a history read that fails at join answers store_unavailable and undoes the membership", async () => {
    const { broker, inner, connect } = setup();
    const alice = connect("alice");
    await settle();
    broker.fail("before");
    alice.say({ type: "join", room: "dev", ref: "j" });
    await settle();
    expect(alice.last("error")).toMatchObject({ code: "store_unavailable", ref: "j" });
    expect(alice.session.rooms.has("dev")).toBe(false);
    expect(inner.subscribedTopics()).toBe(2); // lobby and alice's inbox
  });
});

describe("replays meet the live stream", () => {
  test("an empty tail read answered late: messages published meanwhile are in the welcome", async () => {
    const { broker, connect } = setup();
    const alice = connect("alice", "room");
    await settle();
    broker.hold("before");
    const bob = connect("bob", "room");
    await settle();
    alice.say("one");
    alice.say("two");
    await settle();
    expect(bob.all("welcome")).toHaveLength(0);
    broker.release("before");
    await settle();
    expect(texts(bob.last("welcome")!.history as never[])).toEqual(["one", "two"]);
    alice.say("three");
    await settle();
    expect(texts(bob.all("message"))).toEqual(["three"]);
  });

  test("a since-replay answered late continues to what was delivered meanwhile", async () => {
    const { broker, connect } = setup();
    const alice = connect("alice", "room");
    await settle();
    for (const t of ["a", "b", "c"]) alice.say(t);
    await settle();
    broker.hold("after");
    const bob = connect("bob", "room", { since: 1 });
    await settle();
    alice.say("d");
    await settle();
    broker.release("after");
    await settle();
    const welcome = bob.last("welcome")!;
    expect(texts(welcome.history as never[])).toEqual(["b", "c", "d"]);
    expect(welcome.more).toBe(false);
    expect(welcome.incomplete).toBeUndefined();
    alice.say("e");
    await settle();
    expect(texts(bob.all("message"))).toEqual(["e"]);
  });

  test("a read that includes a message not yet delivered here waits for it: no duplicate", async () => {
    const { broker, connect } = setup();
    const alice = connect("alice", "room");
    await settle();
    broker.holdFrames();
    alice.say("early");
    await settle();
    const bob = connect("bob", "room");
    await settle();
    expect(bob.all("welcome")).toHaveLength(0); // waiting for the live stream to reach "early"
    broker.releaseFrames();
    await settle();
    expect(texts(bob.last("welcome")!.history as never[])).toEqual(["early"]);
    expect(bob.all("message")).toHaveLength(0);
    expect(texts(alice.all("message"))).toEqual(["early"]);
  });

  test("a tail page shared by joiners a moment apart still meets the live stream", async () => {
    const inner = new LocalBroker(new SqliteStore({ path: ":memory:", limit: 1000, maxAgeSeconds: 0 }));
    const broker = new ControlledBroker(inner);
    const { connect } = engineHarness(broker, {}, undefined, 60_000);
    const alice = connect("alice", "room");
    await settle();
    alice.say("after alice's tail was read");
    await settle();
    const reads = broker.calls.before;
    const bob = connect("bob", "room");
    await settle();
    expect(broker.calls.before).toBe(reads); // bob was handed alice's page…
    expect(texts(bob.last("welcome")!.history as never[])).toEqual(["after alice's tail was read"]); // …and read on from it
    alice.say("live");
    await settle();
    expect(texts(bob.all("message"))).toEqual(["live"]);
  });

  test("a connect whose inbox read answers late still hands the room's newest messages over", async () => {
    const { broker, connect } = setup();
    const alice = connect("alice", "room");
    const bob = connect("bob", "other");
    await settle();
    const resume = bob.last("welcome")!.resume as string;
    bob.close();
    alice.say({ type: "private", to: "bob", text: "while you were away" });
    await settle();
    broker.hold("after"); // bob's inbox read (he has a message waiting) answers late
    const back = connect("bob", "room", { resume });
    await settle();
    alice.say("said while bob's inbox was read");
    await settle();
    broker.release("after");
    await settle();
    const welcome = back.last("welcome")!;
    const seen = [...texts(welcome.history as never[]), ...texts(back.all("message"))];
    expect(seen).toContain("said while bob's inbox was read");
    expect(back.all("private").map((p) => p.text)).toEqual(["while you were away"]);
  });

  test("frames sent before the welcome wait for it and are counted once", async () => {
    const { broker, metrics, connect } = setup();
    broker.hold("subscribe");
    const bob = connect("bob");
    await settle();
    for (let i = 0; i < 3; i++) bob.say({ type: "ping", ref: i });
    await settle();
    expect(bob.frames).toHaveLength(0);
    broker.release("subscribe");
    await settle();
    expect(bob.frames.map((f) => f.type)).toEqual(["welcome", "pong", "pong", "pong"]);
    expect(metrics.messagesIn.value).toBe(3);
  });

  test("a private message that arrives before the welcome is sent after it", async () => {
    const { broker, connect } = setup();
    const alice = connect("alice");
    await settle();
    broker.hold("before");
    const bob = connect("bob");
    await settle();
    alice.say({ type: "private", to: "bob", text: "early bird" });
    await settle();
    broker.release("before");
    await settle();
    expect(bob.frames.map((f) => f.type)).toEqual(["welcome", "private"]);
  });

  test("a private message parked for a connection that closes before its welcome is the next connection's", async () => {
    const { broker, connect } = setup();
    const { alice, resume } = await bobAway(connect);
    broker.hold("before"); // bob's next connection waits for its room's history: no welcome yet
    const parked = connect("bob", "lobby", { resume });
    await settle();
    alice.say({ type: "private", to: "bob", text: "for whichever tab gets it" });
    await settle();
    parked.close(); // gone before its welcome: nobody saw the message
    await settle();
    broker.release("before");
    await settle();
    const device = connect("bob", "lobby", { resume }); // a new device: no ?inbox= of its own
    await settle();
    expect(device.all("private").map((p) => p.text)).toEqual(["for whichever tab gets it"]);
  });
});

describe("answers that must come", () => {
  test("a since beyond the room's newest id is answered at once (nothing to wait for)", async () => {
    const { connect } = setup();
    const alice = connect("alice", "room");
    await settle();
    alice.say("one");
    await settle();
    const bob = connect("bob", "room", { since: 999 });
    await settle(); // no timer runs: a 2 s wait for ids that never come would leave no welcome here
    expect(bob.last("welcome")).toMatchObject({ history: [] });
  });

  test("a since from an epoch whose history is gone replays what there is, incomplete", async () => {
    const { connect } = setup();
    const alice = connect("alice", "room");
    await settle();
    for (const t of ["a", "b"]) alice.say(t);
    await settle();
    const bob = connect("bob", "room", { since: 1, epoch: "another-epoch" });
    await settle();
    expect(bob.last("welcome")).toMatchObject({ incomplete: true });
    expect(texts(bob.last("welcome")!.history as never[])).toEqual(["a", "b"]);
  });

  test("a nick while every room is still being entered is answered directly", async () => {
    const { broker, connect } = setup();
    const alice = connect("alice", "lobby");
    await settle();
    alice.say({ type: "leave", room: "lobby" });
    broker.hold("subscribe");
    alice.say({ type: "join", room: "dev" });
    alice.say({ type: "nick", name: "alicia", ref: "n" });
    await settle();
    expect(alice.last("nick")).toMatchObject({ from: "alice", name: "alicia", ref: "n" });
    broker.release("subscribe");
    await settle();
  });

  test("a join cut short by a leave is still answered", async () => {
    const { broker, connect } = setup();
    const alice = connect("alice", "lobby");
    await settle();
    broker.hold("subscribe");
    alice.say({ type: "join", room: "dev", ref: "j" });
    alice.say({ type: "leave", room: "dev", ref: "l" });
    await settle();
    broker.release("subscribe");
    await settle();
    expect(alice.last("left")).toMatchObject({ room: "dev", ref: "l" });
    expect(alice.last("error")).toMatchObject({ code: "not_in_room", ref: "j" });
  });
});

describe("the shared tail", () => {
  test("a deleted message is not served to the next joiner from a tail read before the delete", async () => {
    const inner = new LocalBroker(new SqliteStore({ path: ":memory:", limit: 1000, maxAgeSeconds: 0 }));
    const { connect } = engineHarness(inner, {}, undefined, 60_000); // one tail read serves every joiner
    await inner.publish({ kind: "room", room: "dev", from: "alice", text: "keep", ts: 1 });
    const regret = await inner.publish({ kind: "room", room: "dev", from: "alice", text: "regret", ts: 2 });
    const bob = connect("bob", "dev"); // reads (and shares) the tail: both messages
    await settle();
    expect(texts(bob.last("welcome")!.history as unknown[])).toEqual(["keep", "regret"]);
    expect(await inner.delete("dev", regret.id)).toBe(true);
    inner.broadcast(topics.room("dev"), JSON.stringify({ type: "deleted", room: "dev", id: regret.id }));
    await settle();
    expect(bob.last("deleted")).toMatchObject({ room: "dev", id: regret.id });
    const carol = connect("carol", "dev");
    await settle();
    expect(texts(carol.last("welcome")!.history as unknown[])).toEqual(["keep"]);
  });
});

describe("failures", () => {
  test("a publish that cannot be stored answers store_unavailable with the ref; nobody receives it", async () => {
    const { broker, connect } = setup();
    const alice = connect("alice");
    const bob = connect("bob");
    await settle();
    broker.fail("publish");
    alice.say({ type: "chat", text: "lost?", ref: "x" });
    await settle();
    expect(alice.last("error")).toMatchObject({ code: "store_unavailable", ref: "x" });
    expect(bob.all("message")).toHaveLength(0);
  });
});

/** The embedded directory, with claims and renames that answer when the test says. */
class GatedDirectory implements Directory {
  readonly detached: string[] = [];
  private local: LocalDirectory | null = null;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  bind(registry: Registry): this {
    this.local = new LocalDirectory(registry, new MemoryIdentities(), 120_000);
    return this;
  }
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  releaseClaims(): void {
    this.open?.();
    this.gate = null;
  }
  /** Report the inbox's newest position with each claim, read when the claim is made (as Redis's CLAIM does). */
  reportHead: ((id: string) => number) | null = null;
  async claim(request: ClaimRequest, probe?: boolean): Promise<Claim> {
    const answer = await this.local!.claim(request, probe);
    const claim = answer.ok && this.reportHead ? { ...answer, inboxHead: this.reportHead(answer.identity.id) } : answer;
    if (this.gate) await this.gate;
    return claim;
  }
  detach(id: string, delivered: number): void {
    this.detached.push(id);
    this.local!.detach(id, delivered);
  }
  async rename(id: string, key: string, name: string): Promise<boolean> {
    const answer = this.local!.rename(id, key, name);
    if (this.gate) await this.gate;
    return answer;
  }
  private lookupGate: Promise<void> | null = null;
  private openLookups: (() => void) | null = null;
  /** Lookups answer late (as a Redis LOOKUP may), until releaseLookups. */
  holdLookups(): void {
    this.lookupGate = new Promise((resolve) => (this.openLookups = resolve));
  }
  releaseLookups(): void {
    this.openLookups?.();
    this.lookupGate = null;
  }
  async lookup(key: string) {
    const answer = this.local!.lookup(key);
    if (this.lookupGate) await this.lookupGate;
    return answer;
  }
  joined(room: string, id: string, name: string) {
    return this.local!.joined(room, id, name);
  }
  left(room: string, id: string) {
    return this.local!.left(room, id);
  }
  online(room: string) {
    return this.local!.online(room);
  }
  members(room: string, cap: number) {
    return this.local!.members(room, cap);
  }
  view(room: string, cap: number) {
    return this.local!.view(room, cap);
  }
  rooms(after: string, limit: number) {
    return this.local!.rooms(after, limit);
  }
  memberPage(room: string, cursor: string, limit: number) {
    return this.local!.memberPage(room, cursor, limit);
  }
  otherNodes() {
    return this.local!.otherNodes();
  }
  watch(listener: (event: DirectoryEvent) => void): void {
    this.local!.watch(listener);
  }
  health() {
    return {};
  }
  async close(): Promise<void> {}
}

/** `reportHead`: claims report the inbox's newest position, read when made (as Redis's CLAIM does). */
function gatedSetup(reportHead = false) {
  const store = new SqliteStore({ path: ":memory:", limit: 1000, maxAgeSeconds: 0 });
  const inner = new LocalBroker(store);
  const directory = new GatedDirectory();
  if (reportHead) directory.reportHead = (id) => store.lastId(inboxConversation(id));
  const h = engineHarness(inner, {}, directory);
  directory.bind(h.engine.registry);
  return { ...h, directory };
}

describe("a sender's private messages", () => {
  test("are stored in the order sent, whether the recipient is found here or must be looked up", async () => {
    // The first finds bob away (a directory lookup, answering late); by the second, bob is
    // connected here again (no lookup): the second must not overtake the first.
    const { directory, connect } = gatedSetup();
    const { alice, resume } = await bobAway(connect);
    directory.holdLookups();
    alice.say({ type: "private", to: "bob", text: "first" });
    await settle();
    const back = connect("bob", "lobby", { resume });
    await settle();
    alice.say({ type: "private", to: "bob", text: "second" });
    await settle();
    directory.releaseLookups();
    await settle();
    expect(back.all("private").map((p) => [p.text, p.box])).toEqual([["first", 1], ["second", 2]]);
  });
});

describe("the inbox between admission and open", () => {
  test("a private message stored after the claim read the inbox's head, before the connection subscribed, is handed over", async () => {
    // As the Redis directory does: the claim reports the inbox's newest position, and a
    // connection with nothing newer skips the read. What arrives after that report and
    // before the connection listens must still reach it.
    const { directory, connect } = gatedSetup(true);
    const { alice, resume } = await bobAway(connect);
    directory.hold(); // bob's claim has read his inbox's head (empty) and answers late
    const back = connect("bob", "lobby", { resume });
    await settle();
    alice.say({ type: "private", to: "bob", text: "between the claim and the open" });
    await settle();
    directory.releaseClaims();
    await settle();
    expect(back.all("private").map((p) => p.text)).toEqual(["between the claim and the open"]);
  });
});

describe("names", () => {
  test("a nick whose answer comes after the connection closed changes nothing here", async () => {
    const { directory, ...h } = gatedSetup();
    const alice = h.connect("alice");
    const bob = h.connect("bob");
    await settle();
    directory.hold();
    alice.say({ type: "nick", name: "alicia" });
    await settle();
    alice.close();
    directory.releaseClaims();
    await settle();
    expect(h.engine.registry.people.size).toBe(1);
    expect(h.engine.registry.named(nameKey("alicia"))).toBeUndefined();
    expect(bob.all("nick")).toHaveLength(0);
    expect(directory.detached).toEqual([alice.session.person!.id]);
  });

  test("a tab admitted before its person's nick and opened after it speaks under the new name", async () => {
    const h = setup();
    const alice = h.connect("alice");
    const bob = h.connect("bob");
    await settle();
    const resume = alice.last("welcome")!.resume as string;
    // The second tab is admitted: its claim answered, under the name alice had then...
    const claim = await h.engine.directory.claim({ name: "alice", key: nameKey("alice"), resume });
    if (!claim.ok) throw new Error(claim.reason);
    const tab = new FakeSocket(h.fanout, h.engine);
    tab.session = h.engine.newSession({ identity: claim.identity, delivered: claim.delivered, inboxHead: claim.inboxHead, ip: "10.0.0.1", dialect: bunchatDialect, room: "lobby", token: null });
    // ...then the person renames, then the tab opens.
    alice.say({ type: "nick", name: "alicia" });
    await settle();
    await h.engine.open(tab, tab.session);
    tab.say({ type: "chat", room: "lobby", text: "hi from the new tab" });
    await settle();
    expect((tab.last("welcome")!.you as { name: string }).name).toBe("alicia");
    expect(bob.all("message").map((m) => [m.from, m.text])).toEqual([["alicia", "hi from the new tab"]]);
  });

  test("two nicks in a row: the last one asked is the name kept, everywhere", async () => {
    const { directory, ...h } = gatedSetup();
    const alice = h.connect("alice");
    const bob = h.connect("bob");
    await settle();
    directory.hold();
    alice.say({ type: "nick", name: "first" });
    alice.say({ type: "nick", name: "second" });
    await settle();
    directory.releaseClaims();
    await settle();
    directory.releaseClaims();
    await settle();
    expect(bob.all("nick").map((n) => n.name)).toEqual(["first", "second"]);
    expect(alice.session.person!.name).toBe("second");
    expect((await h.engine.directory.lookup(nameKey("second")))?.id).toBe(alice.session.person!.id);
    expect(await h.engine.directory.lookup(nameKey("first"))).toBeNull();
  });
});

describe("admission", () => {
  test("caps are reserved before the first await: 10 handshakes at once against a cap of 3", async () => {
    const { directory, ...h } = gatedSetup();
    const admission = new Admission(testConfig({ maxConnections: 3 }), h.engine, new Metrics(() => 0, Date.now()));
    const server = { requestIP: () => ({ address: "127.0.0.1" }) } as unknown as Server<Session>;
    directory.hold();
    const results = Array.from({ length: 10 }, (_, i) => {
      const url = new URL(`http://127.0.0.1/ws?name=p${i}`);
      return admission.admitOrRefuse(new Request(url), url, server, true);
    });
    directory.releaseClaims();
    const outcomes = await Promise.all(results);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(3);
    expect(outcomes.filter((o) => !o.ok).map((o) => (o.ok ? "" : o.refusal.error))).toEqual(Array(7).fill("server_full"));
    expect(admission.connections).toBe(3);
  });
});

describe("people's rooms under random interleavings", () => {
  // A person is in a room while any of their connections is (entering included); the
  // registry's per-room count of people must say so after any sequence of tabs opening,
  // joining, leaving and closing, with frames in flight between them.
  function random(seed: number): () => number {
    let s = seed;
    return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  }

  for (const seed of [1, 2, 3, 4, 5]) {
    test(`seed ${seed}: each room's count is the people with a connection in it`, async () => {
      const { engine, connect } = setup();
      const next = random(seed);
      const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
      const names = ["ann", "ben", "cid"];
      const rooms = ["lobby", "dev", "ops"];
      const tabs = new Map<string, ReturnType<typeof connect>[]>(names.map((n) => [n, []]));
      const resumeOf = (name: string) => tabs.get(name)!.map((t) => t.frames.find((f) => f.type === "welcome")?.resume).find((r) => r !== undefined) as string | undefined;
      for (const name of names) tabs.get(name)!.push(connect(name, pick(rooms)));
      await settle();
      let secondTabs = 0;
      for (let step = 0; step < 300; step++) {
        const name = pick(names);
        const open = tabs.get(name)!.filter((t) => t.session && !t.closedWith);
        const roll = next();
        if (roll < 0.15 && open.length < 3) {
          const resume = resumeOf(name);
          if (resume !== undefined) {
            tabs.get(name)!.push(connect(name, pick(rooms), { resume }));
            secondTabs++;
          }
        } else if (roll < 0.25 && open.length > 1) {
          pick(open).close();
        } else if (open.length > 0) {
          pick(open).say({ type: roll < 0.65 ? "join" : "leave", room: pick(rooms) });
        }
        if (next() < 0.3) await settle();
      }
      await settle(20);
      const sessions = [...engine.registry.sessions()].filter((s) => !s.closed);
      for (const room of rooms) {
        const people = new Set(sessions.filter((s) => s.rooms.has(room)).map((s) => s.person!.id));
        expect({ room, online: engine.registry.localOnline(room) }).toEqual({ room, online: people.size });
        expect(await engine.directory.online(room)).toBe(people.size);
      }
      expect(engine.registry.roomCount).toBe(rooms.filter((r) => sessions.some((s) => s.rooms.has(r))).length);
      // The sequence did what it is for: people with several tabs, joining and leaving.
      expect(secondTabs).toBeGreaterThan(5);
      expect([...tabs.values()].flat().some((t) => t.all("joined").length > 0 && t.all("left").length > 0)).toBe(true);
    });
  }
});
