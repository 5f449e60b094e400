// A webhook receiver as a backend would write one: a Bun HTTP server that checks every
// request's signature (and its timestamp's age) before it believes a word, and keeps the
// events. It can be told to fail (500) or to stall (never answer) to test retries and a
// slow backend.
import type { Server } from "bun";
import { verify } from "../../src/hooks/signature.ts";
import type { WebhookEvent } from "../../src/hooks/webhooks.ts";

export type ReceiverMode = "ok" | "fail" | "stall";

export class WebhookReceiver {
  readonly events: WebhookEvent[] = [];
  /** Requests whose signature did not verify (refused with 401). */
  forged = 0;
  requests = 0;
  mode: ReceiverMode = "ok";
  private stalled: (() => void)[] = [];

  private constructor(private readonly server: Server<undefined>) {}

  static start(secret: string, path = "/hooks"): WebhookReceiver {
    let receiver: WebhookReceiver | null = null;
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      idleTimeout: 0,
      fetch: async (req) => {
        const self = receiver!;
        if (new URL(req.url).pathname !== path) return new Response("not here", { status: 404 });
        const body = await req.text();
        self.requests++;
        if (!(await verify(secret, req.headers, body))) {
          self.forged++;
          return new Response("bad signature", { status: 401 });
        }
        if (self.mode === "fail") return new Response("down for maintenance", { status: 500 });
        if (self.mode === "stall") {
          await new Promise<void>((resolve) => self.stalled.push(resolve));
          return new Response("late", { status: 503 });
        }
        self.events.push(...(JSON.parse(body) as { events: WebhookEvent[] }).events);
        return new Response(null, { status: 204 });
      },
    });
    receiver = new WebhookReceiver(server);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}/hooks`;
  }

  of(type: string, match: (data: Record<string, unknown>) => boolean = () => true): WebhookEvent[] {
    return this.events.filter((e) => e.type === type && match(e.data));
  }

  /** Answer the stalled requests (with a failure) and stop stalling. */
  release(): void {
    this.mode = "ok";
    for (const resolve of this.stalled.splice(0)) resolve();
  }

  async stop(): Promise<void> {
    this.release();
    await this.server.stop(true);
  }
}
