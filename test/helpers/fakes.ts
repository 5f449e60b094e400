// Deterministic stand-ins for what Bun gives the engine: a socket that records what it
// is sent, and a fan-out that delivers a topic's frames to the fake sockets subscribed to
// it. With them (and a controlled broker) a test decides the order of every event.
import type { Config } from "../../src/config.ts";
import { testConfig } from "../../src/config.ts";
import { ChatEngine } from "../../src/engine/engine.ts";
import type { Broker, ChatSocket, Directory, Fanout } from "../../src/engine/ports.ts";
import type { Session } from "../../src/engine/session.ts";
import { createLogger } from "../../src/obs/log.ts";
import { Metrics } from "../../src/obs/metrics.ts";
import { nameKey } from "../../src/protocol/names.ts";
import { bunchatDialect } from "../../src/protocol/dialects/bunchat.ts";
import type { Frame } from "./client.ts";

export class FakeFanout implements Fanout {
  readonly topics = new Map<string, Set<FakeSocket>>();
  publish(topic: string, frame: string): void {
    for (const socket of this.topics.get(topic) ?? []) socket.receive(frame);
  }
  subscriberCount(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }
}

export class FakeSocket implements ChatSocket {
  readonly frames: Frame[] = [];
  readonly subscriptions = new Set<string>();
  closedWith: { code: number; reason: string } | null = null;
  session!: Session;

  constructor(private readonly fanout: FakeFanout, private readonly engine: ChatEngine) {}

  receive(text: string): void {
    if (this.closedWith) return;
    this.frames.push(JSON.parse(text) as Frame);
  }
  send(text: string): number {
    this.receive(text);
    return text.length;
  }
  subscribe(topic: string): void {
    if (this.closedWith) return;
    this.subscriptions.add(topic);
    let set = this.fanout.topics.get(topic);
    if (!set) this.fanout.topics.set(topic, (set = new Set()));
    set.add(this);
  }
  unsubscribe(topic: string): void {
    this.subscriptions.delete(topic);
    this.fanout.topics.get(topic)?.delete(this);
  }
  /** As Bun does: the socket's topics are gone, then the close handler runs. */
  close(code = 1000, reason = ""): void {
    if (this.closedWith) return;
    this.closedWith = { code, reason };
    for (const topic of [...this.subscriptions]) this.unsubscribe(topic);
    this.engine.close(this.session);
  }
  terminate(): void {
    this.close(1006, "");
  }
  ping(): number {
    return 0;
  }

  /** What the client sends. */
  say(frame: Record<string, unknown> | string): void {
    this.engine.message(this.session, typeof frame === "string" ? frame : JSON.stringify(frame));
  }
  all(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }
  last(type: string): Frame | undefined {
    return this.all(type).at(-1);
  }
}

export interface EngineHarness {
  engine: ChatEngine;
  fanout: FakeFanout;
  metrics: Metrics;
  /**
   * Claim the name and open a connection (no admission checks: the engine alone is under
   * test). The socket is open once the claim answered: `await settle()` before using it.
   */
  connect(name: string, room?: string, options?: { since?: number; epoch?: string; resume?: string; inbox?: number }): FakeSocket;
}

export function engineHarness(broker: Broker, overrides: Partial<Config> = {}, directory?: Directory, tailTtlMs = 0): EngineHarness {
  const config = testConfig({ presenceWindow: 10, rateLimit: 0, ...overrides });
  const metrics = new Metrics(() => 0, Date.now());
  // By default every read reaches the broker (no shared tail pages): the test orders each one.
  const engine = new ChatEngine({ config, broker, directory, metrics, log: createLogger("silent"), tailTtlMs });
  const fanout = new FakeFanout();
  engine.attach(fanout);
  return {
    engine,
    fanout,
    metrics,
    connect(name, room = "lobby", options = {}) {
      const socket = new FakeSocket(fanout, engine);
      void engine.directory.claim({ name, key: nameKey(name), resume: options.resume }).then((claim) => {
        if (!claim.ok) throw new Error(`${name}: ${claim.reason}`);
        const session = engine.newSession({
          identity: claim.identity, resume: claim.resume, delivered: claim.delivered, inboxHead: claim.inboxHead, inbox: options.inbox, ip: "10.0.0.1", dialect: bunchatDialect, room,
          since: options.since, epoch: options.epoch, token: null,
        });
        socket.session = session;
        return engine.open(socket, session);
      });
      return socket;
    },
  };
}

/** Let every queued promise callback and immediate (group commits) run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}
