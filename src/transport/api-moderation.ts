// Server API: kicks, bans, mutes and deleting a message. Bans and mutes are stored (they
// survive restarts) and applied on every node; the answer says which nodes confirmed.
import { formatRange, parseRange } from "../engine/ip-range.ts";
import { sanctionId, type Sanction, type SanctionKind, type TargetType } from "../engine/sanctions.ts";
import { topics } from "../engine/topics.ts";
import { encode } from "../protocol/frames.ts";
import { nameKey } from "../protocol/names.ts";
import type { ApiContext, Caller } from "./api.ts";
import * as input from "./api-input.ts";
import { ApiError, reach, total } from "./api-input.ts";
import { param } from "./api-messages.ts";
import type { MethodTable } from "./http.ts";

const MAX_REASON = 500;

/** Who imposed a sanction, as the log line says it. */
const byWhom = (caller: Caller) => [caller.by, caller.actor].filter(Boolean).join(" ");

export function moderationRoutes(api: ApiContext): Record<string, MethodTable> {
  const { config, engine, moderator, endpoint, holder } = api;


  const personId = (value: string): string => {
    if (/[\u0000-\u001f\u007f]/.test(value)) throw new ApiError(400, "bad_field", "person must be a person's id (the `id` of a member or user)");
    return value;
  };

  const kick = endpoint("kick", async (req) => {
    const person = await holder(param(req, "name"));
    const body = await input.jsonBody(req, true);
    const reason = input.optionalString(body, "reason", MAX_REASON) ?? "";
    const gathered = await moderator.kick(person.id, reason);
    const closed = total(gathered, "closed");
    return { body: { id: person.id, name: person.name, closed, ...reach(gathered) }, logged: { target: `user ${person.name}`, person: person.id, closed, reason } };
  });

  /** A ban or mute from a request body; the target resolved and written canonically. */
  const sanctionOf = async (kind: SanctionKind, body: Record<string, unknown>, caller: Caller): Promise<Sanction> => {
    const [field, raw] = input.oneOf(body, kind === "ban" ? (["name", "person", "ip"] as const) : (["name", "person"] as const));
    const reason = input.optionalString(body, "reason", MAX_REASON) ?? "";
    const duration = input.duration(body);
    const label = input.optionalString(body, "label", 64);
    let target: TargetType;
    let value: string;
    let shown: string;
    if (field === "ip") {
      const range = parseRange(raw);
      if (!range) throw new ApiError(400, "bad_field", "ip must be an IPv4 or IPv6 address, or a range like 203.0.113.0/24");
      target = "ip";
      value = shown = formatRange(range);
    } else if (field === "person") {
      target = "person";
      value = personId(raw);
      shown = label ?? raw;
    } else if (kind === "ban") {
      // A name ban holds the name itself (and its look-alikes), whoever comes with it.
      target = "name";
      shown = input.name(raw, config.maxNameLength);
      value = nameKey(shown);
    } else {
      // A mute silences a person: the one who holds the name now.
      const person = await holder(raw);
      target = "person";
      value = person.id;
      shown = person.name;
    }
    const rawRoom = kind === "mute" ? input.optionalString(body, "room", 64) : undefined;
    const now = Date.now();
    return {
      id: sanctionId(), kind, target, value, label: shown,
      ...(rawRoom !== undefined ? { room: input.room(rawRoom) } : {}),
      until: duration === undefined ? 0 : now + duration * 1000, reason, created: now, by: byWhom(caller),
    };
  };

  const impose = (kind: SanctionKind) => endpoint(kind, async (req, caller) => {
    const sanction = await sanctionOf(kind, await input.jsonBody(req), caller);
    const gathered = await moderator.impose(sanction);
    const closed = total(gathered, "closed");
    return {
      status: 201,
      body: { [kind]: sanction, closed, ...reach(gathered) },
      logged: { target: `${sanction.target} ${sanction.label}`, id: sanction.id, room: sanction.room, until: sanction.until, closed, reason: sanction.reason },
    };
  });

  const list = (kind: SanctionKind) => endpoint(`${kind}s`, async () => ({ body: { [`${kind}s`]: await moderator.list(kind) } }));

  const lift = (kind: SanctionKind) => endpoint(kind === "ban" ? "unban" : "unmute", async (req) => {
    const id = param(req, "id");
    const lifted = await moderator.lift(id, kind);
    if (!lifted) throw new ApiError(404, `no_such_${kind}`, `no ${kind} with id "${id.slice(0, 64)}" is in force`);
    return { body: { lifted: lifted.sanction, ...reach(lifted.gathered) }, logged: { target: `${lifted.sanction.target} ${lifted.sanction.label}`, id } };
  });

  const deleteMessage = endpoint("delete", async (req) => {
    const room = input.room(param(req, "room"));
    const rawId = param(req, "id");
    if (!/^\d{1,15}$/.test(rawId) || Number(rawId) < 1) throw new ApiError(400, "bad_id", "the message id must be a whole number");
    const id = Number(rawId);
    const removed = await engine.broker.delete(room, id);
    if (!removed && engine.broker.keepsHistory) throw new ApiError(404, "no_such_message", `room ${room} has no stored message ${id}`);
    // Members on every node hide it (with history off, nothing was stored: they hide it all the same).
    engine.broker.broadcast(topics.room(room), encode({ type: "deleted", room, id }));
    return { body: { room, id, removed }, logged: { target: `room ${room}`, id } };
  });

  return {
    "/api/users/:name/kick": { POST: kick },
    "/api/bans": { GET: list("ban"), POST: impose("ban") },
    "/api/bans/:id": { DELETE: lift("ban") },
    "/api/mutes": { GET: list("mute"), POST: impose("mute") },
    "/api/mutes/:id": { DELETE: lift("mute") },
    "/api/rooms/:room/messages/:id": { DELETE: deleteMessage },
  };
}
