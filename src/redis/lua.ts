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
    const sha = this.shas.get(source);
    if (sha === undefined) throw new Error("a Lua script that was not registered");
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.redis.send("EVALSHA", [sha, ...tail]);
    } catch (error) {
      if (!String(error).includes("NOSCRIPT")) throw error;
      return this.redis.send("EVAL", [source, ...tail]);
    }
  }
}
