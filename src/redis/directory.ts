// Cluster-wide names and room membership in Redis. Each node keeps a heartbeat key with a
// TTL, and records the names and memberships it owns in sets of its own; a name or
// membership counts only while its node is alive. Every node sweeps for dead nodes and
// removes what they owned (one script per dead node, touching only that node's sets), then
// tells the rooms who left. Bound: a kill -9'd node's people leave presence within
// NODE_TTL_MS + SWEEP_MS (about 13 s).
import type { Directory } from "../engine/ports.ts";
import { DirectoryUnavailable } from "../engine/ports.ts";
import { topics } from "../engine/topics.ts";
import type { Logger } from "../obs/log.ts";
import { encode } from "../protocol/frames.ts";
import type { RedisConnection } from "./connection.ts";
import { keys, ownerAndName, SEP } from "./keys.ts";
import { BURY, CLAIM, LOOKUP, RELEASE } from "./scripts.ts";

export const NODE_TTL_MS = 10_000;
export const SWEEP_MS = 3_000;

export class RedisDirectory implements Directory {
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  /** This node's own names and memberships, re-announced after Redis comes back empty. */
  private readonly ownNames = new Map<string, string>();
  private readonly ownMemberships = new Map<string, string>();
  lastSweepNodes: string[] = [];

  constructor(
    private readonly redis: RedisConnection,
    readonly nodeId: string,
    private readonly log: Logger,
    /** Publish a frame cluster-wide (the broker), for presence of buried people. */
    private readonly broadcast: (topic: string, frame: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    await this.sweep().catch(() => {}); // so /healthz lists the cluster from the start
    this.heartbeat = setInterval(() => void this.beat().then(() => this.sweep()).catch(() => {}), SWEEP_MS);
    this.heartbeat.unref?.();
  }

  private async beat(): Promise<void> {
    await Promise.all([
      this.redis.send("SET", [keys.alive(this.nodeId), String(Date.now()), "PX", String(NODE_TTL_MS)]),
      this.redis.send("SADD", [keys.nodes, this.nodeId]),
    ]);
  }

  /** Redis came back (perhaps without data): announce ourselves and our people again. */
  async reannounce(): Promise<void> {
    await this.beat();
    // Sent together: Bun pipelines them, one round trip instead of one per person.
    const writes: Promise<unknown>[] = [];
    for (const [key, name] of this.ownNames) {
      writes.push(this.redis.send("HSET", [keys.names, key, `${this.nodeId}${SEP}${name}`]));
      writes.push(this.redis.send("SADD", [keys.nodeNames(this.nodeId), key]));
    }
    for (const [entry, name] of this.ownMemberships) {
      const [room, key] = entry.split(SEP) as [string, string];
      writes.push(this.redis.send("HSET", [keys.members(room), key, `${this.nodeId}${SEP}${name}`]));
      writes.push(this.redis.send("SADD", [keys.nodeMembers(this.nodeId), entry]));
    }
    await Promise.all(writes);
  }

  private async sweep(): Promise<void> {
    const nodes = ((await this.redis.send("SMEMBERS", [keys.nodes])) as string[]).sort();
    this.lastSweepNodes = nodes;
    const others = nodes.filter((n) => n !== this.nodeId);
    const alive = await Promise.all(others.map((n) => this.redis.send("EXISTS", [keys.alive(n)]) as Promise<number>));
    for (let i = 0; i < others.length; i++) {
      if (alive[i]) continue;
      const node = others[i]!;
      const gone = (await this.redis.send("EVAL", [BURY, "0", node])) as string[];
      if (gone.length === 0) continue;
      this.log.warn("node_buried", { node, memberships: gone.length / 2 });
      const pairs: [string, string][] = [];
      for (let k = 0; k < gone.length; k += 2) pairs.push([gone[k]!, gone[k + 1]!]);
      await this.announceLeft(pairs);
    }
  }

  /** One presence frame per room for people that left with a node, counted after they left. */
  private async announceLeft(pairs: [room: string, name: string][]): Promise<void> {
    const byRoom = new Map<string, string[]>();
    for (const [room, name] of pairs) {
      let list = byRoom.get(room);
      if (!list) byRoom.set(room, (list = []));
      list.push(name);
    }
    for (const [room, left] of byRoom) {
      this.broadcast(topics.room(room), encode({ type: "presence", room, joined: [], left, online: await this.online(room) }));
    }
  }

  private async ask<T>(command: string, args: string[]): Promise<T> {
    try {
      return (await this.redis.send(command, args)) as T;
    } catch (error) {
      throw new DirectoryUnavailable(`the cluster directory (Redis) is unavailable: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async claim(key: string, name: string): Promise<boolean> {
    const ok = (await this.ask<number>("EVAL", [CLAIM, "2", keys.names, keys.nodeNames(this.nodeId), key, this.nodeId, name])) === 1;
    if (ok) this.ownNames.set(key, name);
    return ok;
  }

  release(key: string): void {
    this.ownNames.delete(key);
    this.redis.send("EVAL", [RELEASE, "2", keys.names, keys.nodeNames(this.nodeId), key, this.nodeId]).catch(() => {});
  }

  async lookup(key: string): Promise<string | null> {
    const value = await this.ask<string | null>("EVAL", [LOOKUP, "1", keys.names, key]);
    return value ? ownerAndName(value)[1] : null;
  }

  joined(room: string, key: string, name: string): void {
    const entry = `${room}${SEP}${key}`;
    this.ownMemberships.set(entry, name);
    this.redis.send("HSET", [keys.members(room), key, `${this.nodeId}${SEP}${name}`]).catch(() => {});
    this.redis.send("SADD", [keys.nodeMembers(this.nodeId), entry]).catch(() => {});
  }

  left(room: string, key: string): void {
    const entry = `${room}${SEP}${key}`;
    this.ownMemberships.delete(entry);
    this.redis.send("HDEL", [keys.members(room), key]).catch(() => {});
    this.redis.send("SREM", [keys.nodeMembers(this.nodeId), entry]).catch(() => {});
  }

  async online(room: string): Promise<number> {
    return this.ask<number>("HLEN", [keys.members(room)]);
  }

  async members(room: string, cap: number): Promise<string[]> {
    if (cap <= 0) return [];
    // One HSCAN page: O(cap), not O(room size), however big the room.
    const [, flat] = await this.ask<[string, string[]]>("HSCAN", [keys.members(room), "0", "COUNT", String(cap)]);
    const names: string[] = [];
    for (let i = 1; i < flat.length && names.length < cap; i += 2) names.push(ownerAndName(flat[i]!)[1]);
    return names;
  }

  health(): Record<string, unknown> {
    return { node: this.nodeId, cluster: this.lastSweepNodes };
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    // Leave cleanly: our people go now rather than after the TTL, and the rooms hear it.
    try {
      const pairs = [...this.ownMemberships].map(([entry, name]): [string, string] => [entry.split(SEP)[0]!, name]);
      await this.redis.send("DEL", [keys.alive(this.nodeId)]);
      await this.redis.send("EVAL", [BURY, "0", this.nodeId]);
      await this.announceLeft(pairs);
    } catch {
      // Redis is down: the TTL will do it.
    }
  }
}
