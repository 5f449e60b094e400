// What each client frame does. Every handler answers its sender (a reply, an echo through
// the room, or an error frame carrying the frame's `ref`) and re-checks the connection
// after each await: it may have closed, left the room, or been renamed meanwhile.
import type { ClientFrame, Ref } from "../protocol/frames.ts";
import { encode } from "../protocol/frames.ts";
import { checkName, checkRoom, nameKey } from "../protocol/names.ts";
import type { ChatEngine } from "./engine.ts";
import { mutedMessage, Refused } from "./gate.ts";
import { BrokerUncertain, BrokerUnavailable, DirectoryUnavailable, InboxFull, type Page, type Recipient } from "./ports.ts";
import { REPLAY_MAX } from "./replay.ts";
import type { Session } from "./session.ts";
import { privateConversation, topics } from "./topics.ts";

const NOT_STORED = "the message could not be stored; it was not delivered, send it again";
const UNAVAILABLE = "the chat cannot reach its store right now; try again in a moment";

/** Run one decoded client frame. */
export function dispatch(engine: ChatEngine, s: Session, frame: ClientFrame): void {
  switch (frame.type) {
    case "chat":
      return chat(engine, s, frame.room, frame.text, frame.ref);
    case "private":
      return void privateMessage(engine, s, frame.to, frame.text, frame.ref);
    case "join":
      return void join(engine, s, frame.room, frame.since, frame.epoch, frame.ref);
    case "leave":
      return leave(engine, s, frame.room, frame.ref);
    case "nick":
      return void nick(engine, s, frame.name, frame.ref);
    case "typing":
      return typing(engine, s, frame.room, frame.ref);
    case "history":
      return void history(engine, s, frame.room, frame.with, frame.before, frame.limit, frame.ref);
    case "who":
      return void who(engine, s, frame.room, frame.ref);
    case "ping":
      return engine.send(s, { type: "pong", ref: frame.ref, ts: Date.now() });
  }
}

/** Broker and directory outages become store_unavailable (store_uncertain when the message may
 * have gone through); anything else is a bug, logged. */
function unavailable(engine: ChatEngine, s: Session, error: unknown, ref: Ref | undefined, message = UNAVAILABLE): void {
  if (error instanceof Refused) {
    // Refused on purpose (muted, rejected by the publish hook): the sender is told why.
    engine.metrics.errors.inc(error.code);
    return engine.send(s, { type: "error", code: error.code, message: error.message, ...(error.until !== undefined ? { until: error.until } : {}), ref });
  }
  if (error instanceof BrokerUncertain) {
    return engine.error(s, "store_uncertain", "the store's connection dropped while this was being saved: it may have gone through; check before sending it again", ref);
  }
  if (!(error instanceof BrokerUnavailable || error instanceof DirectoryUnavailable)) {
    engine.log.error("handler_failed", { user: s.name, error: String(error) });
    engine.metrics.errors.inc("internal");
  }
  engine.error(s, "store_unavailable", message, ref);
}

/** A token's `rooms` claim, checked (with an error frame when it says no). */
function mayEnter(engine: ChatEngine, s: Session, room: string, ref: Ref | undefined): boolean {
  if (!s.token?.rooms || s.token.rooms.has(room)) return true;
  engine.error(s, "forbidden_room", `your token does not allow room "${room}"`, ref);
  return false;
}

/** The member room named by a frame (or the current one), or an error to the client. */
function memberRoom(engine: ChatEngine, s: Session, requested: string | undefined, ref: Ref | undefined): string | null {
  const room = requested === undefined ? s.room : requested.toLowerCase();
  if (room === "" || !s.rooms.has(room)) {
    engine.error(s, "not_in_room", room === "" ? "join a room first" : `you are not in room "${room.slice(0, 64)}"`, ref);
    return null;
  }
  return room;
}

function chat(engine: ChatEngine, s: Session, requestedRoom: string | undefined, text: string, ref: Ref | undefined): void {
  const room = memberRoom(engine, s, requestedRoom, ref);
  if (room === null) return;
  // A member that is still entering may chat: its echo comes with the replay or live.
  engine.gate.submit(s, { kind: "room", room, from: s.name, text, ts: Date.now(), ref }).then(
    () => engine.metrics.chatMessages.inc(),
    (error) => unavailable(engine, s, error, ref, NOT_STORED),
  );
}

/**
 * Each connection's private message still finding its recipient: the next one waits for it.
 * A recipient connected here is found at once, one elsewhere (or away) needs a directory
 * lookup, so without the wait a sender's second message could be stored before its first.
 * A map beside the sessions, not a field: a session's size is counted (session.ts).
 */
const finding = new WeakMap<Session, Promise<void>>();

function privateMessage(engine: ChatEngine, s: Session, to: string, text: string, ref: Ref | undefined): void {
  const before = finding.get(s);
  const send = () => sendPrivate(engine, s, to, text, ref);
  // With nothing before it, a message to someone here is submitted at once, as before.
  const sent = before ? before.then(send) : send();
  const done = () => void (finding.get(s) === turn && finding.delete(s));
  const turn: Promise<void> = sent.then(done, done);
  finding.set(s, turn);
}

/** Find the recipient, then submit; resolves once the message is submitted (or refused). */
async function sendPrivate(engine: ChatEngine, s: Session, to: string, text: string, ref: Ref | undefined): Promise<void> {
  if (s.closed) return;
  const toKey = nameKey(to);
  const here = engine.registry.named(toKey);
  let recipient: Recipient | null = here ? { id: here.id, name: here.name, online: true, delivered: here.delivered } : null;
  if (recipient === null) {
    try {
      recipient = await engine.directory.lookup(toKey);
    } catch (error) {
      return unavailable(engine, s, error, ref);
    }
    if (s.closed) return;
  }
  if (recipient === null) return engine.error(s, "no_such_user", `nobody is called "${to.slice(0, 64)}"`, ref);
  if (!recipient.online && !engine.broker.keepsHistory) {
    return engine.error(s, "recipient_away", `${recipient.name} is away, and this server keeps no messages to give them later`, ref);
  }
  const from = s.person!;
  engine.gate.submit(s, {
    kind: "private", from: from.name, to: recipient.name, fromId: from.id, toId: recipient.id, text, ts: Date.now(), ref,
    state: recipient.online ? "delivered" : "queued",
    ...(recipient.online ? {} : { queue: { delivered: recipient.delivered, cap: engine.config.maxPendingPrivate } }),
  }).then(
    () => engine.metrics.privateMessages.inc(),
    (error) => error instanceof InboxFull
      ? engine.error(s, "inbox_full", `${recipient.name} is away and has ${engine.config.maxPendingPrivate} messages waiting already; try again later`, ref)
      : unavailable(engine, s, error, ref, NOT_STORED),
  );
}

async function join(engine: ChatEngine, s: Session, rawRoom: string, since: number | undefined, epoch: string | undefined, ref: Ref | undefined): Promise<void> {
  const verdict = checkRoom(rawRoom);
  if (!verdict.ok) return engine.error(s, "bad_room", verdict.reason, ref);
  const room = verdict.name;
  if (!mayEnter(engine, s, room, ref)) return;
  const current = s.rooms.get(room);
  if (current) return replayAgain(engine, s, room, since, epoch, ref);
  // Rooms being entered count already: concurrent joins cannot pass the cap together.
  if (s.rooms.size >= engine.config.maxRoomsPerConnection) {
    return engine.error(s, "too_many_rooms", `at most ${engine.config.maxRoomsPerConnection} rooms per connection`, ref);
  }
  let entered;
  try {
    entered = await engine.enterRoom(s, room, since, epoch);
  } catch (error) {
    return unavailable(engine, s, error, ref);
  }
  if (!entered) {
    // Left again (or closed) before the join completed: the join still gets its answer.
    if (!s.closed && !s.rooms.has(room)) engine.error(s, "not_in_room", `you left room "${room}" before joining it completed`, ref);
    return;
  }
  const { replay } = entered;
  engine.send(s, {
    type: "joined",
    room,
    online: entered.online,
    members: entered.members,
    history: replay.messages,
    more: replay.more,
    ...(replay.incomplete ? { incomplete: true as const } : {}),
    epoch: replay.epoch,
    ref,
  });
  engine.finishEntering(s, entered.membership);
}

/** `join` of a room one is already in: the room becomes current, and `since` replays. */
async function replayAgain(engine: ChatEngine, s: Session, room: string, since: number | undefined, epoch: string | undefined, ref: Ref | undefined): Promise<void> {
  const membership = s.rooms.get(room)!;
  s.room = room;
  let page: Page = { messages: [], more: false };
  let incomplete = false;
  try {
    const [counts, members] = await Promise.all([engine.directory.online(room), engine.directory.members(room, engine.config.maxMembersListed)]);
    if (since !== undefined && engine.broker.keepsHistory) {
      // A `since` from a lost epoch means nothing here: what there is, is replayed.
      const lostEpoch = epoch !== undefined && epoch !== engine.broker.epoch();
      const from = lostEpoch ? 0 : since;
      page = await engine.broker.after(room, from, REPLAY_MAX);
      const first = page.messages[0]?.id;
      incomplete = lostEpoch || (first !== undefined && first > from + 1);
    }
    if (!engine.stillIn(s, membership)) return;
    engine.send(s, {
      type: "joined", room, online: counts, members, history: page.messages, more: page.more,
      ...(incomplete ? { incomplete: true as const } : {}), epoch: engine.broker.epoch(), ref,
    });
  } catch (error) {
    unavailable(engine, s, error, ref);
  }
}

/** Leave is the person's: every connection of theirs leaves the room (each is told). */
function leave(engine: ChatEngine, s: Session, rawRoom: string, ref: Ref | undefined): void {
  const room = rawRoom.toLowerCase();
  if (!s.rooms.has(room)) return engine.error(s, "not_in_room", `you are not in room "${room.slice(0, 64)}"`, ref);
  for (const c of [...s.person!.sessions]) {
    if (engine.exitRoom(c, room)) engine.send(c, { type: "left", room, ...(c === s ? { ref } : {}) });
  }
}

/** Renames of one person run one after another, so the last asked is the name they keep. */
function nick(engine: ChatEngine, s: Session, rawName: string, ref: Ref | undefined): Promise<void> {
  const person = s.person!;
  const run = person.renaming.then(() => rename(engine, s, rawName, ref));
  person.renaming = run.catch(() => {});
  return run;
}

async function rename(engine: ChatEngine, s: Session, rawName: string, ref: Ref | undefined): Promise<void> {
  if (s.closed) return;
  if (s.token) return engine.error(s, "name_locked", "your name comes from your token and cannot change", ref);
  const verdict = checkName(rawName, engine.config.maxNameLength);
  if (!verdict.ok) return engine.error(s, "bad_name", verdict.reason, ref);
  const person = s.person!;
  const name = verdict.name;
  const old = person.name;
  if (name === old) return engine.send(s, { type: "nick", room: s.room, from: old, name, ref });
  // A new name is announced in every room the person is in: muted in one of them (or
  // everywhere), they would still be speaking there, a name at a time.
  const sanctions = engine.gate.sanctions;
  const mute = sanctions ? [...person.rooms(), ""].map((room) => sanctions.mute(person.id, room)).find((m) => m !== null) ?? null : null;
  if (mute) return engine.send(s, { type: "error", code: "muted", message: mutedMessage(mute), ...(mute.until === 0 ? {} : { until: mute.until }), ref });
  const key = nameKey(name);
  const ban = engine.gate.sanctions?.nameBan(key);
  if (ban) return engine.error(s, "banned", `the name "${name}" is banned${ban.reason ? `: ${ban.reason}` : ""}`, ref);
  const here = engine.registry.named(key);
  if (here && here !== person) return engine.error(s, "name_taken", `the name "${name}" is taken`, ref);
  let renamed: boolean;
  try {
    renamed = await engine.directory.rename(person.id, key, name);
  } catch (error) {
    return unavailable(engine, s, error, ref);
  }
  if (!renamed) return engine.error(s, "name_taken", `the name "${name}" is taken`, ref);
  // Gone while the directory answered: the departed person keeps the name there (their
  // grace period), but this node must not hold them as present under it.
  if (engine.registry.people.get(person.id) !== person) return;
  engine.registry.rename(person, key, name);
  engine.onRenamed?.(person.id, key, name);
  for (const room of person.rooms()) void engine.directory.joined(room, person.id, name).catch(() => {});
  // One frame per room the person is in (a handful), each fanned out natively. `ref`
  // travels in the shared frame, as with messages: it is the requester's confirmation.
  for (const room of person.rooms()) engine.broker.broadcast(topics.room(room), encode({ type: "nick", room, from: old, name, ref }));
  // Connections of the person that no room frame reaches yet (in no room, or still
  // entering them all) hear it directly.
  engine.nickUnjoined(person, old, name, { s, ref });
}

function typing(engine: ChatEngine, s: Session, requestedRoom: string | undefined, ref: Ref | undefined): void {
  const room = memberRoom(engine, s, requestedRoom, ref);
  if (room === null) return;
  // Someone muted there says nothing, not even that they are typing.
  if (engine.gate.sanctions?.mute(s.person!.id, room)) return;
  engine.broker.broadcast(topics.room(room), encode({ type: "typing", room, from: s.name }));
}

async function history(engine: ChatEngine, s: Session, requestedRoom: string | undefined, withName: string | undefined, before: number | undefined, limit: number | undefined, ref: Ref | undefined): Promise<void> {
  const broker = engine.broker;
  if (!broker.keepsHistory) return engine.error(s, "history_off", "this server keeps no history", ref);
  const count = Math.min(limit ?? 50, REPLAY_MAX);
  let conversation: string;
  if (withName !== undefined) {
    // A person reads only conversations they are part of: the key always includes their
    // own id. The other side is whoever holds (or last held) the name: a stranger who takes
    // a released name is someone else, with an empty conversation.
    let other: Recipient | null;
    try {
      other = await engine.directory.lookup(nameKey(withName));
    } catch (error) {
      return unavailable(engine, s, error, ref, "history could not be read");
    }
    if (other === null) return engine.send(s, { type: "history", with: withName, messages: [], more: false, ref });
    conversation = privateConversation(s.person!.id, other.id);
  } else {
    const verdict = checkRoom(requestedRoom ?? s.room);
    if (!verdict.ok) return engine.error(s, "bad_room", verdict.reason, ref);
    if (!mayEnter(engine, s, verdict.name, ref)) return;
    conversation = verdict.name;
  }
  let page: Page;
  try {
    page = await broker.before(conversation, before, count);
  } catch (error) {
    return unavailable(engine, s, error, ref, "history could not be read");
  }
  engine.send(s, withName !== undefined
    ? { type: "history", with: withName, messages: page.messages, more: page.more, ref }
    : { type: "history", room: conversation, messages: page.messages, more: page.more, ref });
}

async function who(engine: ChatEngine, s: Session, requestedRoom: string | undefined, ref: Ref | undefined): Promise<void> {
  const verdict = checkRoom(requestedRoom ?? s.room);
  if (!verdict.ok) return engine.error(s, "bad_room", verdict.reason, ref);
  const room = verdict.name;
  if (!mayEnter(engine, s, room, ref)) return;
  try {
    const [online, members] = await Promise.all([engine.directory.online(room), engine.directory.members(room, engine.config.maxMembersListed)]);
    engine.send(s, { type: "who", room, online, members, ref });
  } catch (error) {
    unavailable(engine, s, error, ref);
  }
}
