// Running the Lua scripts: EVALSHA with the script's SHA-1 (computed here), so a script's
// text crosses the network when it is loaded, not with every call. Scripts are loaded when
// the connection comes up (a restarted Redis has forgotten them); calls made meanwhile
// wait for the load, in the order they were made — a node's publishes must reach Redis in
// the order its clients sent them. EVAL remains the fallback should Redis still answer
// NOSCRIPT (someone ran SCRIPT FLUSH).
import type { RedisConnection } from "./connection.ts";

export class Lua {
  private readonly shas = new Map<string, string>();
  private loading: Promise<void> | null = null;

  constructor(private readonly redis: RedisConnection, private readonly sources: readonly string[]) {
    for (const source of sources) this.shas.set(source, new Bun.CryptoHasher("sha1").update(source).digest("hex"));
  }

  /** Load every script; calls wait for it. */
  load(): Promise<void> {
    const loading = Promise.all(this.sources.map((source) => this.redis.send("SCRIPT", ["LOAD", source]))).then(
      () => {
        if (this.loading === loading) this.loading = null;
      },
      (error: unknown) => {
        if (this.loading === loading) this.loading = null;
        throw error;
      },
    );
    this.loading = loading;
    return loading;
  }

  async run(source: string, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    if (this.loading) await this.loading.catch(() => {});
    // A batch waits in the connection's queue where its first request was made: a request
    // made after this call must not join it and overtake this call (a claim overtaking the
    // detach before it would find the person still connected).
    this.open.clear();
    return this.call(source, [this.sha(source), String(keys.length), ...keys, ...args]);
  }

  private sha(source: string): string {
    const sha = this.shas.get(source);
    if (sha === undefined) throw new Error("a Lua script that was not registered");
    return sha;
  }

  /** EVALSHA with `args` ([sha, key count, keys…, arguments…]); EVAL should Redis not know it. */
  private async call(source: string, args: string[], beforeWrite?: () => void): Promise<unknown> {
    try {
      return await this.redis.send("EVALSHA", args, beforeWrite);
    } catch (error) {
      if (!String(error).includes("NOSCRIPT")) throw error;
      return this.redis.send("EVAL", [source, ...args.slice(1)]);
    }
  }

  /** Batches still taking requests, per script: until the connection writes them. */
  private readonly open = new Map<string, Batch>();

  /**
   * One request to a batched script (one whose arguments after `shared` are requests, and
   * whose answer is one entry per request): every request made for it in one event-loop
   * turn goes in one call, in the order they were made, each answered with its own entry.
   * A storm of connects then costs Redis one script call per turn instead of one per
   * connect. `shared` and `keys` are the first request's: the same for the whole turn.
   * A call through `run` ends the batches open: a request made after it goes after it.
   */
  async batched(source: string, keys: readonly string[], shared: readonly string[], request: string): Promise<unknown> {
    if (this.loading) await this.loading.catch(() => {});
    let batch = this.open.get(source);
    if (!batch || batch.waiting.length >= MAX_BATCH) batch = this.openBatch(source, keys, shared);
    batch.args.push(request);
    const answer = Promise.withResolvers<unknown>();
    batch.waiting.push(answer);
    return answer.promise;
  }

  /** A new batch for `source`, queued on the connection now: its requests follow until it is written. */
  private openBatch(source: string, keys: readonly string[], shared: readonly string[]): Batch {
    const batch: Batch = { args: [this.sha(source), String(keys.length), ...keys, ...shared], waiting: [] };
    this.open.set(source, batch);
    const close = (): void => {
      if (this.open.get(source) === batch) this.open.delete(source);
    };
    this.call(source, batch.args, close).then(
      (answers) => {
        close();
        const list = answers as unknown[];
        batch.waiting.forEach((w, i) => w.resolve(list[i]));
      },
      (error: unknown) => {
        close();
        for (const w of batch.waiting) w.reject(error);
      },
    );
    return batch;
  }
}

/** Requests in one batched call at most: Lua unpacks them onto its stack. */
const MAX_BATCH = 512;

interface Batch {
  /** The call's arguments, growing until written: sha, key count, keys, shared arguments, requests. */
  args: string[];
  waiting: { resolve: (answer: unknown) => void; reject: (error: unknown) => void }[];
}
