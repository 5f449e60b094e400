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
import { CompactMap } from "../engine/compact-map.ts";
import { ShortCache } from "../engine/short-cache.ts";
import { SmallSet } from "../engine/small.ts";
import type { Logger } from "../obs/log.ts";
import { encode } from "../protocol/frames.ts";
import { sharingName } from "../protocol/names.ts";
import type { RedisConnection } from "./connection.ts";
import { keys, SEP } from "./keys.ts";
import { Lua } from "./lua.ts";
import { BURY, CLAIM, DETACH, FORGET, LOOKUP, MEMBERSHIP, REANNOUNCE, RENAME, ROOM_VIEW } from "./scripts.ts";

function unavailable(error: unknown): DirectoryUnavailable {
  return new DirectoryUnavailable(`the cluster directory (Redis) is unavailable: ${error instanceof Error ? error.message : String(error)}`);
}

export const NODE_TTL_MS = 10_000;
/** How long one read of a room's count and names serves the joiners that follow. */
const VIEW_TTL_MS = 50;
export const SWEEP_MS = 3_000;

/**
 * One of this node's people, as this node told Redis: the set of rooms they are in (the
 * first held inline, as SmallSet does: one object per person rather than two), with
 * their name, key, connections here and resume hash beside it.
 */
class OwnPerson extends SmallSet<string> {
  constructor(
    /** The person's current name: also the name their memberships are announced under. */
    public name: string,
    public key: string,
    /** Connections of the person on this node. */
    public connections: number,
    public resume: string | null,
  ) {
    super();
  }

  /** Rooms the person is in (as this node told Redis). */
  get rooms(): SmallSet<string> {
    return this;
  }
}

export class RedisDirectory implements Directory {
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  /** This node's people and their memberships, re-announced after Redis comes back empty. */
  private readonly ownPeople = new CompactMap<OwnPerson>();
  lastSweepNodes: string[] = [];
  private readonly lua: Lua;
  private readonly views = new ShortCache<{ online: number; members: string[] }>(VIEW_TTL_MS);
  private listener: (event: DirectoryEvent) => void = () => {};

  constructor(
    private readonly redis: RedisConnection,
    readonly nodeId: string,
    private readonly graceMs: number,
    /** Seconds a person is remembered after their last connection (then their record expires). */
    private readonly retentionSeconds: number,
    private readonly log: Logger,
    /** Publish a frame cluster-wide (the broker), for presence of buried people. */
    private readonly broadcast: (topic: string, frame: string) => void,
  ) {
    this.lua = new Lua(redis, [CLAIM, DETACH, RENAME, LOOKUP, MEMBERSHIP, BURY, ROOM_VIEW, REANNOUNCE, FORGET]);
  }

  async start(): Promise<void> {
    await this.lua.load();
    await this.beat();
    await this.sweep().catch(() => {}); // so /healthz lists the cluster from the start
    this.heartbeat = setInterval(() => void this.beat().then(() => this.sweep()).catch(() => {}), SWEEP_MS);
    this.heartbeat.unref?.();
  }

  /**
   * Refresh this node's heartbeat. Its key already gone means the others buried this node
   * (it froze past the TTL) or Redis lost its data: put our people back (`recover`).
   */
  private async beat(recover = true): Promise<void> {
    const [previous] = (await Promise.all([
      this.redis.send("SET", [keys.alive(this.nodeId), String(Date.now()), "PX", String(NODE_TTL_MS), "GET"]),
      this.redis.send("SADD", [keys.nodes, this.nodeId]),
    ])) as [string | null, number];
    const lapsed = previous === null && this.beaten;
    this.beaten = true;
    if (lapsed && recover) {
      this.log.warn("node_heartbeat_lapsed", { node: this.nodeId });
      await this.reannounce();
    }
  }

  private beaten = false;

  /** Redis came back (perhaps without data): announce ourselves and our people again. */
  async reannounce(): Promise<void> {
    await this.lua.load();
    await this.beat(false);
    const now = String(Date.now());
    // What Redis holds for this node, to take back what it no longer has: detaches and
    // leaves sent while Redis was down were lost, and would stay as ghosts.
    const [recordedIds, recordedMembers] = (await Promise.all([
      this.redis.send("SMEMBERS", [`bc:node:${this.nodeId}:ids`]),
      this.redis.send("SMEMBERS", [`bc:node:${this.nodeId}:members`]),
    ])) as [string[], string[]];
    // Sent together: Bun pipelines them, one round trip instead of one per person. Every
    // write is absolute or guarded, so a reconnect that lost nothing changes nothing.
    const people = [...this.ownPeople];
    const answers = await Promise.all(people.map(([id, p]) =>
      this.lua.run(REANNOUNCE, [], [id, p.name, p.key, p.resume ?? "", String(p.connections), this.nodeId, now, String(this.graceMs)])));
    const evicted = people.filter((_, i) => answers[i] === 0).map(([id]) => id);
    const forgets = recordedIds.filter((id) => !this.ownPeople.has(id)).map((id) => this.lua.run(FORGET, [], [id, this.nodeId, now, String(this.retentionSeconds)]));
    const memberships = people.flatMap(([id, p]) => [...p.rooms].map((room) => ({ room, id, name: p.name })));
    const own = new Set(memberships.map((m) => `${m.room}${SEP}${m.id}`));
    const gone = recordedMembers.filter((entry) => !own.has(entry));
    const leaves = gone.map((entry) => {
      const [room, id] = entry.split(SEP) as [string, string];
      return this.membership("l", room, id);
    });
    const joins = memberships.map(({ room, id, name }) => this.membership("j", room, id, name));
    await Promise.all([...forgets, ...leaves, ...joins]);
    if (evicted.length > 0) {
      // Someone else took a name while this node could not speak for its holder: one name,
      // one person. This node's holder goes (and may come back under another name).
      this.log.warn("names_lost_in_recovery", { people: evicted.length });
      this.onEvicted(evicted);
    }
  }

  /** Called with the ids of this node's people who lost their name in a recovery. */
  onEvicted: (ids: string[]) => void = () => {};

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
    const [gone, vacated, offline] = (await this.lua.run(BURY, [], [node, String(Date.now()), String(this.retentionSeconds)])) as [string[], string[], string[]];
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
      throw unavailable(error);
    }
  }

  private async script<T>(source: string, keys: string[], args: string[]): Promise<T> {
    try {
      return (await this.lua.run(source, keys, args)) as T;
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** One request to a batched script (Lua.batched), its fields joined; what Redis failed is unavailable. */
  private async batched<T>(source: string, keys: string[], shared: string[], fields: string[]): Promise<T> {
    // Names and rooms refuse control characters; a token's subject is its name. Checked
    // anyway: a separator inside a field would shift every field after it.
    if (fields.some((f) => f.includes(SEP))) throw unavailable(new Error("a request field contains the separator"));
    let answer: unknown;
    try {
      answer = await this.lua.batched(source, keys, shared, fields.join(SEP));
    } catch (error) {
      throw unavailable(error);
    }
    if (answer === "error") throw unavailable(new Error("Redis failed the request"));
    return answer as T;
  }

  async claim(request: ClaimRequest, probe = false): Promise<Claim> {
    const resume = request.resume === undefined ? "" : resumeHash(request.resume);
    const freshKey = newResumeKey();
    const freshHash = resumeHash(freshKey);
    const subject = request.subject === undefined ? "" : subjectId(request.subject);
    const freshId = newPersonId();
    const fields = [request.key, request.name, resume, subject, freshId, freshHash, String(request.maxConnections ?? 1_000_000), probe ? "1" : "0"];
    const answer = await this.batched<string>(CLAIM, [keys.names], [this.nodeId, String(Date.now()), String(this.graceMs)], fields);
    if (answer === "taken") return { ok: false, reason: "taken" };
    if (answer === "full") return { ok: false, reason: "too_many_connections" };
    // `current` and `currentKey`: the person's name and key when they are connected already (CLAIM keeps them).
    const created = answer === "new";
    const [, id, delivered, inboxHead, first, current, currentKey] = created
      ? ["ok", freshId, "0", "0", "first", "", ""]
      : (answer.split(SEP) as [string, string, string, string, string, string, string]);
    const name = current || request.name;
    const replyKey = currentKey || request.key;
    // Most names are their own key: one string for both while the person is here.
    const key = sharingName(replyKey, name);
    const identity = { id, name, key };
    if (probe) return { ok: true, identity, delivered: Number(delivered) };
    if (first === "first") this.listener({ type: "user.connected", person: id, name });
    const own = this.ownPeople.get(id);
    const known = created ? freshHash : resume === "" ? null : resume;
    if (own) {
      own.connections++;
      own.name = name;
      own.key = key;
      own.resume ??= known;
    } else {
      this.ownPeople.set(id, new OwnPerson(name, key, 1, known));
    }
    return { ok: true, identity, delivered: Number(delivered), inboxHead: Number(inboxHead), ...(created ? { resume: freshKey } : {}) };
  }

  detach(id: string, delivered: number): void {
    const own = this.ownPeople.get(id);
    const name = own?.name ?? "";
    if (own && --own.connections <= 0) this.ownPeople.delete(id);
    this.lua.run(DETACH, [], [id, this.nodeId, String(Date.now()), String(delivered), String(this.retentionSeconds)]).then(
      (last) => last === 2 && this.listener({ type: "user.disconnected", person: id, name }),
      () => {},
    );
  }

  async rename(id: string, key: string, name: string): Promise<boolean> {
    const ok = (await this.script<number>(RENAME, [keys.names], [id, key, name, String(Date.now()), String(this.graceMs)])) === 1;
    const own = this.ownPeople.get(id);
    if (ok && own) {
      own.key = key;
      own.name = name;
    }
    return ok;
  }

  renamedElsewhere(id: string, key: string, name: string): void {
    // What a recovery re-announces (the person and their rooms) must carry the new name.
    const own = this.ownPeople.get(id);
    if (!own) return;
    own.key = sharingName(key, name);
    own.name = name;
  }

  async lookup(key: string): Promise<Recipient | null> {
    const reply = await this.script<[string, string, number, string] | null>(LOOKUP, [keys.names], [key]);
    if (!reply) return null;
    const [id, name, online, delivered] = reply;
    return { id, name, online: online === 1, delivered: Number(delivered) };
  }

  async joined(room: string, id: string, name: string): Promise<boolean> {
    this.ownPeople.get(id)?.rooms.add(room);
    const change = await this.membership("j", room, id, name);
    if (change === 3) this.listener({ type: "room.occupied", room });
    if (change > 0) this.listener({ type: "member.joined", room, person: id, name });
    return change > 0;
  }

  async left(room: string, id: string): Promise<boolean> {
    const own = this.ownPeople.get(id);
    const name = own?.name ?? "";
    own?.rooms.delete(room);
    const change = await this.membership("l", room, id);
    if (change > 0) this.listener({ type: "member.left", room, person: id, name });
    if (change === 3) this.listener({ type: "room.vacated", room });
    return change > 0;
  }

  /**
   * A join ('j', room, id, name) or leave ('l', room, id) of this node's, through MEMBERSHIP:
   * every change of a turn in one call, in the order made (a leave must not overtake the
   * join before it). Its answer, as a number.
   */
  private async membership(...request: string[]): Promise<number> {
    return Number(await this.batched<number>(MEMBERSHIP, [], [this.nodeId], request));
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

  /**
   * Count and names, read once per room for everyone who enters it within VIEW_TTL_MS:
   * a storm of joins into one room would otherwise ask Redis once per joiner. It is what a
   * joiner is told; presence frames correct it right after.
   */
  view(room: string, cap: number): Promise<{ online: number; members: string[] }> {
    return this.views.get(room, cap, () =>
      this.script<[number, ...string[]]>(ROOM_VIEW, [], [room, String(cap)]).then(([online, ...members]) => ({ online, members })),
    );
  }

  nodes(): number {
    return Math.max(1, this.lastSweepNodes.length);
  }

  async rooms(after: string, limit: number): Promise<{ rooms: RoomCount[]; more: boolean }> {
    const rooms: RoomCount[] = [];
    let from = after;
    for (;;) {
      const wanted = limit - rooms.length;
      const names = await this.ask<string[]>("ZRANGEBYLEX", [keys.rooms, from === "" ? "-" : `(${from}`, "+", "LIMIT", "0", String(wanted + 1)]);
      const page = names.slice(0, wanted);
      // Pipelined: one round trip for the page's counts.
      const counts = await Promise.all(page.map((room) => this.ask<number>("HLEN", [keys.members(room)])));
      rooms.push(...page.map((room, i) => ({ room, online: counts[i]! })).filter((r) => r.online > 0));
      const more = names.length > wanted;
      // A room emptied between the two reads is left out; the page is filled from further
      // on, since the caller's next cursor is the last room it gets (a short or empty page
      // would end or rewind its paging).
      if (!more || rooms.length === limit) return { rooms, more };
      from = page.at(-1)!;
    }
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
