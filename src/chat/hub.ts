// The hub: who is online, who is in which room, and what each client frame does.
// Fan-out never loops over recipients here: a frame is encoded once and handed to the
// bus, which ends in Bun's native server.publish.
import type { Server } from "bun";
import type { Bus } from "../bus/bus.ts";
import { topics } from "../bus/bus.ts";
import type { Config } from "../config.ts";
import type { Directory } from "./directory.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { HistoryStore, Page } from "../store/history.ts";
import { privateConversation } from "../store/history.ts";
import { checkName, checkRoom, nameKey } from "./names.ts";
import { PresenceCoalescer } from "./presence.ts";
import type { ClientFrame, ErrorCode, Ref, ServerFrame } from "./protocol.ts";
import { decode, encode, ProtocolError } from "./protocol.ts";
import { RateLimiter } from "./ratelimit.ts";
import type { ChatSocket, Session } from "./session.ts";

const INBOX_PREFIX = topics.inbox("");
const NOT_STORED = "the message could not be stored; it was not delivered, send it again";

/** Most messages one replay (welcome, joined) carries; the client asks again for more. */
export const REPLAY_MAX = 1000;
/** Frames a client may send before its welcome is out; more is abuse. */
const BACKLOG_MAX = 64;

export interface HubDeps {
  config: Config;
  store: HistoryStore;
  metrics: Metrics;
  log: Logger;
  /** Cluster mode only: names and presence across nodes. */
  directory?: Directory;
}

export class Hub {
  /** Sessions with an open socket, by name key. */
  readonly sessions = new Map<string, Session>();
  /** Name keys admitted but not yet open, so two handshakes cannot take one name. */
  private readonly reservedNames = new Set<string>();
  /** Local members of each room. */
  private readonly rooms = new Map<string, Set<Session>>();
  /** Newest message id delivered on this node, per room topic (for gap-free replays). */
  private readonly lastDelivered = new Map<string, number>();
  private readonly limiter: RateLimiter;
  private readonly presence: PresenceCoalescer;
  private server: Server<Session> | null = null;
  bus: Bus | null = null;
  private nextId = 1;
  shuttingDown = false;

  constructor(private readonly deps: HubDeps) {
    const c = deps.config;
    this.limiter = new RateLimiter(c.rateLimit, c.rateBurst, c.rateAbuseClose);
    this.presence = new PresenceCoalescer(c.presenceWindow, async (change) => {
      // Name lists are capped: in a storm of joins, listing every name to every member
      // would bring back the N² cost coalescing removes. `truncated` tells clients to ask `who`.
      const cap = c.maxMembersListed;
      const truncated = change.joined.length > cap || change.left.length > cap;
      const frame = encode({
        type: "presence",
        room: change.room,
        joined: truncated ? change.joined.slice(0, cap) : change.joined,
        left: truncated ? change.left.slice(0, cap) : change.left,
        online: await this.online(change.room),
        ...(truncated ? { truncated: true as const } : {}),
      });
      this.deps.metrics.presenceFrames.inc();
      this.publish(topics.room(change.room), frame);
    }, (room) => this.localOnline(room));
  }

  attach(server: Server<Session>, bus: Bus): void {
    this.server = server;
    this.bus = bus;
  }

  /** The bus hands every frame for this node here; Bun fans it out in native code. */
  readonly deliver = (topic: string, frame: string, seq: number): void => {
    if (topic.startsWith(INBOX_PREFIX)) {
      // One recipient: send to its socket directly.
      const ws = this.sessions.get(topic.slice(INBOX_PREFIX.length))?.ws;
      if (!ws) return;
      ws.send(frame);
      this.deps.metrics.messagesOut.inc();
      this.deps.metrics.bytesOut.inc(frame.length);
      return;
    }
    if (seq > 0) this.lastDelivered.set(topic, seq);
    const server = this.server;
    if (!server) return;
    server.publish(topic, frame);
    const recipients = server.subscriberCount(topic);
    this.deps.metrics.messagesOut.inc(recipients);
    this.deps.metrics.bytesOut.inc(recipients * frame.length);
  };

  private publish(topic: string, frame: string, seq = 0): void {
    this.bus?.publish(topic, frame, seq);
  }

  // ---- admission helpers -------------------------------------------------------------

  nameAvailable(key: string): boolean {
    return !this.sessions.has(key) && !this.reservedNames.has(key);
  }

  /** Reserve a name at admission: locally, and across the cluster when there is one. */
  async reserveName(key: string, name: string): Promise<boolean> {
    if (!this.nameAvailable(key)) return false;
    this.reservedNames.add(key);
    const directory = this.deps.directory;
    if (directory && !(await directory.claim(key, name).catch(() => false))) {
      this.reservedNames.delete(key);
      return false;
    }
    return true;
  }

  /** Whether a name is free anywhere (admission preflight: nothing is reserved). */
  async nameFree(key: string): Promise<boolean> {
    if (!this.nameAvailable(key)) return false;
    const directory = this.deps.directory;
    return directory ? (await directory.lookup(key).catch(() => null)) === null : true;
  }

  releaseReservation(key: string): void {
    this.reservedNames.delete(key);
    this.deps.directory?.release(key);
  }

  newSession(name: string, ip: string, room: string, since: number | undefined, lockedName: boolean, allowedRooms: Set<string> | null, tokenExpires = 0): Session {
    return {
      id: (this.nextId++).toString(36),
      name,
      key: nameKey(name),
      ip,
      room,
      rooms: new Set(),
      alive: true,
      rate: this.limiter.fresh(Date.now()),
      lockedName,
      tokenExpires,
      allowedRooms,
      since,
      ws: null,
      ready: false,
      backlog: null,
      closed: false,
    };
  }

  /** Members of a room on every node (this node alone without a cluster). */
  async online(room: string): Promise<number> {
    const directory = this.deps.directory;
    if (directory) return directory.online(room).catch(() => this.localOnline(room));
    return this.localOnline(room);
  }

  private localOnline(room: string): number {
    return this.rooms.get(room)?.size ?? 0;
  }

  async members(room: string): Promise<string[]> {
    const directory = this.deps.directory;
    if (directory) return directory.members(room, this.deps.config.maxMembersListed).catch(() => this.localMembers(room));
    return this.localMembers(room);
  }

  private localMembers(room: string): string[] {
    const set = this.rooms.get(room);
    if (!set) return [];
    const names: string[] = [];
    const cap = this.deps.config.maxMembersListed;
    for (const s of set) {
      if (names.length >= cap) break;
      names.push(s.name);
    }
    return names;
  }

  // ---- socket lifecycle --------------------------------------------------------------

  async open(ws: ChatSocket): Promise<void> {
    const s = ws.data;
    s.ws = ws;
    this.reservedNames.delete(s.key);
    this.sessions.set(s.key, s);
    // No per-socket inbox topic: a private frame for this user is sent straight to its
    // socket by deliver() (a Map lookup). Each topic a socket joins costs memory per socket.
    await this.bus?.interest(topics.inbox(s.key), true);
    const room = s.room;
    s.room = "";
    const entered = await this.enterRoom(s, room, s.since);
    if (s.closed) return;
    if (!entered) {
      ws.close(1011, "could not join the room");
      return;
    }
    const [online, members] = await Promise.all([this.online(room), this.members(room)]);
    if (s.closed) return;
    this.send(s, {
      type: "welcome",
      you: { id: s.id, name: s.name },
      room,
      online,
      members,
      history: entered.messages,
      rooms: [...s.rooms],
    });
    this.becomeReady(s);
  }

  private becomeReady(s: Session): void {
    s.ready = true;
    const backlog = s.backlog;
    s.backlog = null;
    if (backlog) for (const raw of backlog) this.message(s, raw);
  }

  close(s: Session): void {
    if (s.closed) return;
    s.closed = true;
    s.ready = false;
    if (this.sessions.get(s.key) === s) {
      this.sessions.delete(s.key);
      this.deps.directory?.release(s.key);
      void this.bus?.interest(topics.inbox(s.key), false);
    }
    this.reservedNames.delete(s.key);
    // Bun has already dropped a closed socket's subscriptions; only our maps need updating.
    s.ws = null;
    for (const room of s.rooms) this.removeFromRoom(s, room);
    s.rooms.clear();
  }

  /** Subscribe `s` to `room` and read its history so no message falls between the two. */
  private async enterRoom(s: Session, room: string, since: number | undefined): Promise<Page | null> {
    const topic = topics.room(room);
    const firstLocal = !this.rooms.has(room);
    if (firstLocal) await this.bus?.interest(topic, true);
    let page: Page;
    try {
      page = await this.catchUp(room, topic, since);
    } catch (error) {
      this.deps.log.error("history_read_failed", { room, error: String(error) });
      page = { messages: [], more: false };
    }
    if (s.closed || !s.ws) return null;
    if (!s.rooms.has(room)) {
      let members = this.rooms.get(room);
      if (!members) {
        members = new Set();
        this.rooms.set(room, members);
      }
      members.add(s);
      s.rooms.add(room);
      s.ws.subscribe(topic);
      this.deps.directory?.joined(room, s.name);
      this.presence.joined(room, s.name);
    }
    s.room = room;
    return page;
  }

  /**
   * History for a client entering a room: the tail, or everything after `since`. Reads
   * may be asynchronous (Redis); if this node delivered newer messages while we read,
   * read on from where the page ended, so the replay meets the live stream with no gap.
   */
  private async catchUp(room: string, topic: string, since: number | undefined): Promise<Page> {
    const store = this.deps.store;
    if (!store.keepsHistory) return { messages: [], more: false };
    const page = since === undefined
      ? await store.before(room, undefined, this.deps.config.historyOnJoin)
      : await store.after(room, since, REPLAY_MAX);
    if (since === undefined && page.messages.length === 0) return page;
    let last = page.messages.at(-1)?.id ?? since ?? 0;
    while (!page.more && (this.lastDelivered.get(topic) ?? 0) > last) {
      const extra = await store.after(room, last, REPLAY_MAX - page.messages.length);
      if (extra.messages.length === 0) break;
      page.messages.push(...extra.messages);
      page.more = extra.more;
      last = page.messages.at(-1)!.id;
    }
    return page;
  }

  private removeFromRoom(s: Session, room: string): void {
    const members = this.rooms.get(room);
    if (!members) return;
    members.delete(s);
    s.ws?.unsubscribe(topics.room(room));
    this.deps.directory?.left(room, s.name);
    this.presence.left(room, s.name);
    if (members.size === 0) {
      this.rooms.delete(room);
      void this.bus?.interest(topics.room(room), false);
    }
  }

  // ---- client frames -----------------------------------------------------------------

  message(s: Session, raw: string | Buffer): void {
    const m = this.deps.metrics;
    m.messagesIn.inc();
    m.bytesIn.inc(raw.length);
    s.alive = true;
    if (s.closed) return;
    if (!s.ready) {
      if (typeof raw !== "string") return this.error(s, "binary_not_supported", "send text frames: JSON or plain text");
      s.backlog ??= [];
      if (s.backlog.length >= BACKLOG_MAX) return s.ws?.close(1008, "too many frames before welcome");
      s.backlog.push(raw);
      return;
    }
    const verdict = this.limiter.take(s.rate, Date.now());
    if (verdict !== "ok") {
      m.rateLimited.inc();
      if (verdict === "abusive") {
        this.deps.log.warn("rate_abuse_closed", { user: s.name, ip: s.ip });
        s.ws?.close(1008, "rate limit exceeded repeatedly");
        return;
      }
      return this.error(s, "rate_limited", `slow down: at most ${this.deps.config.rateLimit} messages per second`);
    }
    if (typeof raw !== "string") return this.error(s, "binary_not_supported", "send text frames: JSON or plain text");
    let frame: ClientFrame;
    try {
      frame = decode(raw, this.deps.config);
    } catch (error) {
      if (error instanceof ProtocolError) return this.error(s, error.code, error.message, error.ref);
      throw error;
    }
    this.dispatch(s, frame);
  }

  private dispatch(s: Session, f: ClientFrame): void {
    switch (f.type) {
      case "chat":
        return this.chat(s, f.room, f.text, f.ref);
      case "private":
        return void this.privateMessage(s, f.to, f.text, f.ref);
      case "join":
        return void this.join(s, f.room, f.since, f.ref);
      case "leave":
        return this.leave(s, f.room, f.ref);
      case "nick":
        return void this.nick(s, f.name, f.ref);
      case "typing":
        return this.typing(s, f.room, f.ref);
      case "history":
        return void this.history(s, f.room, f.with, f.before, f.limit, f.ref);
      case "who":
        return void this.who(s, f.room, f.ref);
      case "ping":
        return this.send(s, { type: "pong", ref: f.ref, ts: Date.now() });
    }
  }

  /** A token's `rooms` claim, checked (with an error frame when it says no). */
  private mayEnter(s: Session, room: string, ref: Ref | undefined): boolean {
    if (!s.allowedRooms || s.allowedRooms.has(room)) return true;
    this.error(s, "forbidden_room", `your token does not allow room "${room}"`, ref);
    return false;
  }

  /** The member room named by a frame (or the current one), or an error to the client. */
  private memberRoom(s: Session, requested: string | undefined, ref: Ref | undefined): string | null {
    const room = requested === undefined ? s.room : requested.toLowerCase();
    if (room === "" || !s.rooms.has(room)) {
      this.error(s, "not_in_room", room === "" ? "join a room first" : `you are not in room "${room.slice(0, 64)}"`, ref);
      return null;
    }
    return room;
  }

  private chat(s: Session, requestedRoom: string | undefined, text: string, ref: Ref | undefined): void {
    const room = this.memberRoom(s, requestedRoom, ref);
    if (room === null) return;
    this.deps.store.append({ kind: "room", room, from: s.name, text, ts: Date.now(), ref }, (item) => {
      if (item === null) return this.error(s, "store_unavailable", NOT_STORED, ref);
      this.deps.metrics.chatMessages.inc();
      if (!this.deps.store.publishesOnCommit) this.publish(topics.room(room), encode(item), item.id);
    });
  }

  private async privateMessage(s: Session, to: string, text: string, ref: Ref | undefined): Promise<void> {
    const toKey = nameKey(to);
    let toName = this.sessions.get(toKey)?.name ?? null;
    if (toName === null && this.deps.directory) toName = await this.deps.directory.lookup(toKey).catch(() => null);
    if (toName === null) return this.error(s, "no_such_user", `no user named "${to.slice(0, 64)}" is online`, ref);
    const fromKey = s.key;
    this.deps.store.append({ kind: "private", from: s.name, to: toName, fromKey, toKey, text, ts: Date.now(), ref }, (item) => {
      if (item === null) return this.error(s, "store_unavailable", NOT_STORED, ref);
      this.deps.metrics.privateMessages.inc();
      if (this.deps.store.publishesOnCommit) return;
      const frame = encode(item);
      this.publish(topics.inbox(toKey), frame);
      if (toKey !== fromKey) this.publish(topics.inbox(fromKey), frame);
    });
  }

  private async join(s: Session, rawRoom: string, since: number | undefined, ref: Ref | undefined): Promise<void> {
    const verdict = checkRoom(rawRoom);
    if (!verdict.ok) return this.error(s, "bad_room", verdict.reason, ref);
    const room = verdict.name;
    if (!this.mayEnter(s, room, ref)) return;
    if (!s.rooms.has(room) && s.rooms.size >= this.deps.config.maxRoomsPerConnection) {
      return this.error(s, "too_many_rooms", `at most ${this.deps.config.maxRoomsPerConnection} rooms per connection`, ref);
    }
    const page = await this.enterRoom(s, room, since);
    if (!page) return;
    const [online, members] = await Promise.all([this.online(room), this.members(room)]);
    this.send(s, { type: "joined", room, online, members, history: page.messages, more: page.more, ref });
  }

  private leave(s: Session, rawRoom: string, ref: Ref | undefined): void {
    const room = rawRoom.toLowerCase();
    if (!s.rooms.has(room)) return this.error(s, "not_in_room", `you are not in room "${room.slice(0, 64)}"`, ref);
    s.rooms.delete(room);
    this.removeFromRoom(s, room);
    if (s.room === room) s.room = s.rooms.values().next().value ?? "";
    this.send(s, { type: "left", room, ref });
  }

  private async nick(s: Session, rawName: string, ref: Ref | undefined): Promise<void> {
    if (s.lockedName) return this.error(s, "name_locked", "your name comes from your token and cannot change", ref);
    const verdict = checkName(rawName, this.deps.config.maxNameLength);
    if (!verdict.ok) return this.error(s, "bad_name", verdict.reason, ref);
    const name = verdict.name;
    const key = nameKey(name);
    if (name === s.name) return;
    if (key !== s.key && !(await this.reserveName(key, name))) return this.error(s, "name_taken", `the name "${name}" is taken`, ref);
    if (s.closed) return this.releaseReservation(key);
    const old = s.name;
    if (key !== s.key) {
      this.reservedNames.delete(key);
      this.sessions.delete(s.key);
      this.deps.directory?.release(s.key);
      void this.bus?.interest(topics.inbox(s.key), false);
      s.key = key;
      this.sessions.set(key, s);
      void this.bus?.interest(topics.inbox(key), true);
    }
    s.name = name;
    // One frame per room the user is in (a handful), each fanned out natively.
    for (const room of s.rooms) this.publish(topics.room(room), encode({ type: "nick", room, from: old, name }));
    if (s.rooms.size === 0) this.send(s, { type: "nick", room: "", from: old, name });
  }

  private typing(s: Session, requestedRoom: string | undefined, ref: Ref | undefined): void {
    const room = this.memberRoom(s, requestedRoom, ref);
    if (room === null) return;
    this.publish(topics.room(room), encode({ type: "typing", room, from: s.name }));
  }

  private async history(s: Session, requestedRoom: string | undefined, withName: string | undefined, before: number | undefined, limit: number | undefined, ref: Ref | undefined): Promise<void> {
    const store = this.deps.store;
    if (!store.keepsHistory) return this.error(s, "history_off", "this server keeps no history", ref);
    const count = Math.min(limit ?? 50, REPLAY_MAX);
    let conversation: string;
    if (withName !== undefined) {
      // A user reads only conversations they are part of: the key always includes their own.
      conversation = privateConversation(s.key, nameKey(withName));
    } else {
      const verdict = checkRoom(requestedRoom ?? s.room);
      if (!verdict.ok) return this.error(s, "bad_room", verdict.reason, ref);
      if (!this.mayEnter(s, verdict.name, ref)) return;
      conversation = verdict.name;
    }
    let page: Page;
    try {
      page = await store.before(conversation, before, count);
    } catch (error) {
      this.deps.log.error("history_read_failed", { error: String(error) });
      return this.error(s, "store_unavailable", "history could not be read", ref);
    }
    this.send(s, withName !== undefined
      ? { type: "history", with: withName, messages: page.messages, more: page.more, ref }
      : { type: "history", room: conversation, messages: page.messages, more: page.more, ref });
  }

  private async who(s: Session, requestedRoom: string | undefined, ref: Ref | undefined): Promise<void> {
    const verdict = checkRoom(requestedRoom ?? s.room);
    if (!verdict.ok) return this.error(s, "bad_room", verdict.reason, ref);
    const room = verdict.name;
    const [online, members] = await Promise.all([this.online(room), this.members(room)]);
    this.send(s, { type: "who", room, online, members, ref });
  }

  // ---- sending -----------------------------------------------------------------------

  /** One frame to one client. Optional fields left undefined (e.g. `ref`) are dropped by JSON. */
  send(s: Session, frame: ServerFrame): void {
    const ws = s.ws;
    if (!ws || s.closed) return;
    const text = encode(frame);
    ws.send(text);
    this.deps.metrics.messagesOut.inc();
    this.deps.metrics.bytesOut.inc(text.length);
  }

  error(s: Session, code: ErrorCode, message: string, ref?: Ref): void {
    this.deps.metrics.errors.inc(code);
    this.send(s, { type: "error", code, message, ref });
  }

  /** A notice to every connected client on this node (shutdown: rare, so a plain loop). */
  broadcastSystem(text: string): void {
    const frame = encode({ type: "system", text });
    for (const s of this.sessions.values()) s.ws?.send(frame);
  }

  /**
   * After a Redis outage: deliver to local members what their rooms got meanwhile, from
   * the store, starting after the last id this node delivered.
   */
  async replayMissed(subscribedTopics: string[]): Promise<void> {
    for (const topic of subscribedTopics) {
      const room = topics.roomOf(topic);
      if (room === null || !this.rooms.has(room)) continue;
      const last = this.lastDelivered.get(topic) ?? 0;
      const page = await this.deps.store.after(room, last, REPLAY_MAX);
      for (const item of page.messages) {
        if (item.id > (this.lastDelivered.get(topic) ?? 0)) this.deliver(topic, encode(item), item.id);
      }
    }
  }

  flushPresence(): void {
    this.presence.flush();
  }

  stop(): void {
    this.presence.stop();
  }
}
