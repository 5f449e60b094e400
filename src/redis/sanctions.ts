// Bans and mutes of a cluster, in one Redis hash (id → JSON record): every node loads them
// at start and after reconnects, so a ban survives any node's restart.
import { DirectoryUnavailable } from "../engine/ports.ts";
import { active, type Sanction, type SanctionStore } from "../engine/sanctions.ts";
import type { RedisConnection } from "./connection.ts";
import { keys } from "./keys.ts";

export class RedisSanctions implements SanctionStore {
  constructor(private readonly redis: RedisConnection) {}

  /** A Redis command; an outage is DirectoryUnavailable, which the server API answers 503 (not 500). */
  private async send(command: string, args: string[]): Promise<unknown> {
    try {
      return await this.redis.send(command, args);
    } catch (error) {
      throw new DirectoryUnavailable(`the sanctions (Redis) are unavailable: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async add(sanction: Sanction): Promise<void> {
    await this.send("HSET", [keys.sanctions, sanction.id, JSON.stringify(sanction)]);
  }

  async remove(id: string): Promise<Sanction | null> {
    const [record] = await Promise.all([
      this.send("HGET", [keys.sanctions, id]) as Promise<string | null>,
      this.send("HDEL", [keys.sanctions, id]),
    ]);
    const found = record ? (JSON.parse(record) as Sanction) : null;
    return found && active(found, Date.now()) ? found : null;
  }

  async list(now: number): Promise<Sanction[]> {
    const flat = (await this.send("HGETALL", [keys.sanctions])) as Record<string, string> | string[];
    // Bun answers HGETALL with an object (RESP3) or a flat list (RESP2).
    const records = Array.isArray(flat) ? flat.filter((_, i) => i % 2 === 1) : Object.values(flat);
    const all = records.map((r) => JSON.parse(r) as Sanction);
    const ended = all.filter((s) => !active(s, now)).map((s) => s.id);
    if (ended.length > 0) await this.send("HDEL", [keys.sanctions, ...ended]);
    return all.filter((s) => active(s, now));
  }
}
