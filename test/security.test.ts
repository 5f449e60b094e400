// Attacks on identity and transport: tokens of every bad kind, impersonation, room
// claims, expiry, TLS, origins, proxies, handshake floods, and the caps on names, rooms
// and member lists.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signToken } from "../src/transport/jwt.ts";
import { eventually, handshake as rawHandshake, TestClient } from "./helpers/client.ts";
import { serverFixture } from "./helpers/fixture.ts";

const SECRET = "test-secret-of-reasonable-length";
const fixture = serverFixture({ presenceWindow: 20 });
const { start, connect, clients } = fixture;

const now = () => Math.floor(Date.now() / 1000);

function handshake(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return rawHandshake(`http://127.0.0.1:${fixture.server.port}`, path, headers);
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

describe("token auth", () => {
  test("every bad token is refused before the upgrade, with a reason that leaks nothing", async () => {
    await start({ authSecret: SECRET });
    const good = await signToken(SECRET, { sub: "alice", exp: now() + 60 });
    const [h, p] = good.split(".");
    const cases: [string, string | null, string][] = [
      ["missing", null, "auth_required"],
      ["malformed", "not-a-token", "bad_token"],
      ["expired", await signToken(SECRET, { sub: "alice", exp: now() - 1 }), "bad_token"],
      ["wrong signature", await signToken("another-secret", { sub: "alice", exp: now() + 60 }), "bad_token"],
      ["alg none", `${b64url({ alg: "none", typ: "JWT" })}.${p}.`, "bad_token"],
      ["alg HS512", `${b64url({ alg: "HS512", typ: "JWT" })}.${p}.${good.split(".")[2]}`, "bad_token"],
      ["tampered payload", `${h}.${b64url({ sub: "mallory", exp: now() + 60 })}.${good.split(".")[2]}`, "bad_token"],
      ["no expiry", await signToken(SECRET, { sub: "alice" } as never), "bad_token"],
    ];
    for (const [what, token, error] of cases) {
      const res = await handshake(token === null ? "/ws" : `/ws?token=${encodeURIComponent(token)}`);
      expect({ what, status: res.status }).toEqual({ what, status: 401 });
      const body = (await res.json()) as { error: string; message: string };
      expect({ what, error: body.error }).toEqual({ what, error });
      expect(body.message).not.toContain(SECRET);
    }
    expect(fixture.server.admission.connections).toBe(0);
  });

  test("the token's name wins over ?name= and cannot be changed with nick", async () => {
    await start({ authSecret: SECRET });
    const token = await signToken(SECRET, { sub: "alice", exp: now() + 60 });
    const alice = await connect({ token, name: "bob" });
    expect((alice.frames[0]!.you as { name: string }).name).toBe("alice");
    alice.send({ type: "nick", name: "bob", ref: 1 });
    expect(await alice.next("error")).toMatchObject({ code: "name_locked", ref: 1 });
    alice.send("who am I");
    expect(await alice.next("message")).toMatchObject({ from: "alice" });
  });

  test("a token offered as a subprotocol works for browsers", async () => {
    await start({ authSecret: SECRET });
    const token = await signToken(SECRET, { sub: "carol", exp: now() + 60 });
    const carol = await TestClient.open(`${fixture.server.wsUrl}?room=lobby`, ["bearer", token]);
    clients.push(carol);
    expect(carol.ws.protocol).toBe("bearer");
    expect(await carol.next("welcome")).toMatchObject({ you: { name: "carol" } });
  });

  test("a rooms claim is enforced at connect, join and history", async () => {
    await start({ authSecret: SECRET, historyDb: ":memory:" });
    const token = await signToken(SECRET, { sub: "dave", exp: now() + 60, rooms: ["lobby", "dev"] });
    expect((await handshake(`/ws?room=secret&token=${token}`)).status).toBe(403);
    const dave = await connect({ token });
    dave.send({ type: "join", room: "dev", ref: "ok" });
    expect(await dave.next("joined")).toMatchObject({ room: "dev" });
    dave.send({ type: "join", room: "secret", ref: "no" });
    expect(await dave.next("error")).toMatchObject({ code: "forbidden_room", ref: "no" });
    dave.send({ type: "history", room: "secret", ref: "h" });
    expect(await dave.next("error")).toMatchObject({ code: "forbidden_room", ref: "h" });
    const api = `http://127.0.0.1:${fixture.server.port}/api/rooms`;
    expect((await fetch(`${api}/lobby/messages`)).status).toBe(401);
    expect((await fetch(`${api}/lobby/messages`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await fetch(`${api}/secret/messages`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
  });

  test("tokens expire: refused after exp, and an open connection is closed with 1008", async () => {
    await start({ authSecret: SECRET, pingInterval: 1 });
    const token = await signToken(SECRET, { sub: "erin", exp: now() + 2 });
    const erin = await connect({ token });
    expect((await erin.closed(6000)).code).toBe(1008);
    expect((await handshake(`/ws?token=${token}`)).status).toBe(401);
  });

  test("`server.ts token` mints a token the server accepts", async () => {
    await start({ authSecret: SECRET });
    const proc = Bun.spawn(["bun", "run", "src/server.ts", "token", "frank", "--ttl", "5m", "--rooms", "lobby,dev"], { env: { ...process.env, AUTH_SECRET: SECRET }, stdout: "pipe" });
    const token = (await new Response(proc.stdout).text()).trim();
    expect(await proc.exited).toBe(0);
    const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { sub: string; exp: number; rooms: string[] };
    expect(payload).toMatchObject({ sub: "frank", rooms: ["lobby", "dev"] });
    expect(payload.exp - now()).toBeGreaterThan(290);
    const frank = await connect({ token });
    expect((frank.frames[0]!.you as { name: string }).name).toBe("frank");
  });

  test("tokens never appear in logs", async () => {
    const lines: string[] = [];
    const { createServer } = await import("../src/app.ts");
    const { testConfig } = await import("../src/config.ts");
    const { createLogger } = await import("../src/obs/log.ts");
    fixture.adopt(await createServer(testConfig({ authSecret: SECRET, logLevel: "debug" }), { log: createLogger("debug", undefined, (l) => lines.push(l)) }));
    const token = await signToken(SECRET, { sub: "gina", exp: now() + 60 });
    const gina = await connect({ token });
    gina.send("hello");
    await gina.next("message");
    await handshake(`/ws?token=${token}x`);
    gina.close();
    await eventually(() => lines.some((l) => l.includes('"disconnected"')), 3000, "disconnect logged");
    expect(lines.some((l) => l.includes('"connected"'))).toBe(true);
    expect(lines.join("")).not.toContain(token.split(".")[2]!);
    expect(lines.join("")).not.toContain(SECRET);
  });
});

describe("TLS", () => {
  test("https and wss from one process with a self-signed certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bunchat-tls-"));
    try {
      const cert = join(dir, "cert.pem");
      const key = join(dir, "key.pem");
      const made = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { stderr: "pipe" });
      expect(made.exitCode).toBe(0);
      const s = await start({ tlsCert: cert, tlsKey: key });
      expect(s.url.startsWith("https://")).toBe(true);
      const ca = await Bun.file(cert).text();
      const health = await fetch(`https://localhost:${s.port}/healthz`, { tls: { ca } });
      expect(health.status).toBe(200);
      const opts = { tls: { ca } };
      const alice = await connect({ name: "alice" }, opts);
      const bob = await connect({ name: "bob" }, opts);
      alice.send("over TLS");
      expect(await bob.next("message")).toMatchObject({ text: "over TLS" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a missing certificate file fails the start clearly", async () => {
    const proc = Bun.spawn(["bun", "run", "src/server.ts", "--port", "0", "--history-db", "off", "--tls-cert", "/nope/cert.pem", "--tls-key", "/nope/key.pem"], { stdout: "pipe", stderr: "pipe" });
    const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(code).toBe(2);
    expect(err.trim()).toBe('bunchat: cannot read --tls-cert file "/nope/cert.pem": no such file');
  });
});

describe("origins, proxies and handshake floods", () => {
  test("ALLOWED_ORIGINS refuses other origins with 403", async () => {
    await start({ allowedOrigins: ["https://chat.example"] });
    expect((await handshake("/ws?name=a", { origin: "https://evil.example" })).status).toBe(403);
    const ok = await connect({ name: "b" }, { headers: { origin: "https://chat.example" } });
    expect(ok.frames[0]!.type).toBe("welcome");
  });

  test("X-Forwarded-For is trusted only with TRUST_PROXY", async () => {
    await start({ maxConnectionsPerIp: 1 });
    await connect({ name: "a" }, { headers: { "x-forwarded-for": "203.0.113.1" } });
    // Without TRUST_PROXY the header is ignored: both come from 127.0.0.1.
    expect((await handshake("/ws?name=b", { "x-forwarded-for": "203.0.113.2" })).status).toBe(429);
    await fixture.server.stop();
    for (const c of clients.splice(0)) c.close();
    await start({ maxConnectionsPerIp: 1, trustProxy: true });
    await connect({ name: "a" }, { headers: { "x-forwarded-for": "203.0.113.1" } });
    await connect({ name: "b" }, { headers: { "x-forwarded-for": "198.51.100.9, 203.0.113.2" } });
    expect((await handshake("/ws?name=c", { "x-forwarded-for": "203.0.113.1" })).status).toBe(429);
  });

  test("with TRUST_PROXY, an address a proxy writes with its port (1.2.3.4:5678, [v6]:443) is the address", async () => {
    await start({ maxConnectionsPerIp: 1, trustProxy: true });
    await connect({ name: "a" }, { headers: { "x-forwarded-for": "203.0.113.1:50001" } });
    expect((await handshake("/ws?name=b", { "x-forwarded-for": "203.0.113.1:50002" })).status).toBe(429);
    await connect({ name: "c" }, { headers: { "x-forwarded-for": "[2001:db8::1]:443" } });
    expect((await handshake("/ws?name=d", { "x-forwarded-for": "2001:db8::1" })).status).toBe(429);
  });

  test("HANDSHAKES_PER_IP limits connection attempts per second", async () => {
    await start({ handshakesPerIp: 3 });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await handshake(`/ws?name=h${i}`)).status);
    // At most 3 per one-second window; ten quick attempts span at most two windows.
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(4);
    expect(fixture.server.metrics.refused.get("too_many_handshakes")).toBeGreaterThanOrEqual(4);
  });
});

describe("caps", () => {
  test("rooms per connection, member lists and names are capped", async () => {
    await start({ maxRoomsPerConnection: 2, maxMembersListed: 3, maxNameLength: 8 });
    const a = await connect({ name: "a" });
    a.send({ type: "join", room: "two" });
    await a.next("joined");
    a.send({ type: "join", room: "three", ref: "x" });
    expect(await a.next("error")).toMatchObject({ code: "too_many_rooms", ref: "x" });
    for (const n of ["b", "c", "d", "e"]) await connect({ name: n });
    a.send({ type: "who", room: "lobby" });
    const who = await a.next("who");
    expect(who.online).toBe(5);
    expect(who.members).toHaveLength(3);
    expect((await handshake("/ws?name=ninechars")).status).toBe(400);
    a.send({ type: "join", room: "x".repeat(65), ref: "long" });
    expect(await a.next("error")).toMatchObject({ code: "bad_room", ref: "long" });
  });

  test("names with bidi overrides or zero-width characters are refused", async () => {
    await start();
    for (const name of ["ad\u202Emin", "ad\u200Bmin", "tab\tname"]) {
      const res = await handshake(`/ws?name=${encodeURIComponent(name)}`);
      expect(res.status).toBe(400);
    }
  });
});
