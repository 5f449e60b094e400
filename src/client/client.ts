// The bunchat client: one logical connection that survives network blips and server
// restarts. It reconnects with backoff and full jitter, comes back as the same person (resume
// key or token), asks each room for what it missed (`since` + `epoch`) and the inbox for the
// private messages it missed (`inbox`), drops what it has seen already, and only then sends
// what was queued or unconfirmed while it was away. Requests resolve with the server's
// answer (matched by `ref`) or reject with its error code.
import { CLOSE_BANNED, CLOSE_KICKED, type ClientFrame, type ErrorCode, type HistoryItem, type MessageFrame, type PrivateFrame, type ReplayFacts, type ServerFrame } from "../protocol/frames.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { Emitter } from "./emitter.ts";
import { ChatError } from "./errors.ts";
import { historyPages, type HistoryOptions, type HistoryTarget } from "./history.ts";
import { InboxCursor } from "./inbox.ts";
import { RoomState, type RoomView } from "./room-state.ts";
import { admissionUrl, explainRefusal, OPEN, socketConstructor, socketUrl, type FetchLike, type Refusal, type SocketConstructor, type SocketLike } from "./transport.ts";

type Frame<T extends ServerFrame["type"]> = Extract<ServerFrame, { type: T }>;
export type WelcomeFrame = Frame<"welcome">;
export type JoinedFrame = Frame<"joined">;
export type PresenceFrame = Frame<"presence">;
export type TypingFrame = Frame<"typing">;
export type NickFrame = Frame<"nick">;
export type HistoryFrame = Frame<"history">;
export type WhoFrame = Frame<"who">;
export type ErrorFrame = Frame<"error">;

/** connecting → online; offline between attempts; closed after close() or a final refusal. */
export type Status = "connecting" | "online" | "offline" | "closed";

/** Who this client is: `person` stays the same across connections and reconnects. */
export interface Identity {
  id: string;
  name: string;
  person: string;
}

/** What a client needs to carry on where it left off (e.g. across a page reload). */
export interface ClientSnapshot {
  name?: string;
  resume?: string;
  /** The inbox position (last `box`) seen. */
  inbox?: number;
  /** Rooms in join order, each with its recovery cursor (omit `lastId` to get the recent tail instead). */
  rooms: { name: string; lastId?: number; epoch?: string }[];
  /** People with whom a private conversation is open. */
  conversations: string[];
}

export interface ConnectOptions {
  /** Nickname (ignored with a token: its subject is the name). Default: the server picks one. */
  name?: string;
  /** The first room (default "lobby"). */
  room?: string;
  /** More rooms to be in: joined after the welcome, and again after every reconnect. */
  rooms?: string[];
  /** Resume key of the person to connect as (another tab, a reload); see `resumeKey`. */
  resume?: string;
  /** A JWT when the server has AUTH_SECRET; a function is asked again before every attempt. */
  token?: string | (() => string | Promise<string>);
  /** Carry on from a snapshot() (rooms with their cursors, inbox position, conversations). */
  restore?: ClientSnapshot;
  /** The WebSocket class, where there is no global one (Node 20: `import WebSocket from "ws"`). */
  WebSocket?: SocketConstructor;
  /** fetch, to learn why a handshake was refused (default: the global one). */
  fetch?: FetchLike;
  /** Reconnect delays, or false to stay closed after the first disconnect. */
  reconnect?: BackoffOptions | false;
  /**
   * Requests kept while disconnected (default 100). When full, new ones are rejected at
   * once with `queue_full`: what is already queued is never dropped to make room.
   */
  queueLimit?: number;
}

export interface PresenceChange {
  room: string;
  joined: string[];
  left: string[];
  online: number;
  /** The room's live member set after the change. */
  members: ReadonlySet<string>;
}

export interface NickChange {
  /** The room the change was announced in ("" for a connection in no room). */
  room: string;
  from: string;
  name: string;
  /** True when it is this client's person who was renamed. */
  self: boolean;
}

/** A hole in what was recovered: messages after the cursor are gone. */
export interface Gap {
  /** The room, or undefined for the private inbox. */
  room?: string;
  /** `epoch`: the server lost its history (ids may restart); `trimmed`: retention removed them. */
  reason: "epoch" | "trimmed";
}

export interface ClientEvents {
  status: [status: Status, detail: { retryInMs?: number; attempt: number }];
  /** Every welcome; `reconnect` is false for the first. */
  welcome: [frame: WelcomeFrame, reconnect: boolean];
  /** A room message, once, in id order per room; `replay` for what a welcome/joined caught up. */
  message: [message: MessageFrame, replay: boolean];
  /** A private message sent or received by this person, once; `replay` for missed ones. */
  private: [message: PrivateFrame, replay: boolean];
  /** A room was entered (or entered again after a reconnect): members and cursor are fresh. */
  joined: [room: RoomView];
  left: [room: string];
  presence: [change: PresenceChange];
  /** Someone else is typing in a room. */
  typing: [frame: TypingFrame];
  nick: [change: NickChange];
  incomplete: [gap: Gap];
  refused: [refusal: Refusal, willRetry: boolean];
  /** An error frame no request of this client is waiting for. */
  error: [error: ChatError];
  /** A server announcement: to everyone, or to one `room`. */
  system: [text: string, room: string | undefined];
  /** A moderator deleted message `id` of `room`: stop showing it. */
  deleted: [room: string, id: number];
  /** The server gave this person a resume key: keep it to come back as them. */
  resume: [key: string];
  disconnected: [code: number, reason: string];
  /** Every frame, as received (before de-duplication). */
  frame: [frame: ServerFrame];
}

/** The frame type that answers each request type. */
interface Replies {
  chat: MessageFrame;
  private: PrivateFrame;
  join: JoinedFrame;
  leave: Frame<"left">;
  nick: NickFrame;
  history: HistoryFrame;
  who: WhoFrame;
  ping: Frame<"pong">;
}
type RequestType = keyof Replies;
const REPLY_TYPE: { [K in RequestType]: Replies[K]["type"] } = {
  chat: "message", private: "private", join: "joined", leave: "left", nick: "nick", history: "history", who: "who", ping: "pong",
};

interface Pending {
  ref: string;
  frame: ClientFrame & { ref: string };
  /** The connection it was last written to (0: not yet). */
  sentOn: number;
  /** Written by the catch-up (queued while away, or sent again), not by the caller's call. */
  flushed: boolean;
  /** Times the server's rate limit turned it away during a catch-up. */
  limited: number;
  resolve(frame: ServerFrame): void;
  reject(error: ChatError): void;
}

/** Refusals that retrying cannot fix: the client stops and the caller must act. */
const FINAL_REFUSALS = new Set([
  "bad_name", "bad_room", "bad_since", "bad_epoch", "bad_inbox", "bad_resume",
  "auth_required", "bad_token", "forbidden_room", "origin_not_allowed", "name_taken", "banned",
]);

/** Close codes after which coming back by itself would be wrong: a moderator removed this person. */
const FINAL_CLOSES = new Map<number, "kicked" | "banned">([[CLOSE_KICKED, "kicked"], [CLOSE_BANNED, "banned"]]);

const WHO_INTERVAL_MS = 10_000;
/**
 * A queue flushed after a reconnect can exceed the server's burst: what the rate limit
 * turns away (the server dropped it, so sending it again cannot duplicate it) goes again
 * after a pause, a few times. A call made while connected gets `rate_limited` as it is.
 */
const RATE_RETRY_MS = 1000;
const RATE_RETRIES = 8;

export class ChatClient extends Emitter<ClientEvents> {
  private ws: SocketLike | null = null;
  /** Numbers connections: frames and callbacks of an older one are ignored. */
  private generation = 0;
  private state: Status = "connecting";
  private welcomed = false;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly backoff: Backoff | null;
  private readonly Socket: SocketConstructor;
  private readonly fetchFn: FetchLike | undefined;
  private readonly queueLimit: number;

  private identity: Identity | null = null;
  private name: string;
  /** Names this person had during this session: their old private messages are still ours. */
  private readonly ownNames = new Set<string>();
  private resume: string | undefined;
  private readonly initialRoom: string;
  private readonly roomStates = new Map<string, RoomState>();
  private current = "";
  private readonly inbox: InboxCursor;
  private readonly openConversations = new Set<string>();
  private lastWelcome: WelcomeFrame | null = null;
  private readyWaiters: { resolve(frame: WelcomeFrame): void; reject(error: ChatError): void }[] = [];

  /** Unique per client: refs travel in frames other members see, so they must not collide. */
  private readonly refPrefix = `k${Math.random().toString(36).slice(2, 8)}.`;
  private refCount = 0;
  /** Requests not yet written (disconnected, or catching up). */
  private queue: Pending[] = [];
  /** Requests written and not answered, in the order they were made. */
  private readonly inflight = new Map<string, Pending>();
  /** The client's own requests during catch-up (rejoins, the inbox barrier). */
  private readonly internal = new Map<string, (frame: ServerFrame) => void>();
  /** Refs of catch-up steps still running; null once caught up. */
  private catchingUp: Set<string> | null = null;
  private inboxReplaying = false;
  /** Catch-up requests the rate limit turned away, waiting to go again. */
  private held: Pending[] = [];
  private heldTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly url: string, private readonly options: ConnectOptions = {}) {
    super();
    new URL(url); // a bad URL is the caller's mistake: throw now, not on every retry
    this.Socket = socketConstructor(options.WebSocket);
    this.fetchFn = options.fetch ?? (typeof fetch === "function" ? (u, init) => fetch(u, init) : undefined);
    this.backoff = options.reconnect === false ? null : new Backoff(options.reconnect);
    this.queueLimit = Math.max(0, options.queueLimit ?? 100);
    const restore = options.restore;
    this.name = options.name ?? restore?.name ?? "";
    this.resume = options.resume ?? restore?.resume;
    this.inbox = new InboxCursor(restore?.inbox);
    this.initialRoom = (options.room ?? "lobby").toLowerCase();
    const rooms = restore?.rooms.length ? restore.rooms : [{ name: this.initialRoom }, ...(options.rooms ?? []).map((name) => ({ name }))];
    for (const r of rooms) {
      const name = r.name.toLowerCase();
      if (!this.roomStates.has(name)) this.roomStates.set(name, new RoomState(name, r));
    }
    for (const name of restore?.conversations ?? []) this.openConversations.add(name);
    this.current = this.roomStates.keys().next().value ?? this.initialRoom;
    void this.open();
  }

  // ---- state -------------------------------------------------------------------------

  get status(): Status {
    return this.state;
  }

  /** Who this client is, once welcomed. */
  get me(): Identity | null {
    return this.identity;
  }

  /** The key that brings this person back (store it like a password); undefined with tokens. */
  get resumeKey(): string | undefined {
    return this.resume;
  }

  /** Rooms this client is in (or will enter again on reconnect), in join order. */
  get rooms(): ReadonlyMap<string, RoomView> {
    return this.roomStates;
  }

  /** The room `send()` goes to without `{ room }`: the one joined last. */
  get currentRoom(): string {
    return this.current;
  }

  /** People with whom a private conversation is open (sent or received, not forgotten). */
  get conversations(): ReadonlySet<string> {
    return this.openConversations;
  }

  /**
   * Whether this person sent a private message: from its current name, or from one it had
   * this session — unless it was sent *to* one of its names, for then the sender is someone
   * who took a name this person gave up (a nick frees the old name at once).
   */
  sentByMe(frame: Pick<PrivateFrame, "from" | "to">): boolean {
    return frame.from === this.name || (this.ownNames.has(frame.from) && !this.ownNames.has(frame.to));
  }

  /** Who a private message is with, seen from this person: the conversation it belongs to. */
  partnerOf(frame: Pick<PrivateFrame, "from" | "to">): string {
    return this.sentByMe(frame) ? frame.to : frame.from;
  }

  /** Requests waiting to be written (disconnected or catching up). */
  get queued(): number {
    return this.queue.length;
  }

  /** Forget a private conversation (it no longer appears in `conversations` or snapshots). */
  forget(name: string): void {
    this.openConversations.delete(name);
  }

  /** Everything needed to carry on elsewhere: pass it back as `restore`. */
  snapshot(): ClientSnapshot {
    return {
      ...(this.name ? { name: this.name } : {}),
      ...(this.resume !== undefined ? { resume: this.resume } : {}),
      ...(this.inbox.last !== undefined ? { inbox: this.inbox.last } : {}),
      rooms: [...this.roomStates.values()].map((r) => ({
        name: r.name, ...(r.lastId !== undefined ? { lastId: r.lastId } : {}), ...(r.epoch !== undefined ? { epoch: r.epoch } : {}),
      })),
      conversations: [...this.openConversations],
    };
  }

  /** Resolves with the welcome once connected (at once if connected now); rejects if the client stops. */
  ready(): Promise<WelcomeFrame> {
    if (this.welcomed && this.lastWelcome) return Promise.resolve(this.lastWelcome);
    if (this.stopped) return Promise.reject(new ChatError("closed", "the client is closed"));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  // ---- requests ----------------------------------------------------------------------

  /** Send to a room (default: the current room); resolves with the stored message (id, ts). */
  send(text: string, options: { room?: string } = {}): Promise<MessageFrame> {
    return this.request({ type: "chat", room: (options.room ?? this.current).toLowerCase(), text });
  }

  /** Send a private message to a person by name; resolves once stored (`state`: delivered or queued). */
  private(to: string, text: string): Promise<PrivateFrame> {
    this.openConversations.add(to);
    return this.request({ type: "private", to, text });
  }

  /** Enter a room (it becomes the current room); resolves with its members and cursor. */
  async join(room: string): Promise<RoomView> {
    const name = room.toLowerCase();
    await this.request({ type: "join", room: name });
    return this.roomStates.get(name)!;
  }

  /** Leave a room, on every connection of this person. */
  async leave(room: string): Promise<void> {
    await this.request({ type: "leave", room: room.toLowerCase() });
  }

  /** Change this person's name; resolves with the name the server settled on. */
  async nick(name: string): Promise<string> {
    return (await this.request({ type: "nick", name })).name;
  }

  /** Ask for a room's online count and members (the member set is refreshed too). */
  async who(room = this.current): Promise<{ online: number; members: string[] }> {
    const reply = await this.request({ type: "who", room: room.toLowerCase() });
    return { online: reply.online, members: reply.members };
  }

  /** Round trip to the server, in ms. */
  async ping(): Promise<number> {
    const started = Date.now();
    await this.request({ type: "ping" });
    return Date.now() - started;
  }

  /** Tell a room you are typing. Not queued: a stale typing notice is worse than none. */
  typing(room = this.current): void {
    if (this.canWrite()) this.write({ type: "typing", room: room.toLowerCase() });
  }

  /**
   * Older messages of a room or of the private conversation with a person, a page at a
   * time, newest page first: `for await (const page of client.history({ room: "lobby" }))`.
   */
  history(target: HistoryTarget, options: HistoryOptions = {}): AsyncGenerator<HistoryItem[], void, undefined> {
    return historyPages(async (before, limit) => {
      const reply = await this.request({ type: "history", ...target, ...(before !== undefined ? { before } : {}), limit });
      return { messages: reply.messages, more: reply.more };
    }, options);
  }

  /** Close for good: pending requests reject with `closed`. */
  close(): void {
    this.stop(new ChatError("closed", "the client was closed"));
  }

  private request<F extends ClientFrame & { type: RequestType }>(frame: F): Promise<Replies[F["type"]]> {
    return new Promise((resolve, reject) => {
      if (this.stopped) return reject(new ChatError("closed", "the client is closed"));
      const ref = `${this.refPrefix}${++this.refCount}`;
      const pending: Pending = {
        ref,
        frame: { ...frame, ref },
        sentOn: 0,
        flushed: false,
        limited: 0,
        resolve: resolve as (frame: ServerFrame) => void,
        reject,
      };
      if (this.canWrite()) return this.dispatch(pending);
      if (this.queue.length >= this.queueLimit) {
        return reject(new ChatError("queue_full", `disconnected, and ${this.queueLimit} requests are queued already`));
      }
      this.queue.push(pending);
    });
  }

  /** Connected, welcomed and caught up: requests go out at once. */
  private canWrite(): boolean {
    return this.welcomed && this.catchingUp === null && this.ws?.readyState === OPEN;
  }

  private dispatch(pending: Pending): void {
    pending.sentOn = this.generation;
    this.inflight.set(pending.ref, pending);
    this.write(pending.frame);
  }

  private write(frame: ClientFrame): void {
    this.ws?.send(JSON.stringify(frame));
  }

  /** Answer a request by ref: its reply type resolves it, an error rejects it. */
  private settle(frame: ServerFrame): void {
    const ref = "ref" in frame ? frame.ref : undefined;
    if (typeof ref !== "string") return;
    const pending = this.inflight.get(ref);
    if (!pending) return;
    if (frame.type === "error") {
      this.inflight.delete(ref);
      if (frame.code === "rate_limited" && pending.flushed && pending.limited < RATE_RETRIES) return this.holdBack(pending);
      pending.reject(new ChatError(frame.code, frame.message));
    } else if (frame.type === REPLY_TYPE[pending.frame.type as RequestType]) {
      this.inflight.delete(ref);
      pending.resolve(frame);
    }
  }

  private holdBack(pending: Pending): void {
    pending.limited++;
    this.held.push(pending);
    this.heldTimer ??= setTimeout(() => {
      this.heldTimer = null;
      const held = this.held.splice(0);
      if (this.canWrite()) for (const p of held) this.dispatch(p);
      else this.queue.unshift(...held); // disconnected meanwhile: they lead the queue
    }, RATE_RETRY_MS);
  }

  // ---- connection --------------------------------------------------------------------

  private setStatus(status: Status, retryInMs?: number): void {
    this.state = status;
    this.emit("status", status, { ...(retryInMs !== undefined ? { retryInMs } : {}), attempt: this.backoff?.attempts ?? 0 });
  }

  /** The room the handshake enters: the first one this client is in. */
  private firstRoom(): RoomState | undefined {
    return this.roomStates.values().next().value;
  }

  private query(): Record<string, string | number | undefined> {
    const first = this.firstRoom();
    const since = first?.lastId;
    return {
      name: this.name || undefined,
      room: first?.name ?? this.initialRoom,
      since,
      epoch: since !== undefined ? first?.epoch : undefined,
      inbox: this.inbox.last,
    };
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    const generation = ++this.generation;
    this.setStatus("connecting");
    let token: string | undefined;
    try {
      const given = this.options.token;
      token = typeof given === "function" ? await given() : given;
    } catch (error) {
      if (generation === this.generation) this.emit("error", new ChatError("bad_token", `the token function failed: ${String(error)}`));
      return this.retry(generation);
    }
    if (this.stopped || generation !== this.generation) return;
    // Secrets travel as subprotocols, not in the URL that proxies log.
    const protocols = token ? ["bearer", token] : this.resume ? ["resume", this.resume] : undefined;
    const query = this.query();
    let ws: SocketLike;
    try {
      ws = new this.Socket(socketUrl(this.url, query), protocols) as SocketLike;
    } catch (error) {
      this.emit("error", new ChatError("internal", `cannot open a WebSocket: ${String(error)}`));
      return this.retry(generation);
    }
    this.ws = ws;
    ws.onmessage = (event) => {
      if (this.ws === ws) this.receive(typeof event.data === "string" ? event.data : String(event.data));
    };
    ws.onerror = () => {}; // a close event follows, which is where it is handled
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const welcomed = this.welcomed;
      this.welcomed = false;
      this.catchingUp = null;
      this.internal.clear();
      this.inboxReplaying = false;
      this.emit("disconnected", event.code, event.reason);
      if (this.stopped) return;
      const removed = FINAL_CLOSES.get(event.code);
      if (removed) return this.stop(new ChatError(removed, event.reason || `a moderator: ${removed}`));
      if (welcomed) return this.retry(generation);
      const secrets: Record<string, string> = token ? { authorization: `Bearer ${token}` } : this.resume ? { "x-resume-key": this.resume } : {};
      void this.afterRefusal(generation, query, secrets);
    };
  }

  /** The socket closed before a welcome: ask why, stop on a refusal retrying cannot fix. */
  private async afterRefusal(generation: number, query: Record<string, string | number | undefined>, secrets: Record<string, string>): Promise<void> {
    const refusal = await explainRefusal(this.fetchFn, admissionUrl(this.url, query), secrets);
    if (this.stopped || generation !== this.generation) return;
    if (refusal) {
      const final = FINAL_REFUSALS.has(refusal.error) || this.backoff === null;
      this.emit("refused", refusal, !final);
      if (final) return this.stop(new ChatError(refusal.error, refusal.message || `the server refused the connection: ${refusal.error}`));
    }
    this.retry(generation);
  }

  private retry(generation: number): void {
    if (this.stopped || generation !== this.generation) return;
    if (!this.backoff) return this.stop(new ChatError("closed", "disconnected, and reconnecting is off"));
    const delay = this.backoff.next();
    this.setStatus("offline", delay);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.open();
    }, delay);
  }

  private stop(error: ChatError): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    this.welcomed = false;
    if (ws && ws.readyState <= OPEN) ws.close(1000);
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    for (const p of [...this.inflight.values(), ...this.held, ...this.queue]) p.reject(error);
    this.inflight.clear();
    this.held = [];
    this.queue = [];
    for (const w of this.readyWaiters.splice(0)) w.reject(error);
    this.setStatus("closed");
  }

  // ---- frames ------------------------------------------------------------------------

  private receive(text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      return; // the server sends JSON only; anything else is not ours to act on
    }
    if (typeof frame !== "object" || frame === null || typeof frame.type !== "string") return;
    this.emit("frame", frame);
    const ref = "ref" in frame && typeof frame.ref === "string" ? frame.ref : undefined;
    const internal = ref !== undefined ? this.internal.get(ref) : undefined;
    if (internal) {
      this.internal.delete(ref!);
      return internal(frame);
    }
    switch (frame.type) {
      case "welcome":
        return this.onWelcome(frame);
      case "joined": {
        const pending = ref !== undefined ? this.inflight.get(ref) : undefined;
        const askedSince = pending?.frame.type === "join" && pending.frame.since !== undefined;
        this.applyReplay(frame.room, frame, askedSince);
        this.current = frame.room;
        break;
      }
      case "left":
        this.dropRoom(frame.room);
        break;
      case "message": {
        const room = this.roomStates.get(frame.room);
        if (room && !room.accept(frame)) return;
        this.emit("message", frame, false);
        break;
      }
      case "private":
        if (!this.onPrivate(frame, this.inboxReplaying)) return;
        break;
      case "presence":
        this.onPresence(frame);
        break;
      case "typing":
        if (frame.from !== this.name) this.emit("typing", frame);
        break;
      case "nick":
        this.onNick(frame, ref !== undefined && this.inflight.has(ref));
        break;
      case "who":
        this.roomStates.get(frame.room)?.setMembers(frame.members, frame.online);
        break;
      case "error":
        if (ref === undefined || !this.inflight.has(ref)) this.emit("error", new ChatError(frame.code, frame.message));
        break;
      case "system":
        this.emit("system", frame.text, frame.room);
        break;
      case "deleted":
        this.emit("deleted", frame.room, frame.id);
        break;
      case "history":
      case "pong":
        break;
    }
    this.settle(frame);
  }

  private onWelcome(frame: WelcomeFrame): void {
    const reconnect = this.lastWelcome !== null;
    this.welcomed = true;
    this.lastWelcome = frame;
    this.backoff?.reset();
    this.identity = frame.you;
    this.name = frame.you.name;
    this.ownNames.add(frame.you.name);
    if (frame.resume !== undefined && frame.resume !== this.resume) {
      this.resume = frame.resume;
      this.emit("resume", frame.resume);
    }
    // Every room was left: the handshake had to enter one, so leave it again, quietly.
    const leaveAgain = this.roomStates.size === 0;
    const askedSince = this.firstRoom()?.lastId !== undefined;
    if (!leaveAgain && !this.roomStates.has(frame.room)) {
      // The server put us somewhere else (e.g. a token's rooms): that room comes first.
      const rest = [...this.roomStates];
      this.roomStates.clear();
      this.roomStates.set(frame.room, new RoomState(frame.room));
      for (const [k, v] of rest) this.roomStates.set(k, v);
    }
    this.catchingUp = new Set();
    // The room sends go to without { room }: kept across reconnects while still ours.
    if (!leaveAgain && (!reconnect || !this.roomStates.has(this.current))) this.current = frame.room;
    // Announced first, as on the wire: the replayed messages follow the welcome.
    this.setStatus("online");
    this.emit("welcome", frame, reconnect);
    for (const w of this.readyWaiters.splice(0)) w.resolve(frame);
    if (leaveAgain) this.step({ type: "leave", room: frame.room }, () => {});
    else this.applyReplay(frame.room, frame, askedSince);

    if (frame.more && askedSince) this.continueReplay(frame.room);
    for (const room of this.roomStates.values()) {
      if (room.name === frame.room) continue;
      this.rejoin(room);
    }
    // The missed private messages follow the welcome at once, so the answer to a ping sent
    // now arrives after all of them: then the inbox is caught up to the welcome's position.
    this.inboxReplaying = true;
    this.step({ type: "ping" }, () => {
      this.inboxReplaying = false;
      this.inbox.caughtUp(frame.inbox);
    });
  }

  /** A catch-up request of the client's own; requests wait until every one is answered. */
  private step(frame: ClientFrame, answered: (frame: ServerFrame) => void): void {
    const ref = `${this.refPrefix}${++this.refCount}`;
    const steps = this.catchingUp ??= new Set();
    steps.add(ref);
    this.internal.set(ref, (reply) => {
      answered(reply);
      steps.delete(ref);
      if (this.catchingUp === steps && steps.size === 0) this.caughtUp();
    });
    this.write({ ...frame, ref });
  }

  /** Enter a room again after a reconnect, asking for what came after its cursor. */
  private rejoin(room: RoomState): void {
    const since = room.lastId;
    this.step({ type: "join", room: room.name, ...(since !== undefined ? { since, ...(room.epoch !== undefined ? { epoch: room.epoch } : {}) } : {}) }, (reply) => {
      if (reply.type === "joined") {
        this.applyReplay(reply.room, reply, since !== undefined);
        if (reply.more && since !== undefined) this.continueReplay(reply.room);
      } else if (reply.type === "error") {
        this.dropRoom(room.name);
        this.emit("error", new ChatError(reply.code, `could not enter room "${room.name}" again: ${reply.message}`));
      }
    });
  }

  /** A replay after `since` stopped at its page size: ask for the rest. */
  private continueReplay(name: string): void {
    const room = this.roomStates.get(name);
    if (!room || room.lastId === undefined) return;
    const since = room.lastId;
    this.step({ type: "join", room: name, since, ...(room.epoch !== undefined ? { epoch: room.epoch } : {}) }, (reply) => {
      if (reply.type !== "joined") return;
      this.applyReplay(name, reply, true);
      if (reply.more) this.continueReplay(name);
    });
  }

  /**
   * Caught up: every room replayed and the inbox read. Requests written on a connection
   * that died and not answered since (their replay did not show them) go again, with their
   * ref, then the queue in order.
   */
  private caughtUp(): void {
    this.catchingUp = null;
    if (this.ws?.readyState !== OPEN) return;
    for (const pending of [...this.inflight.values()]) {
      if (pending.sentOn === this.generation) continue;
      pending.flushed = true;
      this.dispatch(pending);
    }
    for (const pending of this.queue.splice(0)) {
      pending.flushed = true;
      this.dispatch(pending);
    }
  }

  private applyReplay(name: string, facts: ReplayFacts & { online: number; members: string[] }, askedSince: boolean): void {
    let room = this.roomStates.get(name);
    if (!room) {
      room = new RoomState(name);
      this.roomStates.set(name, room);
    }
    const epochChanged = room.adoptEpoch(facts.epoch);
    room.setMembers(facts.members, facts.online);
    if (facts.incomplete) this.emit("incomplete", { room: name, reason: epochChanged ? "epoch" : "trimmed" });
    for (const item of facts.history) {
      if (item.type !== "message" || !room.accept(item)) continue;
      this.emit("message", item, true);
      this.settle(item);
    }
    // An empty, complete replay means the room has nothing before now: resume from 0.
    if (room.lastId === undefined && facts.history.length === 0 && (!facts.more || askedSince)) room.lastId = 0;
    this.emit("joined", room);
  }

  private dropRoom(name: string): void {
    if (!this.roomStates.delete(name)) return;
    if (this.current === name) this.current = this.roomStates.keys().next().value ?? this.initialRoom;
    this.emit("left", name);
  }

  /** False for a duplicate (seen on this connection or before a reconnect). */
  private onPrivate(frame: PrivateFrame, replay: boolean): boolean {
    const verdict = this.inbox.accept(frame);
    if (verdict === "duplicate") return false;
    if (verdict === "after-gap") this.emit("incomplete", { reason: "trimmed" });
    this.openConversations.add(this.partnerOf(frame));
    this.emit("private", frame, replay);
    return true;
  }

  private onPresence(frame: PresenceFrame): void {
    const room = this.roomStates.get(frame.room);
    if (!room) return;
    room.presence(frame.joined, frame.left, frame.online);
    this.emit("presence", { room: frame.room, joined: frame.joined, left: frame.left, online: frame.online, members: room.members });
    // Too many names changed to list: refresh the set, at most every 10 s per room, so a
    // join storm in a big room does not become a storm of `who` requests.
    const now = Date.now();
    if (frame.truncated && now - room.lastWho > WHO_INTERVAL_MS && this.canWrite()) {
      room.lastWho = now;
      this.write({ type: "who", room: frame.room });
    }
  }

  private onNick(frame: NickFrame, requestedHere: boolean): void {
    // A rename is announced once per room the person is in: recognise our own by the name
    // we had (the first frame moves `name`, the others match a name we had this session).
    const self = requestedHere || frame.from === this.name || (this.ownNames.has(frame.from) && this.ownNames.has(frame.name));
    if (self && frame.name !== this.name) {
      this.name = frame.name;
      this.ownNames.add(frame.name);
      if (this.identity) this.identity = { ...this.identity, name: frame.name };
    }
    if (!self && this.openConversations.delete(frame.from)) this.openConversations.add(frame.name);
    this.roomStates.get(frame.room)?.rename(frame.from, frame.name);
    this.emit("nick", { room: frame.room, from: frame.from, name: frame.name, self });
  }
}

/** Open a client: it connects at once and keeps reconnecting until close(). */
export function connect(url: string, options: ConnectOptions = {}): ChatClient {
  return new ChatClient(url, options);
}

export type { ErrorCode };
