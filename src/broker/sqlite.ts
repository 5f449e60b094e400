// History in a SQLite file (bun:sqlite, WAL). Messages are written in group commits: all
// messages queued in one event-loop turn go into one transaction, run from setImmediate
// (after the I/O phase, so the batch holds every frame that arrived in that turn), and
// only then are their callbacks told to publish. A kill -9 therefore loses nothing that
// anyone has seen.
import { Database, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Page, PendingMessage } from "../engine/ports.ts";
import { inboxConversation } from "../engine/topics.ts";
import { BACKSTOP_PAGES, Checkpointer } from "./checkpointer.ts";
import type { HistoryItem, Ref } from "../protocol/frames.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import { GroupCommit } from "./group-commit.ts";
import { CACHE_LIMIT, inboxFull, newEpoch, stored, type Committed, type MessageStore, type NotStored, type Stored } from "./store.ts";

export interface SqliteOptions {
  path: string;
  /** Messages kept per conversation; 0 = unlimited. */
  limit: number;
  /** Seconds a message is kept; 0 = forever. */
  maxAgeSeconds: number;
  metrics?: Metrics;
  log?: Logger;
  /** Tests: the background checkpoint ran (pages copied into the file so far in this log). */
  onCheckpoint?: (pages: number) => void;
}

/** Forward-only migrations; PRAGMA user_version records how many have run. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE messages (
     conv TEXT NOT NULL,
     id INTEGER NOT NULL,
     kind INTEGER NOT NULL,            -- 0 room, 1 private; + 2 when a bot sent it (server API)
     sender TEXT NOT NULL,
     recipient TEXT,                   -- private only
     text TEXT NOT NULL,
     ts INTEGER NOT NULL,
     ref TEXT,                         -- JSON of the sender's ref, if any
     PRIMARY KEY (conv, id)
   );
   CREATE INDEX messages_ts ON messages (ts);
   -- The last id of a conversation whose newest messages were deleted (aged out, or
   -- deleted by a moderator), so ids never restart; see SqliteStore.lastId.
   CREATE TABLE conversations (conv TEXT PRIMARY KEY, last_id INTEGER NOT NULL) WITHOUT ROWID;`,
  // The epoch names this database's history: a new file (the old one lost) is a new epoch.
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`,
  // Inboxes: each person's private messages, numbered in their own conversation "~<id>";
  // a row there points back at the message's id in the two people's conversation.
  `ALTER TABLE messages ADD COLUMN msg_id INTEGER;`,
  // People: who holds (or last held) a name, their resume key's hash, when they were last
  // connected and which inbox position they were last sent (see identities.ts).
  `CREATE TABLE identities (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     key TEXT NOT NULL,
     resume TEXT,
     seen INTEGER NOT NULL,
     delivered INTEGER NOT NULL DEFAULT 0
   ) WITHOUT ROWID;
   CREATE INDEX identities_resume ON identities (resume);
   CREATE TABLE names (key TEXT PRIMARY KEY, id TEXT NOT NULL) WITHOUT ROWID;`,
  // Bans and mutes (engine/moderation.ts): one JSON record each, and when it ends (0 = never).
  `CREATE TABLE sanctions (id TEXT PRIMARY KEY, until INTEGER NOT NULL, record TEXT NOT NULL) WITHOUT ROWID;`,
  // No change to the tables, a change to what they mean: `conversations` keeps a last id
  // only when newest rows were deleted (see lastId). A bunchat of schema 5 reads ids from
  // it alone and would number from 1 again (every insert a duplicate key, every commit
  // failed); the version makes it refuse this file instead.
  `SELECT 1; -- conversations.last_id: kept only when a conversation's newest rows are deleted`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

interface Row {
  conv: string;
  id: number;
  kind: number;
  sender: string;
  recipient: string | null;
  text: string;
  ts: number;
  ref: string | null;
  msg_id: number | null;
}

interface Queued {
  message: PendingMessage;
  conversation: string;
  done: Committed;
}

const TRIM_CHUNK = 2000;

export class SqliteStore implements MessageStore {
  readonly keepsHistory = true;
  readonly epoch: string;
  readonly db: Database;
  private readonly pending = new GroupCommit<Queued>((batch) => this.commitBatch(batch));
  private readonly lastIds = new Map<string, number>();
  private readonly insert: Statement;
  private readonly keepLastId: Statement;
  private readonly readLastId: Statement<{ last_id: number }, [string, string]>;
  private readonly trimToLimit: Statement;
  private readonly selectAfter: Statement<Row, [string, number, number]>;
  private readonly selectBefore: Statement<Row, [string, number, number]>;
  private readonly keepAgedLastIds: Statement;
  private readonly trimAged: Statement;
  private readonly deleteOne: Statement;
  private ageTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  /** Copies the write-ahead log into the file off the event loop (files only). */
  private readonly checkpointer: Checkpointer | null = null;

  constructor(private readonly options: SqliteOptions) {
    if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path, { create: true, strict: true });
    this.db.exec("PRAGMA journal_mode = WAL");
    // NORMAL in WAL mode: a committed transaction survives a process crash (kill -9);
    // only an OS crash or power loss can lose the newest commits. FULL would fsync every
    // group and cost throughput for a guarantee most chat deployments do not need.
    this.db.exec("PRAGMA synchronous = NORMAL");
    this.db.exec("PRAGMA busy_timeout = 5000");
    if (options.path !== ":memory:") {
      this.db.exec(`PRAGMA wal_autocheckpoint = ${BACKSTOP_PAGES}`);
      this.checkpointer = new Checkpointer(options.path, {
        onFailure: (error) => options.log?.warn("history_checkpoint_failed", { error }),
        onCheckpoint: (pages) => {
          if (pages > 0) options.metrics?.checkpoints.inc();
          options.onCheckpoint?.(pages);
        },
      });
    }
    this.migrate();
    this.epoch = this.readOrCreateEpoch();
    this.insert = this.db.prepare(
      "INSERT INTO messages (conv, id, kind, sender, recipient, text, ts, ref, msg_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.keepLastId = this.db.prepare(
      "INSERT INTO conversations (conv, last_id) VALUES (?, ?) ON CONFLICT (conv) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
    );
    this.readLastId = this.db.prepare(
      `SELECT max(coalesce((SELECT last_id FROM conversations WHERE conv = ?), 0),
                  coalesce((SELECT max(id) FROM messages WHERE conv = ?), 0)) AS last_id`,
    );
    this.trimToLimit = this.db.prepare("DELETE FROM messages WHERE conv = ? AND id <= ?");
    this.selectAfter = this.db.prepare("SELECT * FROM messages WHERE conv = ? AND id > ? ORDER BY id ASC LIMIT ?");
    this.selectBefore = this.db.prepare("SELECT * FROM messages WHERE conv = ? AND id < ? ORDER BY id DESC LIMIT ?");
    // Room messages only (kinds 0 and 2): a conversation named like a room holds nothing else.
    this.deleteOne = this.db.prepare("DELETE FROM messages WHERE conv = ? AND id = ? AND kind IN (0, 2)");
    // The oldest rows first, a chunk at a time; the chunk's newest id per conversation is
    // kept first, for a chunk may hold a conversation's newest message.
    const agedChunk = `SELECT rowid FROM messages WHERE ts < ? ORDER BY ts, rowid LIMIT ${TRIM_CHUNK}`;
    this.keepAgedLastIds = this.db.prepare(
      `INSERT INTO conversations (conv, last_id) SELECT conv, max(id) FROM messages WHERE rowid IN (${agedChunk}) GROUP BY conv
       ON CONFLICT (conv) DO UPDATE SET last_id = max(last_id, excluded.last_id)`,
    );
    this.trimAged = this.db.prepare(`DELETE FROM messages WHERE rowid IN (${agedChunk})`);
    if (options.maxAgeSeconds > 0) {
      const every = Math.min(60_000, Math.max(1000, (options.maxAgeSeconds * 1000) / 10));
      this.ageTimer = setInterval(() => this.trimByAge(), every);
      this.ageTimer.unref();
      this.trimByAge();
    }
  }

  private migrate(): void {
    const row = this.db.query<{ user_version: number }, []>("PRAGMA user_version").get();
    const version = row?.user_version ?? 0;
    if (version > MIGRATIONS.length) {
      throw new Error(`history database schema version ${version} is newer than this bunchat (${MIGRATIONS.length})`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.exec(`PRAGMA user_version = ${v + 1}`);
      })();
    }
  }

  private readOrCreateEpoch(): string {
    const row = this.db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'epoch'").get();
    if (row) return row.value;
    const epoch = newEpoch();
    this.db.run("INSERT INTO meta (key, value) VALUES ('epoch', ?)", [epoch]);
    return epoch;
  }

  lastId(conversation: string): number {
    let last = this.lastIds.get(conversation);
    if (last === undefined) {
      // Its newest message's id, or the id kept when its newest messages were deleted: no
      // write per message keeps it (a conversation's newest row goes only by age or by a
      // moderator, and both keep its id first).
      last = this.readLastId.get(conversation, conversation)?.last_id ?? 0;
      // The table is the truth; the map only saves a query per message, so bound it.
      if (this.lastIds.size >= CACHE_LIMIT) this.lastIds.clear();
      this.lastIds.set(conversation, last);
    }
    return last;
  }

  forget(conversation: string): void {
    this.lastIds.delete(conversation);
  }

  append(message: PendingMessage, conversation: string, done: Committed): void {
    if (this.closed) {
      done("unavailable");
      return;
    }
    this.pending.push({ message, conversation, done });
  }

  /** One transaction for everything queued; callbacks run after it commits (or fails). */
  private commitBatch(batch: Queued[]): void {
    const started = performance.now();
    const assigned = new Map<string, number>();
    const results: (Stored | NotStored)[] = new Array(batch.length);
    const head = (conversation: string) => assigned.get(conversation) ?? this.lastId(conversation);
    const next = (conversation: string) => {
      const id = head(conversation) + 1;
      assigned.set(conversation, id);
      return id;
    };
    try {
      this.db.transaction(() => {
        for (let i = 0; i < batch.length; i++) {
          const q = batch[i]!;
          const m = q.message;
          if (inboxFull(m, head)) {
            results[i] = "inbox_full";
            continue;
          }
          const result = stored(m, next(q.conversation), next);
          results[i] = result;
          const ref = m.ref === undefined ? null : JSON.stringify(m.ref);
          const recipient = m.kind === "private" ? m.to : null;
          const kind = (m.kind === "room" ? 0 : 1) + (m.bot ? 2 : 0);
          this.insert.run(q.conversation, result.item.id, kind, m.from, recipient, m.text, m.ts, ref, null);
          for (const { owner, item } of result.inboxes) {
            this.insert.run(inboxConversation(owner), item.box!, kind, m.from, recipient, m.text, m.ts, ref, result.item.id);
          }
        }
        // Trimming to the limit keeps the newest rows: the last id stays readable.
        if (this.options.limit > 0) {
          for (const [conversation, last] of assigned) if (last > this.options.limit) this.trimToLimit.run(conversation, last - this.options.limit);
        }
      })();
    } catch (error) {
      // Nothing of the batch is stored, so nothing of it is delivered; ids are not consumed.
      this.options.metrics?.storeErrors.inc();
      this.options.log?.error("history_commit_failed", { messages: batch.length, error: error instanceof Error ? error.message : String(error) });
      for (const q of batch) q.done("unavailable");
      return;
    }
    for (const [conversation, last] of assigned) {
      if (this.lastIds.size >= CACHE_LIMIT && !this.lastIds.has(conversation)) this.lastIds.clear();
      this.lastIds.set(conversation, last);
    }
    if (this.options.metrics) {
      this.options.metrics.stored.inc(results.filter((r) => typeof r === "object").length);
      this.options.metrics.batchSize.observe(batch.length);
      this.options.metrics.commitSeconds.observe((performance.now() - started) / 1000);
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.done(results[i]!);
  }

  /** Delete aged messages a chunk at a time, yielding between chunks. */
  private trimByAge(): void {
    if (this.closed) return;
    const cutoff = Date.now() - this.options.maxAgeSeconds * 1000;
    try {
      const changes = this.db.transaction(() => {
        this.keepAgedLastIds.run(cutoff);
        return this.trimAged.run(cutoff).changes;
      })();
      if (changes >= TRIM_CHUNK) setImmediate(() => this.trimByAge());
    } catch {
      this.options.metrics?.storeErrors.inc();
    }
  }

  async after(conversation: string, afterId: number, limit: number): Promise<Page> {
    const rows = this.selectAfter.all(conversation, afterId, limit + 1);
    const more = rows.length > limit;
    if (more) rows.pop();
    return { messages: rows.map(rowToItem), more };
  }

  async before(conversation: string, beforeId: number | undefined, limit: number): Promise<Page> {
    const rows = this.selectBefore.all(conversation, beforeId ?? Number.MAX_SAFE_INTEGER, limit + 1);
    const more = rows.length > limit;
    if (more) rows.pop();
    rows.reverse();
    return { messages: rows.map(rowToItem), more };
  }

  async delete(conversation: string, id: number): Promise<boolean> {
    return this.db.transaction(() => {
      const deleted = this.deleteOne.run(conversation, id).changes > 0;
      if (deleted) this.keepLastId.run(conversation, id);
      return deleted;
    })();
  }

  flush(): void {
    this.pending.flush();
  }

  close(): void {
    if (this.closed) return;
    this.pending.flush();
    this.closed = true;
    if (this.ageTimer) clearInterval(this.ageTimer);
    this.checkpointer?.close();
    // A worker stopped mid-checkpoint still finishes it, holding the checkpoint lock, and
    // ours then answers busy at once (no busy timeout for that lock): wait it out, so the
    // file is complete without its log once closed.
    const truncate = this.db.query<{ busy: number }, []>("PRAGMA wal_checkpoint(TRUNCATE)");
    const deadline = Date.now() + 10_000;
    while (truncate.get()?.busy && Date.now() < deadline) Bun.sleepSync(5);
    truncate.finalize();
    this.db.close();
  }
}

const BOT = { bot: true } as const;

function rowToItem(row: Row): HistoryItem {
  const ref = row.ref === null ? undefined : (JSON.parse(row.ref) as Ref);
  const bot = (row.kind & 2) !== 0 ? BOT : {};
  if ((row.kind & 1) === 0) return { type: "message", id: row.id, room: row.conv, from: row.sender, text: row.text, ts: row.ts, ...bot, ref };
  // An inbox row: the message's own id, and its position in this inbox.
  if (row.msg_id !== null) return { type: "private", id: row.msg_id, from: row.sender, to: row.recipient ?? "", text: row.text, ts: row.ts, ...bot, ref, box: row.id };
  return { type: "private", id: row.id, from: row.sender, to: row.recipient ?? "", text: row.text, ts: row.ts, ...bot, ref };
}
