// Tests that attack a running server (a child process, so its memory is its own):
// seeded fuzzing, a flood, a reader that stops reading, and SIGTERM under load.
// Every loop is bounded in count and time; every target is loopback.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, TestClient, type Frame } from "./helpers/client.ts";
import { seededRandom } from "./helpers/random.ts";
import { rawConnect } from "./helpers/raw-socket.ts";
import { rssKb, spawnServer, type ChildServer } from "./helpers/spawn-server.ts";

const children: ChildServer[] = [];
const clients: TestClient[] = [];
const dirs: string[] = [];

async function serve(env: Record<string, string>): Promise<ChildServer> {
  const child = await spawnServer(["bun", "src/server.ts"], { HOST: "127.0.0.1", PORT: "0", HISTORY_DB: "off", PRESENCE_WINDOW: "50", ...env });
  children.push(child);
  return child;
}

async function connect(child: ChildServer, query: Record<string, string | number>): Promise<TestClient> {
  const c = await TestClient.connect(`ws://127.0.0.1:${child.port}/ws`, query);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const child of children.splice(0)) {
    child.proc.kill("SIGKILL");
    await child.proc.exited;
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// ---- fuzz ------------------------------------------------------------------------------

type Fuzz = { frame: string | Uint8Array<ArrayBuffer>; invalid: boolean };

function fuzzer(random: () => number) {
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const randomString = (max: number) => {
    const pools = ["abc xyz 123", "日本語中文한국어", "\u202E\u202D\u2066\u200F", "😀🎉👋", "<>&\"'`/\\", "\u00A0\u3000"];
    let out = "";
    const n = 1 + int(max);
    for (let i = 0; i < n; i++) out += pick([...pick(pools)]);
    return out;
  };
  const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
  const generators: (() => Fuzz)[] = [
    () => ({ frame: crypto.getRandomValues(new Uint8Array(1 + int(512))), invalid: true }),
    () => ({ frame: randomString(40).replace(/^\{/, "x"), invalid: false }),
    // Deep nesting, kept under MAX_PAYLOAD so it reaches the decoder.
    () => ({ frame: `{"type":"chat","text":${deep(1 + int(8000))}}`, invalid: true }),
    () => ({ frame: "{".repeat(1 + int(5000)), invalid: true }),
    () => ({ frame: `{"type":"join","room":"r","since":${pick(["1e400", "-5", "1.5", "9007199254740993", '"7"', "[]"])}}`, invalid: true }),
    () => ({ frame: `{"type":"history","limit":${pick(["99999999999999999999", "-1", "1001", "null,\"before\":-1"])}}`, invalid: true }),
    () => ({ frame: pick(['{"__proto__":{"type":"chat"},"text":"x"}', '{"type":"constructor"}', '{"type":"__proto__"}', '{"type":"toString"}', '{"type":"chat","text":{"toString":"x"}}', '{"type":"hasOwnProperty","text":"x"}']), invalid: true }),
    () => ({ frame: `{"type":"nick","name":"${pick(["ad\\u202Emin", "x\\u0000y", "", " lead", "z".repeat(40)])}"}`, invalid: true }),
    () => ({ frame: `bell\u0007${randomString(5)}`, invalid: true }),
    () => ({ frame: "", invalid: true }),
    () => ({ frame: `{"type":"chat","text":"${"\\ud800"}"}`, invalid: true }),
    () => ({ frame: "m".repeat(4001 + int(12000)), invalid: true }),
    () => ({ frame: `{"type":"private","to":"${randomString(8)}","text":"hi"}`, invalid: true }),
    () => ({ frame: `{"type":"${pick(["chat", "join", "leave", "who", "typing", "ping", "history", "nick", "private"])}","${pick(["room", "text", "to", "name", "ref"])}":${pick(["1", "true", "null", '"ok"', "{}", "[]", '"' + randomString(6) + '"'])}}`, invalid: false }),
    () => ({ frame: `{"type":"join","room":"${pick(["fuzz", "a b", "../etc", "x".repeat(65), "ok-room"])}"}`, invalid: false }),
  ];
  return () => pick(generators)();
}

describe("fuzz", () => {
  const seed = Number(process.env.FUZZ_SEED ?? 20261126);

  test(`thousands of hostile frames: the server stays up and flat, others keep chatting (seed ${seed})`, async () => {
    const child = await serve({ RATE_LIMIT: "0", MAX_PAYLOAD: "16384" });
    const alice = await connect(child, { name: "alice" });
    const bob = await connect(child, { name: "bob" });
    const fuzzers = await Promise.all([0, 1, 2, 3].map((i) => connect(child, { name: `fuzz${i}` })));
    const random = seededRandom(seed);
    const next = fuzzer(random);
    let rssAfterWarmup = 0;
    let sent = 0;
    const rounds = 60;
    const perRound = 25;
    try {
      for (let round = 0; round < rounds; round++) {
        await Promise.all(
          fuzzers.map(async (c, i) => {
            const before = c.all("error").length;
            let invalid = 0;
            for (let k = 0; k < perRound; k++) {
              const f = next();
              if (f.invalid) invalid++;
              c.ws.send(f.frame);
              sent++;
            }
            const ref = `sync-${round}-${i}`;
            c.send({ type: "ping", ref });
            await c.next("pong", (p) => p.ref === ref, 10_000);
            expect(c.closeEvent).toBeNull();
            // Every frame invalid by construction was answered with an error frame.
            expect(c.all("error").length - before).toBeGreaterThanOrEqual(invalid);
            for (const e of c.all("error")) expect(typeof e.code).toBe("string");
          }),
        );
        alice.send(`alice ${round}`);
        if (round === 5) rssAfterWarmup = await rssKb(child.proc.pid);
      }
      await bob.next("message", (m) => m.text === `alice ${rounds - 1}`, 10_000);
    } catch (error) {
      console.error(`fuzz failed with FUZZ_SEED=${seed}; replay with FUZZ_SEED=${seed} bun test test/abuse.test.ts`);
      throw error;
    }
    // Bob got every message of alice's, in order; nobody's connection was disturbed.
    expect(bob.all("message").filter((m) => m.from === "alice").map((m) => m.text)).toEqual(Array.from({ length: rounds }, (_, i) => `alice ${i}`));
    for (const c of [alice, bob, ...fuzzers]) expect(c.closeEvent).toBeNull();
    const rssAfter = await rssKb(child.proc.pid);
    expect(sent).toBe(rounds * perRound * 4);
    // Flat: growth after warm-up stays far below what leaking the frames would cost.
    expect(rssAfter - rssAfterWarmup).toBeLessThan(48 * 1024);
    expect((await fetch(`http://127.0.0.1:${child.port}/healthz`)).status).toBe(200);
  });

  test("frames no client library sends: invalid UTF-8 closes 1007, bad opcodes 1002, oversize 1009", async () => {
    const child = await serve({ MAX_PAYLOAD: "1024" });
    const watcher = await connect(child, { name: "watcher" });
    const utf8 = await rawConnect(child.port, "/ws?name=raw1");
    utf8.sendFrame(1, new Uint8Array([0x68, 0xc3, 0x28, 0xff]));
    expect(await utf8.closed).toBe(1007);
    const opcode = await rawConnect(child.port, "/ws?name=raw2");
    opcode.sendFrame(3, new Uint8Array([1, 2]));
    expect(await opcode.closed).toBe(1002);
    const big = await rawConnect(child.port, "/ws?name=raw3");
    big.sendFrame(1, new Uint8Array(4096).fill(0x61));
    expect(await big.closed).toBe(1009);
    watcher.send("still fine");
    expect(await watcher.next("message")).toMatchObject({ text: "still fine" });
  });
});

// ---- flood -----------------------------------------------------------------------------

describe("flood", () => {
  test("one client floods: its excess is rate-limited, others' messages arrive promptly and in order", async () => {
    const child = await serve({ RATE_LIMIT: "20", RATE_BURST: "40", RATE_ABUSE_CLOSE: "0" });
    const flooder = await connect(child, { name: "flooder" });
    const alice = await connect(child, { name: "alice" });
    const bob = await connect(child, { name: "bob" });
    let flooding = true;
    let floodSent = 0;
    const flood = (async () => {
      while (flooding && floodSent < 20_000) {
        for (let i = 0; i < 200; i++) flooder.send(`flood ${floodSent++}`);
        await Bun.sleep(5);
      }
    })();
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const sentAt = performance.now();
      alice.send(`alice ${i}`);
      await bob.next("message", (m) => m.text === `alice ${i}`, 5000);
      latencies.push(performance.now() - sentAt);
      await Bun.sleep(20);
    }
    flooding = false;
    await flood;
    expect(bob.all("message").filter((m) => m.from === "alice").map((m) => m.text)).toEqual(Array.from({ length: 20 }, (_, i) => `alice ${i}`));
    const delivered = bob.all("message").filter((m) => m.from === "flooder").length;
    await eventually(() => flooder.all("error").length > 0, 3000, "rate_limited errors");
    expect(flooder.all("error").every((e) => e.code === "rate_limited")).toBe(true);
    // The flooder got through about its burst plus 20/s, nowhere near what it sent.
    expect(delivered).toBeLessThan(floodSent / 4);
    expect(Math.max(...latencies)).toBeLessThan(2000);
  });
});

// ---- slow consumer ---------------------------------------------------------------------

describe("slow consumer", () => {
  test("a reader that stops reading is disconnected by policy; server memory stays bounded", async () => {
    const child = await serve({ RATE_LIMIT: "0", BACKPRESSURE_LIMIT: String(1024 * 1024), MAX_PAYLOAD: "65536", MAX_TEXT_LENGTH: "8000", PING_INTERVAL: "0" });
    const publisher = await connect(child, { name: "publisher" });
    const reader = await connect(child, { name: "reader" });
    const slow = Bun.spawn(["bun", "test/fixtures/frozen-client.ts", `ws://127.0.0.1:${child.port}/ws?name=slow`], { stdout: "pipe" });
    try {
      const { value } = await slow.stdout.getReader().read();
      expect(new TextDecoder().decode(value)).toContain("ready");
      slow.kill("SIGSTOP");
      const before = await rssKb(child.proc.pid);
      const chunk = "x".repeat(7900);
      const total = 4000; // ~32 MB toward a client that reads nothing
      for (let i = 0; i < total; i++) {
        publisher.send({ type: "chat", text: `${i} ${chunk}` });
        if (i % 100 === 99) await reader.next("message", (m) => String(m.text).startsWith(`${i} `), 10_000);
      }
      const health = async () => (await (await fetch(`http://127.0.0.1:${child.port}/healthz`)).json()) as { connections: number };
      await eventually(async () => (await health()).connections === 2, 10_000, "slow client closed");
      const after = await rssKb(child.proc.pid);
      // Buffering 32 MB for the stopped reader would show here; the policy caps it near 1 MB.
      expect(after - before).toBeLessThan(24 * 1024);
      expect(reader.all("message")).toHaveLength(total);
      expect(reader.closeEvent).toBeNull();
      const metrics = await (await fetch(`http://127.0.0.1:${child.port}/metrics`)).text();
      expect(metrics).toMatch(/bunchat_connections_closed_total\{code="\d+"\} 1/);
    } finally {
      slow.kill("SIGKILL");
    }
  }, 60_000);
});

// ---- shutdown under load ---------------------------------------------------------------

describe("shutdown under load", () => {
  test("SIGTERM while clients publish: exit 0, clients get 1001, every acknowledged message is in history", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bunchat-shutdown-"));
    dirs.push(dir);
    const env = { RATE_LIMIT: "0", HISTORY_DB: join(dir, "chat.db"), HISTORY_LIMIT: "0" };
    const first = await serve(env);
    const writers = await Promise.all([0, 1, 2].map((i) => connect(first, { name: `w${i}` })));
    const stopAt = Date.now() + 5000;
    const pumps = writers.map(async (w, i) => {
      for (let n = 0; n < 2000 && w.ws.readyState === WebSocket.OPEN && Date.now() < stopAt; n++) {
        w.send({ type: "chat", text: `w${i}-${n}`, ref: `w${i}-${n}` });
        if (n % 20 === 19) await Bun.sleep(1);
      }
    });
    const ownAcks = (): Frame[] => writers.flatMap((w, i) => w.all("message").filter((m) => String(m.ref ?? "").startsWith(`w${i}-`)));
    // Enough acknowledged traffic before the signal, counted rather than assumed from timing.
    await eventually(() => ownAcks().length > 300, 5000, "traffic");
    first.proc.kill("SIGTERM");
    expect(await first.proc.exited).toBe(0);
    await Promise.all(pumps);
    for (const w of writers) expect((await w.closed()).code).toBe(1001);
    const acknowledged = ownAcks();
    expect(acknowledged.length).toBeGreaterThan(300);
    const second = await serve(env);
    const stored = new Map<number, string>();
    for (let since = 0; ; ) {
      const page = (await (await fetch(`http://127.0.0.1:${second.port}/api/rooms/lobby/messages?since=${since}&limit=1000`)).json()) as { messages: Frame[]; more: boolean };
      for (const m of page.messages) stored.set(m.id as number, m.text as string);
      if (!page.more) break;
      since = page.messages.at(-1)!.id as number;
    }
    for (const m of acknowledged) expect(stored.get(m.id as number)).toBe(m.text as string);
  }, 60_000);
});
