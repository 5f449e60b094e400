// A channel on the page: a room ("#name") or a private conversation ("@name"), with its
// entries in message-id order (a replay or an older page can arrive after live messages),
// de-duplicated by id, plus notices, messages still being sent, an unread count and the
// pager for older history.
import type { HistoryItem } from "../client/index.ts";

export type Entry =
  | { kind: "message"; item: HistoryItem; pending?: boolean }
  | { kind: "notice"; text: string; error?: boolean };

const MAX_ENTRIES = 2000;

export class Channel {
  readonly entries: Entry[] = [];
  private readonly seen = new Set<number>();
  unread = 0;
  /** Older pages of history, newest first (created on first use). */
  older: AsyncGenerator<HistoryItem[], void, undefined> | null = null;
  /** No older messages to load. */
  exhausted = false;
  loading = false;
  /** A private conversation's history was asked for once (on first open). */
  opened = false;

  constructor(readonly key: string, readonly kind: "room" | "private", public name: string) {}

  /**
   * Add a stored message once, in id order; false when it is already here. `older`: it
   * comes from a page of history, so it goes above every newer message (and the notices
   * between them); otherwise it is placed from the end, never before a notice.
   */
  add(item: HistoryItem, older = false): boolean {
    if (this.seen.has(item.id)) return false;
    this.seen.add(item.id);
    const entry: Entry = { kind: "message", item };
    let i: number;
    if (older) {
      i = this.entries.findIndex((e) => e.kind === "message" && (e.pending || e.item.id > item.id));
      if (i === -1) i = this.entries.length;
    } else {
      i = this.entries.length;
      while (i > 0) {
        const prev = this.entries[i - 1]!;
        if (prev.kind === "notice") break;
        if (!prev.pending && prev.item.id <= item.id) break;
        i--;
      }
    }
    this.entries.splice(i, 0, entry);
    if (this.entries.length > MAX_ENTRIES) this.entries.splice(0, this.entries.length - MAX_ENTRIES);
    return true;
  }

  /** The smallest id held: older pages start below it. */
  oldestId(): number | undefined {
    for (const e of this.entries) if (e.kind === "message" && !e.pending) return e.item.id;
    return undefined;
  }

  notice(text: string, error = false): void {
    this.entries.push({ kind: "notice", text, error });
  }

  addPending(item: HistoryItem): Entry {
    const entry: Entry = { kind: "message", item, pending: true };
    this.entries.push(entry);
    return entry;
  }

  remove(entry: Entry): void {
    const i = this.entries.indexOf(entry);
    if (i !== -1) this.entries.splice(i, 1);
  }

  /** A moderator deleted message `id`: it is not shown any more (and never comes back). */
  delete(id: number): boolean {
    this.seen.add(id);
    const i = this.entries.findIndex((e) => e.kind === "message" && !e.pending && e.item.id === id);
    if (i === -1) return false;
    this.entries.splice(i, 1);
    return true;
  }

  /** The server's history was lost: ids start over, so the ones seen say nothing any more. */
  forgetIds(): void {
    this.seen.clear();
  }
}
