// The chat engine: a connection's life (open, frames, close), rooms entered and left, and
// delivery of what the broker fans out to this node. Fan-out never loops over recipients
// here: a frame is encoded once and handed to the broker, which ends in Bun's native
// server.publish. Handlers for each client frame live in handlers.ts.
//
// The rule that keeps it correct under interleavings: state a race can touch (membership,
// names, caps) is recorded synchronously before the first await, and every await is
// followed by a check that the connection and its membership are still the ones we
// started with (`stillIn`).
import type { Config } from "../config.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { ErrorCode, Ref, ServerFrame } from "../protocol/frames.ts";
import { encode } from "../protocol/frames.ts";
import { ProtocolError, refOf } from "../protocol/decode.ts";
import { bunchatDialect } from "../protocol/dialects/bunchat.ts";
import type { Dialect } from "../protocol/dialects/dialect.ts";
import { Gate } from "./gate.ts";
import { dispatch } from "./handlers.ts";
import { SmallMap } from "./small.ts";
import { LocalDirectory } from "./local-directory.ts";
import { MemoryIdentities } from "../broker/identities.ts";
import type { Broker, ChatSocket, Directory, Fanout } from "./ports.ts";
import { PresenceCoalescer, type PresenceChange } from "./presence.ts";
import { RateLimiter } from "./ratelimit.ts";
import { Registry, type Person } from "./registry.ts";
import { catchUp, REPLAY_MAX, type Replay } from "./replay.ts";
import { TailCache } from "./tail-cache.ts";
import { connectionId, type Entering, type Membership, Session, type SessionInit } from "./session.ts";
import { inboxConversation, topics } from "./topics.ts";

/** Frames a client may send before its welcome is out; more is abuse. */
const BACKLOG_MAX = 64;
/** Private frames held for a connection until its welcome is out. */
const OUTBOX_MAX = 1024;
/** Pages of missed private messages replayed at connect (beyond: history {with}). */
const INBOX_PAGES = 10;

export interface EngineDeps {
  config: Config;
  broker: Broker;
  /** Names, people and presence: Redis in cluster mode; by default this node's registry
   * with people kept in memory (give `directory` to keep them with the history). */
  directory?: Directory | ((registry: Registry) => Directory);
  metrics: Metrics;
  log: Logger;
  /** How long one read of a room's tail serves later joiners (tests that order every read use 0). */
  tailTtlMs?: number;
}

/** A room entered, ready to be announced: replay, counts and the member list. */
export interface Entered {
  membership: Membership;
  replay: Replay;
  online: number;
  members: string[];
}

const NO_FANOUT: Fanout = { publish() {}, subscriberCount: () => 0 };

const DELETED_PREFIX = '{"type":"deleted"';

export class ChatEngine {
  readonly registry = new Registry();
  readonly directory: Directory;
  readonly broker: Broker;
  readonly config: Config;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** What a person's message passes before it is stored: mutes, the publish hook (gate.ts). */
  readonly gate: Gate;
  private readonly limiter: RateLimiter;
  private readonly presence: PresenceCoalescer;
  private fanout: Fanout = NO_FANOUT;
  /** One read of a room's recent tail serves everyone entering it within a few ms. */
  private readonly tails: TailCache;
  /** Frames are deflated for clients that offered it (PER_MESSAGE_DEFLATE on). */
  private readonly compress: boolean;
  private nextId = 1;
  /** Connections speaking each dialect other than bunchat's on this node: room frames are also rendered for them. */
  private readonly otherDialects = new Map<Dialect, number>();
  shuttingDown = false;
  /**
   * A person renamed here: tell the other nodes (backend-door.ts wires it to cluster
   * control), whose registries still hold the person's connections under the old name.
   */
  onRenamed: ((personId: string, key: string, name: string) => void) | null = null;

  constructor(deps: EngineDeps) {
    this.config = deps.config;
    this.broker = deps.broker;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.gate = new Gate(deps.broker);
    const directory = deps.directory ?? ((registry: Registry) => new LocalDirectory(registry, new MemoryIdentities(), deps.config.nameGrace * 1000));
    this.directory = typeof directory === "function" ? directory(this.registry) : directory;
    const c = deps.config;
    this.limiter = new RateLimiter(c.rateLimit, c.rateBurst, c.rateAbuseClose);
    this.compress = c.perMessageDeflate !== "off";
    this.presence = new PresenceCoalescer(
      c.presenceWindow,
      (change) => this.emitPresence(change),
      (room) => this.registry.localOnline(room),
      () => this.directory.nodes?.() ?? 1,
    );
    this.broker.onDeliver(this.deliver);
    this.tails = new TailCache(this.broker, deps.tailTtlMs);
  }

  /** Bun's server, once it exists: where room frames fan out natively. */
  attach(fanout: Fanout): void {
    this.fanout = fanout;
  }

  newSession(init: SessionInit): Session {
    return new Session(this.nextId++, init.ip, init.dialect, init.token, {
      identity: init.identity,
      resume: init.resume,
      delivered: init.delivered,
      inboxSince: init.inbox ?? init.delivered,
      inboxHead: init.inboxHead,
      firstRoom: init.room,
      since: init.since,
      epoch: init.epoch,
      backlog: null,
      outbox: null,
    });
  }

  // ---- delivery ----------------------------------------------------------------------

  /** The broker hands every frame for this node here; Bun fans room frames out natively. */
  readonly deliver = (topic: string, frame: string, seq: number): void => {
    const personId = topics.inboxOf(topic);
    if (personId !== null) {
      // One person: a handful of connections at most, sent to directly.
      const person = this.registry.people.get(personId);
      if (person) this.toPerson(person, frame, seq);
      return;
    }
    // A moderator deleted a message (rare, unsequenced): no joiner may be served the old tail.
    if (seq === 0 && frame.startsWith(DELETED_PREFIX)) this.tails.forget(topics.roomOf(topic) ?? "");
    this.fanout.publish(topic, frame, this.compress);
    const recipients = this.fanout.subscriberCount(topic);
    this.metrics.messagesOut.inc(recipients);
    this.metrics.bytesOut.inc(recipients * frame.length);
    if (this.otherDialects.size > 0) for (const dialect of this.otherDialects.keys()) this.deliverInDialect(dialect, topic, frame);
  };

  /** The same room frame for a dialect's sockets: rendered once per dialect, fanned out natively. */
  private deliverInDialect(dialect: Dialect, topic: string, frame: string): void {
    const dialectTopic = dialect.topic(topic);
    const recipients = this.fanout.subscriberCount(dialectTopic);
    if (recipients === 0) return;
    for (const text of dialect.render(JSON.parse(frame) as ServerFrame)) {
      this.fanout.publish(dialectTopic, text, this.compress);
      this.metrics.messagesOut.inc(recipients);
      this.metrics.bytesOut.inc(recipients * text.length);
    }
  }

  /**
   * An inbox frame to every connection of a person, each at most once. It counts as
   * delivered only once a connection had it: a frame parked for a connection still before
   * its welcome is not, for that connection may close first, and then the person's next
   * connection (a new device, with no `?inbox=` of its own) must be handed it.
   */
  private toPerson(person: Person, frame: string, seq: number): void {
    let had = false;
    for (const s of person.sessions) had = this.toInbox(s, frame, seq) || had;
    if (had && seq > person.delivered) person.delivered = seq;
  }

  /**
   * Before the welcome an inbox frame waits; after, one already replayed is skipped. True
   * when this connection has the frame now (sent, or sent before).
   */
  private toInbox(s: Session, frame: string, seq: number): boolean {
    if (s.closed) return false;
    const entering = s.entering;
    if (entering) {
      entering.outbox ??= [];
      if (entering.outbox.length < OUTBOX_MAX) entering.outbox.push({ seq, frame });
      return false;
    }
    if (seq <= s.inboxMark) return true;
    s.inboxMark = seq;
    if (s.dialect === bunchatDialect) this.sendText(s, frame);
    else for (const text of s.dialect.render(JSON.parse(frame) as ServerFrame, s.name)) this.sendText(s, text);
    return true;
  }

  /** One encoded frame to one connection. */
  private sendText(s: Session, text: string): void {
    const ws = s.ws;
    if (!ws || s.closed) return;
    ws.send(text, this.compress);
    this.metrics.messagesOut.inc();
    this.metrics.bytesOut.inc(text.length);
  }

  /** One frame to one client, in its dialect. Optional fields left undefined (e.g. `ref`) are dropped by JSON. */
  send(s: Session, frame: ServerFrame): void {
    if (s.dialect === bunchatDialect) return this.sendText(s, encode(frame));
    for (const text of s.dialect.render(frame, s.name)) this.sendText(s, text);
  }

  error(s: Session, code: ErrorCode, message: string, ref?: Ref): void {
    this.metrics.errors.inc(code);
    this.send(s, { type: "error", code, message, ref });
  }

  // ---- connection lifecycle ----------------------------------------------------------

  async open(ws: ChatSocket, s: Session): Promise<void> {
    const entering = s.entering;
    if (!entering || s.closed) return;
    s.ws = ws;
    if (s.dialect !== bunchatDialect) this.otherDialects.set(s.dialect, (this.otherDialects.get(s.dialect) ?? 0) + 1);
    const person = this.registry.attach(s, entering.identity, entering.delivered);
    const inbox = topics.inbox(person.id);
    s.inbox = true;
    let entered: Entered | null;
    let missed: { seq: number; frame: string }[];
    try {
      // The inbox first (subscribed before it is read: what arrives meanwhile waits in the
      // outbox), then the room, whose replay meets the live stream last: nothing may be
      // awaited between that meeting and the welcome, or the room's frames would pass by.
      await this.broker.subscribe(inbox);
      if (s.closed) return;
      // The inbox's newest position: as the claim read it, or newer, as the subscribe
      // found it (frames stored since, not delivered here: nobody listened yet).
      const head = Math.max(entering.inboxHead ?? 0, this.broker.delivered(inbox));
      // A mark above what the inbox holds (a lost store, or someone else's) would hide
      // every frame below it: such a client starts from the person's own mark.
      if (entering.inboxSince > head) entering.inboxSince = Math.min(entering.delivered, head);
      missed = entering.inboxHead !== undefined && head <= entering.inboxSince ? [] : await this.readInbox(person.id, entering.inboxSince);
      if (s.closed) return;
      entered = await this.enterRoom(s, entering.firstRoom, entering.since, entering.epoch);
    } catch (error) {
      if (s.closed) return;
      this.log.warn("open_failed", { user: s.name, error: String(error) });
      this.error(s, "store_unavailable", "the chat is unavailable right now; reconnect in a moment");
      ws.close(1011, "could not join the room");
      return;
    }
    if (!entered || !this.stillIn(s, entered.membership)) return;
    const { replay } = entered;
    const inboxMark = Math.max(entering.inboxSince, missed.at(-1)?.seq ?? 0);
    this.send(s, {
      type: "welcome",
      you: { id: connectionId(s), name: person.name, person: person.id },
      ...(entering.resume !== undefined ? { resume: entering.resume } : {}),
      inbox: inboxMark,
      room: entered.membership.room,
      online: entered.online,
      members: entered.members,
      rooms: [...s.rooms.keys()],
      history: replay.messages,
      more: replay.more,
      ...(replay.incomplete ? { incomplete: true as const } : {}),
      epoch: replay.epoch,
    });
    this.finishEntering(s, entered.membership);
    s.inboxMark = entering.inboxSince;
    this.becomeReady(s, entering, missed);
  }

  /** Private messages the person missed since `after`, as the frames their inbox holds. */
  private async readInbox(personId: string, after: number): Promise<{ seq: number; frame: string }[]> {
    if (!this.broker.keepsHistory) return [];
    const missed: { seq: number; frame: string }[] = [];
    let from = after;
    for (let page = 0; page < INBOX_PAGES; page++) {
      const read = await this.broker.after(inboxConversation(personId), from, REPLAY_MAX);
      for (const item of read.messages) {
        const seq = item.type === "private" ? (item.box ?? 0) : 0;
        missed.push({ seq, frame: encode(item) });
        from = seq;
      }
      if (!read.more) break;
    }
    return missed;
  }

  private becomeReady(s: Session, entering: Entering, missed: { seq: number; frame: string }[]): void {
    s.entering = null;
    const person = s.person!;
    // Missed private messages first, then those that arrived while this one connected.
    const handed = (m: { seq: number; frame: string }) => {
      if (this.toInbox(s, m.frame, m.seq) && m.seq > person.delivered) person.delivered = m.seq;
    };
    for (const m of missed) handed(m);
    const outbox = entering.outbox;
    if (outbox) for (const o of outbox.sort((a, b) => a.seq - b.seq)) handed(o);
    const backlog = entering.backlog;
    if (backlog) for (const raw of backlog) this.handle(s, raw);
  }

  close(s: Session): void {
    if (s.closed) return;
    s.closed = true;
    if (s.dialect !== bunchatDialect && s.ws !== null) {
      const left = (this.otherDialects.get(s.dialect) ?? 1) - 1;
      if (left > 0) this.otherDialects.set(s.dialect, left);
      else this.otherDialects.delete(s.dialect);
    }
    for (const room of [...s.rooms.keys()]) this.exitRoom(s, room);
    if (s.inbox && s.person) {
      this.broker.unsubscribe(topics.inbox(s.person.id));
      s.inbox = false;
    }
    const person = s.person;
    if (person) {
      this.registry.detach(s);
      this.directory.detach(person.id, person.delivered);
    }
    s.ws = null;
    s.entering = null;
  }

  /**
   * People who lost their name while the cluster could not hear from this node (it froze,
   * or Redis came back without them): their connections close with 4009, and reconnecting
   * tells them the name is someone else's now.
   */
  evict(personIds: readonly string[]): void {
    for (const id of personIds) {
      const person = this.registry.people.get(id);
      if (!person) continue;
      for (const s of [...person.sessions]) s.ws?.close(4009, "your name was taken while the cluster could not reach this server");
    }
  }

  /**
   * Another node renamed a person who has connections here too: they speak and are found
   * under the new name here as well (else this node's tabs would go on saying "from" the
   * old name, which anyone may take at once). Rooms were told by the renaming node's room
   * frames; connections in no joined room hear it directly, as there.
   */
  renamedElsewhere(personId: string, key: string, name: string): void {
    this.directory.renamedElsewhere?.(personId, key, name);
    const person = this.registry.people.get(personId);
    if (!person || person.name === name) return;
    const old = person.name;
    this.registry.rename(person, key, name);
    this.nickUnjoined(person, old, name);
  }

  /**
   * A rename to the person's connections that no room frame reaches (in no room, or still
   * entering them all); `asked` (the connection that asked for it) gets its `ref` back.
   */
  nickUnjoined(person: Person, old: string, name: string, asked?: { s: Session; ref: Ref | undefined }): void {
    for (const c of person.sessions) {
      if (c.closed || [...c.rooms.values()].some((m) => m.joined)) continue;
      this.send(c, { type: "nick", room: c.room, from: old, name, ...(c === asked?.s ? { ref: asked.ref } : {}) });
    }
  }

  /** An admitted handshake that never opened (the upgrade failed): give its claim back. */
  abandon(s: Session): void {
    if (s.entering) this.directory.detach(s.entering.identity.id, 0);
  }

  // ---- rooms -------------------------------------------------------------------------

  /** The connection's membership of `room` is still the one `membership` recorded. */
  stillIn(s: Session, membership: Membership): boolean {
    return !s.closed && s.rooms.get(membership.room) === membership;
  }

  /**
   * Enter a room: membership recorded at once (caps, leave and close see it), this node
   * subscribed, the replay read to meet the live stream. Returns null when the connection
   * left or closed meanwhile; throws (membership undone) when the broker or directory is
   * unavailable. The caller announces the result and calls finishEntering in one step.
   */
  async enterRoom(s: Session, asked: string, since: number | undefined, epoch: string | undefined): Promise<Entered | null> {
    const person = s.person!;
    const room = this.registry.roomName(asked);
    const membership: Membership = { room, joined: false };
    s.rooms.set(room, membership);
    if (this.registry.enter(s, room)) this.announceJoin(room, person);
    const topic = topics.room(room);
    const subscribed = this.broker.subscribe(topic);
    try {
      await subscribed;
      if (!this.stillIn(s, membership)) return null;
      const cap = this.config.maxMembersListed;
      const [replay, view] = await Promise.all([
        catchUp(this.broker, { room, since, epoch, tail: this.config.historyOnJoin }, () => this.stillIn(s, membership), this.tails),
        this.directory.view(room, cap),
      ]);
      if (!this.stillIn(s, membership)) return null;
      this.presence.counts(room, view.online);
      return { membership, replay, online: view.online, members: view.members };
    } catch (error) {
      if (this.stillIn(s, membership)) this.exitRoom(s, room);
      throw error;
    }
  }

  /** The replay is out: live frames of the room now reach this socket, in order after it. */
  finishEntering(s: Session, membership: Membership): void {
    membership.joined = true;
    s.ws?.subscribe(s.dialect.topic(topics.room(membership.room)));
    s.room = membership.room;
  }

  /** Leave a room (leave, close or a failed join); false when not in it. */
  exitRoom(s: Session, room: string): boolean {
    const membership = s.rooms.get(room);
    if (!membership) return false;
    s.rooms.delete(room);
    const topic = topics.room(room);
    // Bun has already dropped a closed socket's subscriptions.
    if (!s.closed && membership.joined) s.ws?.unsubscribe(s.dialect.topic(topic));
    this.broker.unsubscribe(topic);
    const person = s.person;
    if (person && this.registry.exit(s, room)) this.announceLeave(room, person);
    if (s.room === room) s.room = s.rooms.keys().next().value ?? "";
    return true;
  }

  /** A person's first connection here entered a room: presence if it is their first anywhere. */
  private announceJoin(room: string, person: Person): void {
    const name = person.name;
    this.directory.joined(room, person.id, name).then(
      (first) => first && this.presence.joined(room, name),
      () => this.presence.joined(room, name), // Redis down: this node's view is all we have
    );
  }

  private announceLeave(room: string, person: Person): void {
    const name = person.name;
    this.directory.left(room, person.id).then(
      (last) => last && this.presence.left(room, name),
      () => this.presence.left(room, name),
    );
  }

  private async emitPresence(change: PresenceChange): Promise<void> {
    // Name lists are capped: in a storm of joins, listing every name to every member
    // would bring back the N² cost coalescing removes. `truncated` tells clients to ask `who`.
    const cap = this.config.maxMembersListed;
    const truncated = change.joined.length > cap || change.left.length > cap;
    let online: number;
    try {
      online = await this.directory.online(change.room);
    } catch {
      online = this.registry.localOnline(change.room);
    }
    this.presence.counts(change.room, online);
    const frame = encode({
      type: "presence",
      room: change.room,
      joined: truncated ? change.joined.slice(0, cap) : change.joined,
      left: truncated ? change.left.slice(0, cap) : change.left,
      online,
      ...(truncated ? { truncated: true as const } : {}),
    });
    this.metrics.presenceFrames.inc();
    this.broker.broadcast(topics.room(change.room), frame);
  }

  // ---- client frames -----------------------------------------------------------------

  message(s: Session, raw: string | Buffer): void {
    this.metrics.messagesIn.inc();
    this.metrics.bytesIn.inc(raw.length);
    s.alive = true;
    if (s.closed) return;
    const entering = s.entering;
    if (entering) {
      if (typeof raw !== "string") return this.error(s, "binary_not_supported", "send text frames: JSON or plain text");
      entering.backlog ??= [];
      if (entering.backlog.length >= BACKLOG_MAX) return s.ws?.close(1008, "too many frames before welcome");
      entering.backlog.push(raw);
      return;
    }
    this.handle(s, raw);
  }

  /** A frame, counted already: rate limit, decode, dispatch. */
  private handle(s: Session, raw: string | Buffer): void {
    if (s.closed) return;
    const verdict = this.limiter.take(s);
    if (verdict !== "ok") {
      this.metrics.rateLimited.inc();
      if (verdict === "abusive") {
        this.log.warn("rate_abuse_closed", { user: s.name, ip: s.ip });
        s.ws?.close(1008, "rate limit exceeded repeatedly");
        return;
      }
      return this.error(s, "rate_limited", `slow down: at most ${this.config.rateLimit} messages per second`, typeof raw === "string" ? refOf(raw) : undefined);
    }
    if (typeof raw !== "string") return this.error(s, "binary_not_supported", "send text frames: JSON or plain text");
    let reading;
    try {
      reading = s.dialect.read(raw, this.config);
    } catch (error) {
      if (error instanceof ProtocolError) return this.error(s, error.code, error.message, error.ref);
      throw error;
    }
    if ("reply" in reading) return this.sendText(s, reading.reply);
    dispatch(this, s, reading.frame);
  }

  // ---- whole-node operations ---------------------------------------------------------

  *sessions(): IterableIterator<Session> {
    yield* this.registry.sessions();
  }

  /** A notice to every connected client on this node (shutdown: rare, so a plain loop). */
  broadcastSystem(text: string): void {
    const frame = encode({ type: "system", text });
    for (const s of this.registry.sessions()) {
      if (s.dialect === bunchatDialect) this.sendText(s, frame);
      else this.send(s, { type: "system", text });
    }
  }

  flushPresence(): Promise<void> {
    return this.presence.flush();
  }

  stop(): void {
    this.presence.stop();
  }
}
