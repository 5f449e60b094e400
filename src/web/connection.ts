// A WebSocket that comes back: exponential backoff with full jitter, and on every
// (re)connect the caller supplies fresh parameters (e.g. the last id seen) so the server
// replays what was missed. A handshake the server refused is explained by asking
// /api/admission, since browsers cannot read the refused response.
import type { ServerFrame } from "../protocol/frames.ts";

export type Status = "connecting" | "online" | "offline" | "closed";

export interface Refusal {
  error: string;
  message: string;
}

export interface ConnectionEvents {
  frame(frame: ServerFrame): void;
  status(status: Status, retryInMs?: number): void;
  refused(refusal: Refusal, willRetry: boolean): void;
  closed(code: number, reason: string): void;
}

/** Refusals that retrying cannot fix: stop and let the person act. */
const FINAL_REFUSALS = new Set(["bad_name", "bad_room", "auth_required", "bad_token", "forbidden_room", "origin_not_allowed", "banned"]);

export class ReconnectingSocket {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private welcomed = false;

  constructor(
    private readonly params: () => Record<string, string>,
    private readonly token: string | null,
    /** The resume key of the person this page connects as, if it has one. */
    private readonly resume: () => string | null,
    private readonly on: ConnectionEvents,
    private readonly baseDelayMs = 500,
    private readonly maxDelayMs = 15_000,
  ) {}

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.ws?.close(1000);
  }

  send(data: string): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN || !this.welcomed) return false;
    this.ws.send(data);
    return true;
  }

  private url(): string {
    const url = new URL("/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    for (const [k, v] of Object.entries(this.params())) url.searchParams.set(k, v);
    return url.toString();
  }

  private open(): void {
    this.on.status("connecting");
    this.welcomed = false;
    // Secrets travel as subprotocols, not in the URL (which proxies log).
    const resume = this.resume();
    const protocols = this.token ? ["bearer", this.token] : resume ? ["resume", resume] : undefined;
    const ws = protocols ? new WebSocket(this.url(), protocols) : new WebSocket(this.url());
    this.ws = ws;
    ws.onmessage = (event) => {
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(event.data)) as ServerFrame;
      } catch {
        return;
      }
      if (frame.type === "welcome") {
        this.welcomed = true;
        this.attempt = 0;
        this.on.status("online");
      }
      this.on.frame(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const hadWelcome = this.welcomed;
      this.welcomed = false;
      this.on.closed(event.code, event.reason);
      if (this.stopped) return this.on.status("closed");
      if (!hadWelcome) void this.explainRefusal();
      else this.retry();
    };
  }

  private async explainRefusal(): Promise<void> {
    let refusal: Refusal | null = null;
    try {
      const check = new URL("/api/admission", location.href);
      for (const [k, v] of Object.entries(this.params())) check.searchParams.set(k, v);
      if (this.token) check.searchParams.set("token", this.token);
      const resume = this.resume();
      if (resume) check.searchParams.set("resume", resume);
      const res = await fetch(check);
      const body = (await res.json()) as { ok: boolean; error?: string; message?: string };
      if (!body.ok) refusal = { error: body.error ?? "unknown", message: body.message ?? "" };
    } catch {
      // The server is unreachable: an ordinary outage, retry below.
    }
    if (refusal) {
      const final = FINAL_REFUSALS.has(refusal.error);
      this.on.refused(refusal, !final);
      if (final) {
        this.stopped = true;
        this.on.status("closed");
        return;
      }
    }
    this.retry();
  }

  private retry(): void {
    if (this.stopped) return;
    // Full jitter: a restarted server is not hit by every client at the same instant.
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt++;
    this.on.status("offline", delay);
    this.timer = setTimeout(() => this.open(), delay);
  }
}
