// Cluster-wide people, names and room membership in Redis. Each node keeps a heartbeat
// key with a TTL and records the connections and memberships it owns in sets of its own;
// they count only while the node is alive. Every node sweeps for dead nodes and removes
// what they owned (one script per dead node, touching only that node's sets), then tells
// the rooms who left. Bound: a kill -9'd node's people leave presence within
// NODE_TTL_MS + SWEEP_MS (about 13 s). The rule for who may hold a name is
// engine/identity.ts's, run atomically in scripts.ts's CLAIM.
import { newPersonId, newResumeKey, resumeHash, subjectId } from "../engine/identity.ts";
import type { Claim, ClaimRequest, Directory, DirectoryEvent, Member, Recipient, RoomCount } from "../engine/ports.ts";
import { DirectoryUnavailable } from "../engine/ports.ts";
import { topics } from "../engine/topics.ts";
import type { Logger } from "../obs/log.ts";
import { encode } from "../protocol/frames.ts";
import type { RedisConnection } from "./connection.ts";
import { keys, SEP } from "./keys.ts";
import { BURY, CLAIM, DETACH, JOIN_ROOM, LEAVE_ROOM, LOOKUP, RENAME } from "./scripts.ts";

export const NODE_TTL_MS = 10_000;
export const SWEEP_MS = 3_000;

interface OwnPerson {
  name: string;
  key: string;
  /** Connections of the person on this node. */
  connections: number;
  resume: string | null;
}

export class RedisDirectory implements Directory {
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  /** This node's people and memberships, re-announced after Redis comes back empty. */
  private readonly ownPeople = new Map<string, OwnPerson>();
  private readonly ownMemberships = new Map<string, string>();
  lastSweepNodes: string[] = [];
  private listener: (event: DirectoryEvent) => void = () => {};

  constructor(
    private readonly redis: RedisConnection,
    readonly nodeId: string,
    private readonly graceMs: number,
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
    // Sent together: Bun pipelines them, one round trip instead of one per person. Every
    // write is absolute or guarded, so a reconnect that lost nothing changes nothing.
    const writes: Promise<unknown>[] = [];
    for (const [id, p] of this.ownPeople) {
      writes.push(this.redis.send("HSET", [keys.person(id), "name", p.name, "key", p.key, ...(p.resume ? ["resume", p.resume] : [])]));
      if (p.resume) writes.push(this.redis.send("HSETNX", [keys.resumes, p.resume, id]));
      writes.push(this.redis.send("HSETNX", [keys.names, p.key, id]));
      writes.push(this.redis.send("HSET", [`bc:conns:${id}`, this.nodeId, String(p.connections)]));
      writes.push(this.redis.send("SADD", [`bc:node:${this.nodeId}:ids`, id]));
    }
    for (const [entry, name] of this.ownMemberships) {
      const [room, id] = entry.split(SEP) as [string, string];
      writes.push(this.redis.send("EVAL", [JOIN_ROOM, "0", room, id, name, this.nodeId]));
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
      const buried = await this.bury(node);
      if (buried.length === 0) continue;
      this.log.warn("node_buried", { node, memberships: buried.length });
      await this.announceLeft(buried);
    }
  }

  /** Run BURY for a node and tell the listener what it decided; the memberships that ended. */
  private async bury(node: string): Promise<[room: string, name: string][]> {
    const [gone, vacated, offline] = (await this.redis.send("EVAL", [BURY, "0", node, String(Date.now())])) as [string[], string[], string[]];
    const pairs: [string, string][] = [];
    for (let k = 0; k < gone.length; k += 3) {
      pairs.push([gone[k]!, gone[k + 1]!]);
      this.listener({ type: "member.left", room: gone[k]!, name: gone[k + 1]!, person: gone[k + 2]! });
    }
    for (const room of vacated) this.listener({ type: "room.vacated", room });
    for (let k = 0; k < offline.length; k += 2) this.listener({ type: "user.disconnected", person: offline[k]!, name: offline[k + 1]! });
    return pairs;
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

  async claim(request: ClaimRequest, probe = false): Promise<Claim> {
    const resume = request.resume === undefined ? "" : resumeHash(request.resume);
    const freshKey = newResumeKey();
    const freshHash = resumeHash(freshKey);
    const reply = await this.ask<string[]>("EVAL", [
      CLAIM, "2", keys.names, keys.resumes,
      request.key, request.name, resume, request.subject === undefined ? "" : subjectId(request.subject), this.nodeId,
      String(Date.now()), String(this.graceMs), newPersonId(), freshHash, String(request.maxConnections ?? 1_000_000), probe ? "1" : "0",
    ]);
    if (reply[0] === "taken") return { ok: false, reason: "taken" };
    if (reply[0] === "full") return { ok: false, reason: "too_many_connections" };
    const [, id, delivered, created, first] = reply as [string, string, string, string, string];
    const identity = { id, name: request.name, key: request.key };
    if (probe) return { ok: true, identity, delivered: Number(delivered) };
    if (first === "first") this.listener({ type: "user.connected", person: id, name: request.name });
    const own = this.ownPeople.get(id);
    const known = created === "new" ? freshHash : resume === "" ? null : resume;
    if (own) {
      own.connections++;
      own.name = request.name;
      own.key = request.key;
      own.resume ??= known;
    } else {
      this.ownPeople.set(id, { name: request.name, key: request.key, connections: 1, resume: known });
    }
    return { ok: true, identity, delivered: Number(delivered), ...(created === "new" ? { resume: freshKey } : {}) };
  }

  detach(id: string, delivered: number): void {
    const own = this.ownPeople.get(id);
    const name = own?.name ?? "";
    if (own && --own.connections <= 0) this.ownPeople.delete(id);
    this.redis.send("EVAL", [DETACH, "0", id, this.nodeId, String(Date.now()), String(delivered)]).then(
      (last) => last === 2 && this.listener({ type: "user.disconnected", person: id, name }),
      () => {},
    );
  }

  async rename(id: string, key: string, name: string): Promise<boolean> {
    const ok = (await this.ask<number>("EVAL", [RENAME, "1", keys.names, id, key, name, String(Date.now()), String(this.graceMs)])) === 1;
    const own = this.ownPeople.get(id);
    if (ok && own) {
      own.key = key;
      own.name = name;
    }
    return ok;
  }

  async lookup(key: string): Promise<Recipient | null> {
    const reply = await this.ask<[string, string, number, string] | null>("EVAL", [LOOKUP, "1", keys.names, key]);
    if (!reply) return null;
    const [id, name, online, delivered] = reply;
    return { id, name, online: online === 1, delivered: Number(delivered) };
  }

  async joined(room: string, id: string, name: string): Promise<boolean> {
    this.ownMemberships.set(`${room}${SEP}${id}`, name);
    const change = await this.ask<number>("EVAL", [JOIN_ROOM, "0", room, id, name, this.nodeId]);
    if (change === 3) this.listener({ type: "room.occupied", room });
    if (change > 0) this.listener({ type: "member.joined", room, person: id, name });
    return change > 0;
  }

  async left(room: string, id: string): Promise<boolean> {
    const entry = `${room}${SEP}${id}`;
    const name = this.ownMemberships.get(entry) ?? "";
    this.ownMemberships.delete(entry);
    const change = await this.ask<number>("EVAL", [LEAVE_ROOM, "0", room, id, this.nodeId]);
    if (change > 0) this.listener({ type: "member.left", room, person: id, name });
    if (change === 3) this.listener({ type: "room.vacated", room });
    return change > 0;
  }

  async online(room: string): Promise<number> {
    return this.ask<number>("HLEN", [keys.members(room)]);
  }

  async members(room: string, cap: number): Promise<string[]> {
    if (cap <= 0) return [];
    // One HSCAN page: O(cap), not O(room size), however big the room.
    const [, flat] = await this.ask<[string, string[]]>("HSCAN", [keys.members(room), "0", "COUNT", String(cap)]);
    const names: string[] = [];
    for (let i = 1; i < flat.length && names.length < cap; i += 2) names.push(flat[i]!);
    return names;
  }

  async rooms(after: string, limit: number): Promise<{ rooms: RoomCount[]; more: boolean }> {
    const names = await this.ask<string[]>("ZRANGEBYLEX", [keys.rooms, after === "" ? "-" : `(${after}`, "+", "LIMIT", "0", String(limit + 1)]);
    const page = names.slice(0, limit);
    // Pipelined: one round trip for the page's counts.
    const counts = await Promise.all(page.map((room) => this.ask<number>("HLEN", [keys.members(room)])));
    return { rooms: page.map((room, i) => ({ room, online: counts[i]! })).filter((r) => r.online > 0), more: names.length > limit };
  }

  async memberPage(room: string, cursor: string, limit: number): Promise<{ members: Member[]; next: string | null }> {
    const [next, flat] = await this.ask<[string, string[]]>("HSCAN", [keys.members(room), cursor, "COUNT", String(limit)]);
    const members: Member[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) members.push({ id: flat[i]!, name: flat[i + 1]! });
    return { members, next: next === "0" ? null : next };
  }

  async otherNodes(): Promise<string[]> {
    const nodes = (await this.ask<string[]>("SMEMBERS", [keys.nodes])).filter((n) => n !== this.nodeId);
    const alive = await Promise.all(nodes.map((n) => this.ask<number>("EXISTS", [keys.alive(n)])));
    return nodes.filter((_, i) => alive[i] === 1).sort();
  }

  watch(listener: (event: DirectoryEvent) => void): void {
    this.listener = listener;
  }

  health(): Record<string, unknown> {
    return { node: this.nodeId, cluster: this.lastSweepNodes };
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    // Leave cleanly: our people go now rather than after the TTL, and the rooms hear it.
    try {
      await this.redis.send("DEL", [keys.alive(this.nodeId)]);
      await this.announceLeft(await this.bury(this.nodeId));
    } catch {
      // Redis is down: the TTL will do it.
    }
  }
}
