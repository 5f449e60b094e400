// Moderation across the cluster: announcements, kicks, bans, mutes and "where is this
// person connected". Each is a cluster control request (control.ts), so a request to any
// node acts on every node; bans and mutes are also kept in the SanctionStore, so they
// survive restarts, and every node holds them in its SanctionIndex (loaded at start,
// reloaded now and then in case a node missed a request while Redis was away), which
// admission and the gate check synchronously.
import type { Logger } from "../obs/log.ts";
import { CLOSE_BANNED, CLOSE_KICKED } from "../protocol/frames.ts";
import type { ClusterControl, ControlArgs, Gathered } from "./control.ts";
import type { ChatEngine } from "./engine.ts";
import { parseRange } from "./ip-range.ts";
import { SanctionIndex, type Sanction, type SanctionKind, type SanctionStore } from "./sanctions.ts";
import { connectionId, type Session } from "./session.ts";

/** How often every node reloads the sanctions from the store (and drops ended ones). */
export const RELOAD_MS = 30_000;

/** What one node reports for a person: their connections there. */
export interface ConnectionInfo {
  connection: string;
  ip: string;
  rooms: string[];
}

/** A close reason fits in 123 bytes of UTF-8 (RFC 6455); cut at a character boundary. */
export function closeReason(text: string): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= 123) return text;
  let end = 123;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.slice(0, end));
}

export class Moderator {
  readonly index = new SanctionIndex();
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Sanction requests applied while a reload is reading the store: applied again after it. */
  private journal: ControlArgs[] | null = null;

  constructor(
    private readonly engine: ChatEngine,
    private readonly store: SanctionStore,
    private readonly control: ClusterControl,
    private readonly log: Logger,
  ) {
    control.handle("announce", (args) => this.announceHere(String(args.text)));
    control.handle("kick", (args) => ({ closed: this.closePerson(String(args.person), CLOSE_KICKED, String(args.reason)) }));
    control.handle("sanction", (args) => this.apply(args));
    control.handle("lift", (args) => this.apply(args));
    control.handle("person", (args) => this.connectionsHere(String(args.person)));
  }

  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => {
      this.reload().catch((error: unknown) => this.log.warn("sanctions_reload_failed", { error: String(error) }));
    }, RELOAD_MS);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Replace this node's index with the store's list, keeping what changed meanwhile. */
  async reload(): Promise<void> {
    this.journal = [];
    try {
      const list = await this.store.list(Date.now());
      this.index.load(list);
      for (const change of this.journal) this.change(change);
    } finally {
      this.journal = null;
    }
  }

  // ---- what the server API asks for ---------------------------------------------------

  /** A system frame to every connection on every node. */
  announce(text: string): Promise<Gathered> {
    return this.control.ask("announce", { text });
  }

  /** Close every connection of a person, everywhere, with 4001 and the reason. */
  kick(person: string, reason: string): Promise<Gathered> {
    return this.control.ask("kick", { person, reason: closeReason(reason || "kicked") });
  }

  /** Store a ban or mute, then apply it on every node (a ban closes matching connections). */
  async impose(sanction: Sanction): Promise<Gathered> {
    await this.store.add(sanction);
    return this.control.ask("sanction", { sanction });
  }

  /** The bans or the mutes in force, oldest first (from the store: every node's). */
  async list(kind: SanctionKind): Promise<Sanction[]> {
    return (await this.store.list(Date.now())).filter((s) => s.kind === kind).sort((a, b) => a.created - b.created);
  }

  /** End a ban or mute everywhere; null when there is no such one in force. */
  async lift(id: string, kind: SanctionKind): Promise<{ sanction: Sanction; gathered: Gathered } | null> {
    const found = (await this.store.list(Date.now())).find((s) => s.id === id && s.kind === kind);
    if (!found) return null;
    await this.store.remove(id);
    return { sanction: found, gathered: await this.control.ask("lift", { lift: id }) };
  }

  /** Where a person is connected, on every node. */
  connections(person: string): Promise<Gathered> {
    return this.control.ask("person", { person });
  }

  // ---- what each node does -----------------------------------------------------------

  private announceHere(text: string): { connections: number } {
    this.engine.broadcastSystem(text);
    return { connections: this.engine.registry.connections };
  }

  private apply(args: ControlArgs): { closed: number } {
    this.journal?.push(args);
    return { closed: this.change(args) };
  }

  private change(args: ControlArgs): number {
    if (typeof args.lift === "string") {
      this.index.remove(args.lift);
      return 0;
    }
    const sanction = args.sanction as Sanction;
    this.index.add(sanction);
    if (sanction.kind !== "ban") return 0;
    const reason = closeReason(sanction.reason || "banned");
    if (sanction.target === "person") return this.closePerson(sanction.value, CLOSE_BANNED, reason);
    if (sanction.target === "name") return this.closePerson(this.engine.registry.named(sanction.value)?.id ?? "", CLOSE_BANNED, reason);
    const range = parseRange(sanction.value);
    if (!range) return 0;
    return this.closeWhere((s) => this.index.ipBan(s.ip) !== null, CLOSE_BANNED, reason);
  }

  /** Close a person's connections on this node (the registry knows them, by id or by name: no walk). */
  private closePerson(id: string, code: number, reason: string): number {
    return this.close([...(this.engine.registry.people.get(id)?.sessions ?? [])], code, reason);
  }

  /** Close the matching connections of this node (a rare whole-node walk, as for shutdown). */
  private closeWhere(match: (s: Session) => boolean, code: number, reason: string): number {
    return this.close([...this.engine.sessions()].filter(match), code, reason);
  }

  private close(sessions: Session[], code: number, reason: string): number {
    const doomed = sessions.filter((s) => !s.closed);
    for (const s of doomed) s.ws?.close(code, reason);
    return doomed.length;
  }

  private connectionsHere(person: string): { connections: ConnectionInfo[] } {
    const found = this.engine.registry.people.get(person);
    const connections = [...(found?.sessions ?? [])].map((s) => ({ connection: connectionId(s), ip: s.ip, rooms: [...s.rooms.keys()] }));
    return { connections };
  }
}
