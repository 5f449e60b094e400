// A test client that speaks the protocol over a real WebSocket: every frame it receives
// is queued, and tests wait for the frame they expect.
import type { ServerFrame } from "../../src/protocol/frames.ts";

export type Frame = ServerFrame & Record<string, unknown>;

export class TestClient {
  readonly frames: Frame[] = [];
  readonly raw: string[] = [];
  private waiters: { match: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  private cursor = 0;
  closeEvent: { code: number; reason: string } | null = null;
  private closedWaiters: ((e: { code: number; reason: string }) => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      const text = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer);
      this.raw.push(text);
      const frame = JSON.parse(text) as Frame;
      this.frames.push(frame);
      this.waiters = this.waiters.filter((w) => {
        if (w.match(frame)) {
          w.resolve(frame);
          return false;
        }
        return true;
      });
    });
    ws.addEventListener("close", (e) => {
      this.closeEvent = { code: e.code, reason: e.reason };
      for (const w of this.closedWaiters) w(this.closeEvent);
      this.closedWaiters = [];
    });
  }

  /** Connect and resolve once the socket is open (not waiting for welcome). */
  static open(url: string, options?: string[] | { protocols?: string[]; tls?: { ca?: string; rejectUnauthorized?: boolean }; headers?: Record<string, string> }): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = Array.isArray(options) || options === undefined ? new WebSocket(url, options) : new WebSocket(url, options as unknown as string[]);
      const client = new TestClient(ws);
      ws.addEventListener("open", () => resolve(client), { once: true });
      ws.addEventListener("error", () => reject(new Error(`connect to ${url} failed`)), { once: true });
    });
  }

  /** Connect and wait for the welcome frame. */
  static async connect(baseWsUrl: string, query: Record<string, string | number> = {}, options?: Parameters<typeof TestClient.open>[1]): Promise<TestClient> {
    const url = new URL(baseWsUrl);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
    const client = await TestClient.open(url.toString(), options);
    await client.next("welcome");
    return client;
  }

  send(frame: Record<string, unknown> | string): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next frame (after those already consumed by next()) matching type/predicate. */
  next(type: string, predicate: (f: Frame) => boolean = () => true, timeoutMs = 5000): Promise<Frame> {
    const match = (f: Frame) => f.type === type && predicate(f);
    for (let i = this.cursor; i < this.frames.length; i++) {
      const f = this.frames[i]!;
      if (match(f)) {
        this.cursor = i + 1;
        return Promise.resolve(f);
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out waiting for a "${type}" frame; got: ${this.raw.slice(-5).map((r) => r.slice(0, 200)).join(" | ")}`));
      }, timeoutMs);
      const done = (f: Frame) => {
        clearTimeout(timer);
        this.cursor = this.frames.indexOf(f) + 1;
        resolve(f);
      };
      this.waiters.push({ match, resolve: done });
    });
  }

  /** All frames of a type received so far. */
  all(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  closed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    if (this.closeEvent) return Promise.resolve(this.closeEvent);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timed out waiting for close")), timeoutMs);
      this.closedWaiters.push((e) => {
        clearTimeout(timer);
        resolve(e);
      });
    });
  }

  close(): void {
    if (this.ws.readyState <= 1) this.ws.close();
  }
}

/** Wait until `condition` holds, polling; for state that has no frame to wait on. */
export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Nothing of this type arrives for `ms` (used sparingly: it is a negative check). */
export async function quietFor(client: TestClient, type: string, ms: number, predicate: (f: Frame) => boolean = () => true): Promise<void> {
  const before = client.frames.length;
  await Bun.sleep(ms);
  const late = client.frames.slice(before).filter((f) => f.type === type && predicate(f));
  if (late.length > 0) throw new Error(`unexpected ${type} frame: ${JSON.stringify(late[0])}`);
}

/** A raw WebSocket handshake over fetch: to read a refused upgrade's status and JSON body. */
export function handshake(baseHttpUrl: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${baseHttpUrl}${path}`, {
    headers: { upgrade: "websocket", connection: "upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13", ...headers },
  });
}
