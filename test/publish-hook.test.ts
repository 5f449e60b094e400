// The publish hook: the backend allows, rejects or replaces each message before it is
// stored; a timeout or failure follows PUBLISH_HOOK_FAILURE (closed: refused, open: let
// through). First against a real local Bun hook server, then step by step with a hook the
// test answers by hand (the order of one connection's messages, re-checks after the wait).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { LocalBroker } from "../src/broker/local.ts";
import { SqliteStore } from "../src/broker/sqlite.ts";
import type { PublishCheck, Verdict } from "../src/engine/gate.ts";
import type { PendingMessage } from "../src/engine/ports.ts";
import { SanctionIndex } from "../src/engine/sanctions.ts";
import { verify } from "../src/hooks/signature.ts";
import { eventually, type Frame } from "./helpers/client.ts";
import { engineHarness, settle } from "./helpers/fakes.ts";
import { serverFixture } from "./helpers/fixture.ts";

const SECRET = "hook-secret";
const fixture = serverFixture({ rateLimit: 0, presenceWindow: 10 });

/** What the hook server saw: the requests' bodies, and whether each was signed by us. */
const seen: { body: Record<string, unknown>; signed: boolean }[] = [];
let hook: Server<undefined>;

beforeAll(() => {
  hook = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const raw = await req.text();
      const body = JSON.parse(raw) as { text: string };
      seen.push({ body, signed: await verify(SECRET, req.headers, raw) });
      const [verb, ...rest] = body.text.split(" ");
      switch (verb) {
        case "reject":
          return Response.json({ result: "reject", reason: rest.join(" ") || "not allowed here" });
        case "replace":
          return Response.json({ result: "replace", text: body.text.toUpperCase() });
        case "badreplace":
          return Response.json({ result: "replace", text: "" });
        case "slow":
          await Bun.sleep(Number(rest[0] ?? 1000));
          return Response.json({ result: "allow" });
        case "error":
          return new Response("boom", { status: 500 });
        case "junk":
          return new Response("<html>not json</html>", { status: 200 });
        case "quiet":
          return new Response(null, { status: 204 });
        default:
          return Response.json({ result: "allow" });
      }
    },
  });
});

afterAll(() => hook.stop(true));

async function chat(failure: "open" | "closed" = "closed") {
  const server = await fixture.start({ publishHookUrl: `http://127.0.0.1:${hook.port}/check`, publishHookTimeout: 150, publishHookFailure: failure, webhookSecret: SECRET });
  const alice = await fixture.connect({ name: "alice" });
  const bob = await fixture.connect({ name: "bob" });
  return { server, alice, bob };
}

describe("against a local Bun hook server", () => {
  test("allow: stored as sent; the hook saw the message, signed", async () => {
    const { alice, bob } = await chat();
    alice.send({ type: "chat", text: "hello there", ref: 1 });
    expect(await bob.next("message")).toMatchObject({ from: "alice", text: "hello there", id: 1 });
    expect(seen.at(-1)).toEqual({ body: { type: "room", room: "lobby", from: "alice", person: expect.any(String), text: "hello there", ts: expect.any(Number) }, signed: true });
    alice.send({ type: "chat", text: "quiet means yes", ref: 2 });
    expect(await bob.next("message")).toMatchObject({ text: "quiet means yes" });
  });

  test("reject: the sender is told why, nobody else sees it, nothing is stored", async () => {
    const { server, alice, bob } = await chat();
    alice.send({ type: "chat", text: "reject links are not allowed", ref: "r" });
    expect(await alice.next("error")).toEqual({ type: "error", code: "rejected", message: "links are not allowed", ref: "r" });
    alice.send("after");
    expect((await bob.next("message")).text).toBe("after"); // the first message bob sees
    const history = await (await fetch(`http://127.0.0.1:${server.port}/api/rooms/lobby/messages`)).json();
    expect((history as { messages: Frame[] }).messages.map((m) => [m.id, m.text])).toEqual([[1, "after"]]);
  });

  test("replace: everyone, the sender and the history get the backend's text", async () => {
    const { server, alice, bob } = await chat();
    alice.send({ type: "chat", text: "replace me", ref: "x" });
    expect(await alice.next("message")).toMatchObject({ text: "REPLACE ME", ref: "x" });
    expect((await bob.next("message")).text).toBe("REPLACE ME");
    const history = (await (await fetch(`http://127.0.0.1:${server.port}/api/rooms/lobby/messages`)).json()) as { messages: Frame[] };
    expect(history.messages[0]!.text).toBe("REPLACE ME");
  });

  test("private messages are checked too", async () => {
    const { alice, bob } = await chat();
    alice.send({ type: "private", to: "bob", text: "replace psst" });
    expect(await bob.next("private")).toMatchObject({ text: "REPLACE PSST" });
    expect(seen.at(-1)!.body).toMatchObject({ type: "private", to: "bob", from: "alice" });
  });

  test.each([
    ["a timeout", "slow 400"],
    ["an error status", "error"],
    ["an answer that is not JSON", "junk"],
    ["an invalid replacement", "badreplace"],
  ])("fail closed: %s refuses the message (check_unavailable), counted", async (_what, text) => {
    const { server, alice, bob } = await chat("closed");
    alice.send({ type: "chat", text, ref: "c" });
    expect(await alice.next("error")).toMatchObject({ code: "check_unavailable", ref: "c" });
    alice.send("next");
    expect((await bob.next("message")).text).toBe("next");
    const metrics = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
    expect(metrics).toContain('bunchat_publish_hook_total{result="failed"} 1');
  });

  test.each([
    ["a timeout", "slow 400"],
    ["an error status", "error"],
    ["an answer that is not JSON", "junk"],
  ])("fail open: %s lets the message through", async (_what, text) => {
    const { alice, bob } = await chat("open");
    alice.send({ type: "chat", text, ref: "o" });
    expect(await bob.next("message")).toMatchObject({ text });
    expect(alice.all("error")).toEqual([]);
  });

  test("a hook that cannot be reached at all follows the policy", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    await fixture.start({ publishHookUrl: `http://127.0.0.1:${port}/`, publishHookTimeout: 500, publishHookFailure: "closed" });
    const alice = await fixture.connect({ name: "alice" });
    alice.send({ type: "chat", text: "anyone?", ref: 1 });
    expect(await alice.next("error")).toMatchObject({ code: "check_unavailable" });
  });

  test("one connection's messages are stored in the order sent, however the hook's answers come back", async () => {
    const { alice, bob } = await chat();
    alice.send("slow 100");
    alice.send("fast");
    await eventually(() => bob.all("message").length === 2, 3000, "both messages");
    expect(bob.all("message").map((m) => [m.id, m.text])).toEqual([[1, "slow 100"], [2, "fast"]]);
  });
});

/** A hook the test answers by hand, message by message. */
class HandHook implements PublishCheck {
  readonly asked: { message: PendingMessage; answer: (v: Verdict) => void }[] = [];
  check(message: PendingMessage): Promise<Verdict> {
    return new Promise((resolve) => this.asked.push({ message, answer: resolve }));
  }
}

function handSetup() {
  const broker = new LocalBroker(new SqliteStore({ path: ":memory:", limit: 1000, maxAgeSeconds: 0 }));
  const harness = engineHarness(broker);
  const hand = new HandHook();
  harness.engine.gate.hook = hand;
  return { ...harness, hand };
}

describe("step by step", () => {
  test("answers in reverse order: still stored in the order sent", async () => {
    const { connect, hand } = handSetup();
    const alice = connect("alice");
    const bob = connect("bob");
    await settle();
    for (const text of ["one", "two", "three"]) alice.say(text);
    await settle();
    expect(hand.asked.map((a) => a.message.text)).toEqual(["one", "two", "three"]); // asked at once, concurrently
    hand.asked[2]!.answer({ result: "allow" });
    hand.asked[1]!.answer({ result: "replace", text: "TWO" });
    await settle();
    expect(bob.all("message")).toEqual([]);
    hand.asked[0]!.answer({ result: "allow" });
    await settle();
    expect(bob.all("message").map((m) => [m.id, m.text])).toEqual([[1, "one"], [2, "TWO"], [3, "three"]]);
  });

  test("re-checked after the wait: muted, left the room or closed meanwhile, nothing is stored", async () => {
    const { engine, connect, hand } = handSetup();
    const sanctions = new SanctionIndex();
    engine.gate.sanctions = sanctions;
    const alice = connect("alice");
    const bob = connect("bob");
    const carol = connect("carol", "dev");
    await settle();
    alice.say({ type: "chat", text: "muted meanwhile", ref: 1 });
    bob.say({ type: "chat", text: "left meanwhile", ref: 2 });
    carol.say({ type: "chat", text: "closed meanwhile", ref: 3 });
    await settle();
    sanctions.add({ id: "m", kind: "mute", target: "person", value: alice.session.person!.id, label: "alice", until: 0, reason: "", created: 0, by: "test" });
    bob.say({ type: "leave", room: "lobby" });
    carol.close();
    await settle();
    for (const a of hand.asked) a.answer({ result: "allow" });
    await settle();
    expect(alice.last("error")).toMatchObject({ code: "muted", ref: 1 });
    expect(bob.last("error")).toMatchObject({ code: "not_in_room", ref: 2 });
    expect([...alice.all("message"), ...bob.all("message")]).toEqual([]);
    expect(await engine.broker.before("lobby", undefined, 10)).toEqual({ messages: [], more: false });
    expect(await engine.broker.before("dev", undefined, 10)).toEqual({ messages: [], more: false });
  });

  test("a connection with 100 checks waiting is told to slow down", async () => {
    const { connect, hand } = handSetup();
    const alice = connect("alice");
    await settle();
    for (let i = 0; i <= 100; i++) alice.say(`m${i}`);
    await settle();
    expect(hand.asked.length).toBe(100);
    expect(alice.last("error")).toMatchObject({ code: "rate_limited" });
  });
});
