// History in Redis for cluster mode: one Lua script per message gives it the next id
// (INCR), appends it to the conversation's stream (XADD with the id as the entry id,
// MAXLEN ~ HISTORY_LIMIT) and PUBLISHes it, atomically. So the id order is the delivery
// order on every node, and nothing is delivered before it is stored. Messages queued in
// one event-loop turn go out as one pipeline (Bun's client pipelines automatically).
import { topics } from "../bus/bus.ts";
import type { HistoryItem } from "../chat/protocol.ts";
import { encode } from "../chat/protocol.ts";
import type { RedisConnection } from "../cluster/redis-connection.ts";
import { keys } from "../cluster/keys.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { Committed, HistoryStore, Page, PendingMessage } from "./history.ts";
import { GroupCommit } from "./group-commit.ts";
import { conversationOf, toItem } from "./history.ts";

// KEYS[1] seq, KEYS[2] stream; ARGV[1] frame before the id, ARGV[2] frame after it,
// ARGV[3] MAXLEN (0 = unlimited), ARGV[4..] channels to publish to.
const COMMIT = `
local id = redis.call('INCR', KEYS[1])
local frame = ARGV[1] .. id .. ARGV[2]
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], id .. '-0', 'f', frame)
else
  redis.call('XADD', KEYS[2], id .. '-0', 'f', frame)
end
for i = 4, #ARGV do
  redis.call('PUBLISH', ARGV[i], id .. '\\n' .. frame)
end
return id
`;

export interface RedisHistoryOptions {
  limit: number;
  metrics?: Metrics;
}

type StreamEntry = [string, string[]];

export class RedisHistory implements HistoryStore {
  readonly keepsHistory = true;
  /** The commit script publishes; the hub must not publish these frames again. */
  readonly publishesOnCommit = true;
  private commitSha = "";
  private readonly pending = new GroupCommit<{ message: PendingMessage; done: Committed }>((batch) => this.commitBatch(batch));
  private inFlight = new Set<Promise<unknown>>();

  constructor(private readonly redis: RedisConnection, private readonly options: RedisHistoryOptions) {}

  async load(): Promise<void> {
    this.commitSha = (await this.redis.send("SCRIPT", ["LOAD", COMMIT])) as string;
  }

  append(message: PendingMessage, done: Committed): void {
    this.pending.push({ message, done });
  }

  /** One pipeline for the turn's messages; each message's script is atomic on its own. */
  private commitBatch(batch: { message: PendingMessage; done: Committed }[]): void {
    const started = performance.now();
    const m = this.options.metrics;
    m?.batchSize.observe(batch.length);
    let pending = batch.length;
    for (const { message, done } of batch) {
      const conversation = conversationOf(message);
      // Encode once with id 0, then let the script splice the real id in.
      const frame = encode(toItem(message, 0));
      const at = frame.indexOf('"id":0') + 5;
      const channels = message.kind === "room"
        ? [keys.channel(topics.room(message.room))]
        : [...new Set([keys.channel(topics.inbox(message.toKey)), keys.channel(topics.inbox(message.fromKey))])];
      const args = [keys.seq(conversation), keys.log(conversation), frame.slice(0, at), frame.slice(at + 1), String(this.options.limit), ...channels];
      const work = this.run(args).then(
        (id) => {
          m?.stored.inc();
          done(toItem(message, Number(id)));
        },
        () => {
          m?.storeErrors.inc();
          done(null);
        },
      ).finally(() => {
        this.inFlight.delete(work);
        if (--pending === 0) m?.commitSeconds.observe((performance.now() - started) / 1000);
      });
      this.inFlight.add(work);
    }
  }

  /** EVALSHA, falling back to EVAL when Redis lost its script cache (e.g. after a restart). */
  private async run(args: string[]): Promise<unknown> {
    const keyArgs = ["2", ...args];
    try {
      return await this.redis.send("EVALSHA", [this.commitSha, ...keyArgs]);
    } catch (error) {
      if (!String(error).includes("NOSCRIPT")) throw error;
      void this.load().catch(() => {});
      return this.redis.send("EVAL", [COMMIT, ...keyArgs]);
    }
  }

  async after(conversation: string, afterId: number, limit: number): Promise<Page> {
    const entries = (await this.redis.send("XRANGE", [keys.log(conversation), `(${afterId}-0`, "+", "COUNT", String(limit + 1)])) as StreamEntry[];
    const more = entries.length > limit;
    return { messages: entries.slice(0, limit).map(parseEntry), more };
  }

  async before(conversation: string, beforeId: number | undefined, limit: number): Promise<Page> {
    const end = beforeId === undefined ? "+" : `(${beforeId}-0`;
    const entries = (await this.redis.send("XREVRANGE", [keys.log(conversation), end, "-", "COUNT", String(limit + 1)])) as StreamEntry[];
    const more = entries.length > limit;
    return { messages: entries.slice(0, limit).reverse().map(parseEntry), more };
  }

  async flush(): Promise<void> {
    this.pending.flush();
    await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.flush();
  }
}

function parseEntry(entry: StreamEntry): HistoryItem {
  const fields = entry[1];
  const frame = fields[fields.indexOf("f") + 1]!;
  return JSON.parse(frame) as HistoryItem;
}
