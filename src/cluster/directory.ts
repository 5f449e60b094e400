// Cluster-wide names and presence in Redis. Each node keeps a heartbeat key with a TTL;
// a name or membership belongs to a node only while that node is alive. Every node sweeps
// for dead nodes and removes their users (atomically, so only one sweeper wins), then
// tells the rooms they left. Bound: a kill -9'd node's users leave presence within
// NODE_TTL_MS + SWEEP_MS (about 13 s).
import { topics } from "../bus/bus.ts";
import type { Directory } from "../chat/directory.ts";
import { encode } from "../chat/protocol.ts";
import type { Logger } from "../obs/log.ts";
import type { RedisConnection } from "./redis-connection.ts";
import { keys, SEP } from "./keys.ts";

export const NODE_TTL_MS = 10_000;
export const SWEEP_MS = 3_000;

const CLAIM = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local owner = string.match(current, '^([^\\31]*)')
  if owner ~= ARGV[2] and redis.call('EXISTS', 'bc:node:' .. owner .. ':alive') == 1 then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\31' .. ARGV[3])
return 1
`;

const RELEASE = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.match(current, '^([^\\31]*)') == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
`;

// Remove a dead node's users; returns {room, name, room, name, ...} of what they left.
const BURY = `
if redis.call('EXISTS', 'bc:node:' .. ARGV[1] .. ':alive') == 1 then return {} end
local gone = {}
local entries = redis.call('SMEMBERS', 'bc:node:' .. ARGV[1] .. ':members')
for _, entry in ipairs(entries) do
  local sep = string.find(entry, '\\31', 1, true)
  local room = string.sub(entry, 1, sep - 1)
  local name = string.sub(entry, sep + 1)
  if redis.call('HGET', 'bc:members:' .. room, name) == ARGV[1] then
    redis.call('HDEL', 'bc:members:' .. room, name)
    table.insert(gone, room)
    table.insert(gone, name)
  end
end
redis.call('DEL', 'bc:node:' .. ARGV[1] .. ':members')
local names = redis.call('HGETALL', 'bc:names')
for i = 1, #names, 2 do
  if string.match(names[i + 1], '^([^\\31]*)') == ARGV[1] then redis.call('HDEL', 'bc:names', names[i]) end
end
redis.call('SREM', 'bc:nodes', ARGV[1])
return gone
`;

export class RedisDirectory implements Directory {
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  /** This node's own users and memberships, re-announced after Redis comes back empty. */
  private readonly ownNames = new Map<string, string>();
  private readonly ownMemberships = new Set<string>();
  lastSweepNodes: string[] = [];

  constructor(
    private readonly redis: RedisConnection,
    readonly nodeId: string,
    private readonly log: Logger,
    /** Publish a frame cluster-wide (the bus), for presence of buried users. */
    private readonly publish: (topic: string, frame: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    await this.sweep().catch(() => {}); // so /healthz lists the cluster from the start
    this.heartbeat = setInterval(() => void this.beat().then(() => this.sweep()).catch(() => {}), SWEEP_MS);
    this.heartbeat.unref?.();
  }

  private async beat(): Promise<void> {
    await this.redis.send("SET", [keys.alive(this.nodeId), String(Date.now()), "PX", String(NODE_TTL_MS)]);
    await this.redis.send("SADD", [keys.nodes, this.nodeId]);
  }

  /** Redis came back (perhaps without data): announce ourselves and our users again. */
  async reannounce(): Promise<void> {
    await this.beat();
    // Sent together: Bun pipelines them, one round trip instead of one per user.
    const writes: Promise<unknown>[] = [];
    for (const [key, name] of this.ownNames) writes.push(this.redis.send("HSET", [keys.names, key, `${this.nodeId}${SEP}${name}`]));
    for (const entry of this.ownMemberships) {
      const [room, name] = entry.split(SEP) as [string, string];
      writes.push(this.redis.send("HSET", [keys.members(room), name, this.nodeId]));
      writes.push(this.redis.send("SADD", [keys.nodeMembers(this.nodeId), entry]));
    }
    await Promise.all(writes);
  }

  private async sweep(): Promise<void> {
    const nodes = (await this.redis.send("SMEMBERS", [keys.nodes])) as string[];
    this.lastSweepNodes = nodes;
    for (const node of nodes) {
      if (node === this.nodeId) continue;
      const alive = (await this.redis.send("EXISTS", [keys.alive(node)])) as number;
      if (alive) continue;
      const gone = (await this.redis.send("EVAL", [BURY, "0", node])) as string[];
      if (gone.length === 0) continue;
      this.log.warn("node_buried", { node, users: gone.length / 2 });
      const pairs: [string, string][] = [];
      for (let i = 0; i < gone.length; i += 2) pairs.push([gone[i]!, gone[i + 1]!]);
      await this.announceLeft(pairs);
    }
  }

  /** One presence frame per room for users that left with a node, counted after they left. */
  private async announceLeft(pairs: [room: string, name: string][]): Promise<void> {
    const byRoom = new Map<string, string[]>();
    for (const [room, name] of pairs) byRoom.set(room, [...(byRoom.get(room) ?? []), name]);
    for (const [room, left] of byRoom) {
      this.publish(topics.room(room), encode({ type: "presence", room, joined: [], left, online: await this.online(room) }));
    }
  }

  async claim(key: string, name: string): Promise<boolean> {
    const ok = (await this.redis.send("EVAL", [CLAIM, "1", keys.names, key, this.nodeId, name])) === 1;
    if (ok) this.ownNames.set(key, name);
    return ok;
  }

  release(key: string): void {
    this.ownNames.delete(key);
    this.redis.send("EVAL", [RELEASE, "1", keys.names, key, this.nodeId]).catch(() => {});
  }

  async lookup(key: string): Promise<string | null> {
    const value = (await this.redis.send("HGET", [keys.names, key])) as string | null;
    if (!value) return null;
    const [owner, name] = value.split(SEP) as [string, string];
    if (owner !== this.nodeId && !(await this.redis.send("EXISTS", [keys.alive(owner)]))) return null;
    return name;
  }

  joined(room: string, name: string): void {
    const entry = `${room}${SEP}${name}`;
    this.ownMemberships.add(entry);
    this.redis.send("HSET", [keys.members(room), name, this.nodeId]).catch(() => {});
    this.redis.send("SADD", [keys.nodeMembers(this.nodeId), entry]).catch(() => {});
  }

  left(room: string, name: string): void {
    const entry = `${room}${SEP}${name}`;
    this.ownMemberships.delete(entry);
    this.redis.send("HDEL", [keys.members(room), name]).catch(() => {});
    this.redis.send("SREM", [keys.nodeMembers(this.nodeId), entry]).catch(() => {});
  }

  async online(room: string): Promise<number> {
    return (await this.redis.send("HLEN", [keys.members(room)])) as number;
  }

  async members(room: string, cap: number): Promise<string[]> {
    const names = (await this.redis.send("HKEYS", [keys.members(room)])) as string[];
    return names.slice(0, cap);
  }

  health(): Record<string, unknown> {
    return { node: this.nodeId, cluster: this.lastSweepNodes };
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    // Leave cleanly: our users go now rather than after the TTL, and the rooms hear it.
    try {
      const pairs = [...this.ownMemberships].map((entry) => entry.split(SEP) as [string, string]);
      await this.redis.send("DEL", [keys.alive(this.nodeId)]);
      await this.redis.send("EVAL", [BURY, "0", this.nodeId]);
      await this.announceLeft(pairs);
    } catch {
      // Redis is down: the TTL will do it.
    }
  }
}
