// Where a single node keeps bans and mutes: in the history's SQLite file (they survive a
// restart with it), or in memory when history is off.
import type { Database, Statement } from "bun:sqlite";
import { BrokerUnavailable } from "../engine/ports.ts";
import { active, type Sanction, type SanctionStore } from "../engine/sanctions.ts";

export class MemorySanctions implements SanctionStore {
  private readonly records = new Map<string, Sanction>();

  async add(sanction: Sanction): Promise<void> {
    this.records.set(sanction.id, sanction);
  }

  async remove(id: string): Promise<Sanction | null> {
    const found = this.records.get(id) ?? null;
    this.records.delete(id);
    return found && active(found, Date.now()) ? found : null;
  }

  async list(now: number): Promise<Sanction[]> {
    for (const [id, s] of this.records) if (!active(s, now)) this.records.delete(id);
    return [...this.records.values()];
  }
}

/** The `sanctions` table (a migration in sqlite.ts): one JSON record per row. */
export class SqliteSanctions implements SanctionStore {
  private readonly insert: Statement;
  private readonly select: Statement<{ record: string }, [string]>;
  private readonly deleteOne: Statement;
  private readonly selectActive: Statement<{ record: string }, [number]>;
  private readonly deleteEnded: Statement;

  constructor(db: Database) {
    this.insert = db.prepare("INSERT INTO sanctions (id, until, record) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET until = excluded.until, record = excluded.record");
    this.select = db.prepare("SELECT record FROM sanctions WHERE id = ?");
    this.deleteOne = db.prepare("DELETE FROM sanctions WHERE id = ?");
    this.selectActive = db.prepare("SELECT record FROM sanctions WHERE until = 0 OR until > ?");
    this.deleteEnded = db.prepare("DELETE FROM sanctions WHERE until > 0 AND until <= ?");
  }

  async add(sanction: Sanction): Promise<void> {
    sql(() => this.insert.run(sanction.id, sanction.until, JSON.stringify(sanction)));
  }

  async remove(id: string): Promise<Sanction | null> {
    const row = sql(() => {
      const found = this.select.get(id);
      this.deleteOne.run(id);
      return found;
    });
    const found = row ? (JSON.parse(row.record) as Sanction) : null;
    return found && active(found, Date.now()) ? found : null;
  }

  async list(now: number): Promise<Sanction[]> {
    const rows = sql(() => {
      this.deleteEnded.run(now);
      return this.selectActive.all(now);
    });
    return rows.map((row) => JSON.parse(row.record) as Sanction);
  }
}

/**
 * A statement run; a failing database (disk full, I/O error) is an outage, which the
 * server API answers 503 store_unavailable, as it does for the history: not a 500.
 */
function sql<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw new BrokerUnavailable(`the sanctions could not be read or written: ${error instanceof Error ? error.message : String(error)}`);
  }
}
