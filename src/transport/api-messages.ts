// Server API: announcements, messages from the backend (stored and numbered like any
// message), and what is going on (rooms, their people, one person's connections).
import type { ConnectionInfo } from "../engine/moderation.ts";
import { InboxFull, type PendingMessage } from "../engine/ports.ts";
import { topics } from "../engine/topics.ts";
import { encode } from "../protocol/frames.ts";
import { nameKey } from "../protocol/names.ts";
import type { ApiContext } from "./api.ts";
import * as input from "./api-input.ts";
import { ApiError, reach, total } from "./api-input.ts";
import { pathParam, type MethodTable } from "./http.ts";

/** The largest member cursor: 2^64 - 1. */
const MAX_CURSOR = 2n ** 64n - 1n;

/** Default sender of the backend's messages. */
const DEFAULT_SENDER = "system";

/** A path parameter, decoded, or 400. */
export function param(req: { url: string; params: Record<string, string> }, field: string): string {
  const value = pathParam(req, field);
  if (value === null) throw new ApiError(400, "bad_path", `the ${field} in the path is not valid percent-encoding`);
  return value;
}

export function messageRoutes(api: ApiContext): Record<string, MethodTable> {
  const { config, engine, moderator, endpoint, holder } = api;
  const directory = engine.directory;


  const announce = endpoint("announce", async (req) => {
    const body = await input.jsonBody(req);
    const text = input.text(body, config.maxTextLength);
    const rawRoom = input.optionalString(body, "room", 64);
    if (rawRoom !== undefined) {
      const room = input.room(rawRoom);
      // The room's topic reaches its members on every node.
      engine.broker.broadcast(topics.room(room), encode({ type: "system", text, room }));
      return { body: { room, text }, logged: { target: `room ${room}` } };
    }
    const gathered = await moderator.announce(text);
    const connections = total(gathered, "connections");
    return { body: { text, connections, ...reach(gathered) }, logged: { target: "everyone", connections } };
  });

  const sender = (body: Record<string, unknown>) => input.name(input.optionalString(body, "from", 256) ?? DEFAULT_SENDER, config.maxNameLength, "from");

  const publish = endpoint("publish", async (req) => {
    const room = input.room(param(req, "room"));
    const body = await input.jsonBody(req);
    const text = input.text(body, config.maxTextLength);
    const from = sender(body);
    const item = await engine.gate.store({ kind: "room", room, from, text, ts: Date.now(), bot: true });
    return { status: 201, body: item, logged: { target: `room ${room}`, id: item.id, from } };
  });

  const privateMessage = endpoint("private", async (req) => {
    const recipient = await holder(param(req, "name"));
    const body = await input.jsonBody(req);
    const text = input.text(body, config.maxTextLength);
    const from = sender(body);
    if (!recipient.online && !engine.broker.keepsHistory) {
      throw new ApiError(409, "recipient_away", `${recipient.name} is away, and this server keeps no messages to give them later`);
    }
    const message: PendingMessage = {
      kind: "private", from, to: recipient.name, fromId: `bot:${from}`, toId: recipient.id, text, ts: Date.now(), bot: true,
      state: recipient.online ? "delivered" : "queued",
      ...(recipient.online ? {} : { queue: { delivered: recipient.delivered, cap: config.maxPendingPrivate } }),
    };
    try {
      const item = await engine.gate.store(message);
      return { status: 201, body: { ...item, state: message.state }, logged: { target: `user ${recipient.name}`, id: item.id, from } };
    } catch (error) {
      if (error instanceof InboxFull) throw new ApiError(409, "inbox_full", `${recipient.name} is away with ${config.maxPendingPrivate} messages waiting already`);
      throw error;
    }
  });

  const rooms = endpoint("rooms", async (req) => {
    const url = new URL(req.url);
    const cursor = url.searchParams.get("cursor") ?? "";
    if (cursor !== "") input.room(cursor);
    const limit = input.limitParam(url, 100, 1000);
    const page = await directory.rooms(cursor.toLowerCase(), limit);
    return { body: { rooms: page.rooms, next: page.more ? (page.rooms.at(-1)?.room ?? null) : null } };
  });

  const members = endpoint("members", async (req) => {
    const room = input.room(param(req, "room"));
    const url = new URL(req.url);
    const cursor = url.searchParams.get("cursor") || "0";
    // Redis's HSCAN cursors are unsigned 64-bit: a larger one is refused by Redis, which
    // would read as an outage (503), so it is the caller's mistake here.
    if (!/^\d{1,20}$/.test(cursor) || BigInt(cursor) > MAX_CURSOR) throw new ApiError(400, "bad_cursor", "cursor must be the `next` of the page before");
    const limit = input.limitParam(url, 100, 1000);
    const [online, page] = await Promise.all([directory.online(room), directory.memberPage(room, cursor, limit)]);
    return { body: { room, online, members: page.members, next: page.next } };
  });

  const user = endpoint("user", async (req) => {
    const person = await holder(param(req, "name"));
    const gathered = await moderator.connections(person.id);
    const connections = gathered.answers.flatMap((a) =>
      ((a.result as { connections?: ConnectionInfo[] }).connections ?? []).map((c) => ({ node: a.node, ...c })),
    );
    const rooms = [...new Set(connections.flatMap((c) => c.rooms))].sort();
    const key = nameKey(person.name);
    const sanctions = moderator.index.all().filter((s) => (s.target === "person" && s.value === person.id) || (s.target === "name" && s.value === key));
    return { body: { id: person.id, name: person.name, online: person.online, connections, rooms, sanctions, ...reach(gathered) } };
  });

  return {
    "/api/announce": { POST: announce },
    "/api/rooms": { GET: rooms },
    "/api/rooms/:room/messages": { POST: publish },
    "/api/rooms/:room/members": { GET: members },
    "/api/users/:name": { GET: user },
    "/api/users/:name/messages": { POST: privateMessage },
  };
}
