// WAL checkpoints off the event loop. In WAL mode SQLite appends each commit to the log and,
// by default, copies the log back into the database (and syncs it) inside whichever commit
// crosses 1,000 pages — on the event loop, where every socket waits for it. A private
// message touches three conversations (its own and two inboxes), so the log fills three
// times as fast as with room messages, and those checkpoints took half the commit time.
//
// Here a worker thread with its own connection runs a PASSIVE checkpoint a few times a
// second: it copies what no reader still needs and never blocks the writer. The writer's
// own automatic checkpoint stays as a backstop at a larger size, for a worker that cannot
// keep up or could not start. The worker's source is inline (a blob URL) so the compiled
// executable carries it too.

/** How often the worker checkpoints. */
const EVERY_MS = 200;

/** The writer's own checkpoint, if the log ever gets this long (pages of 4 KiB: 40 MiB). */
export const BACKSTOP_PAGES = 10_000;

const WORKER_SOURCE = `
import { Database } from "bun:sqlite";
let db = null;
let timer = null;
self.onmessage = (event) => {
  if (event.data.stop) {
    // Close the connection, so the store's own close is the last one (it removes the log).
    clearInterval(timer);
    db?.close();
    self.close();
    return;
  }
  const { path, every } = event.data;
  try {
    db = new Database(path);
    db.exec("PRAGMA busy_timeout = 1000");
  } catch (error) {
    postMessage({ failed: String(error) });
    return;
  }
  const checkpoint = db.query("PRAGMA wal_checkpoint(PASSIVE)");
  timer = setInterval(() => {
    try {
      const result = checkpoint.get();
      if (result && result.log > 0) postMessage({ checkpointed: result.checkpointed });
    } catch (error) {
      postMessage({ failed: String(error) });
    }
  }, every);
};
`;

export interface CheckpointEvents {
  /** A checkpoint ran; `pages` copied into the database so far in this log. */
  onCheckpoint?: (pages: number) => void;
  /** The worker could not open the file or a checkpoint failed (the backstop takes over). */
  onFailure?: (error: string) => void;
}

export class Checkpointer {
  private readonly worker: Worker;
  private readonly url: string;

  constructor(path: string, events: CheckpointEvents = {}) {
    this.url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    this.worker = new Worker(this.url);
    this.worker.onmessage = (event: MessageEvent<{ checkpointed?: number; failed?: string }>) => {
      if (event.data.failed !== undefined) events.onFailure?.(event.data.failed);
      else events.onCheckpoint?.(event.data.checkpointed ?? 0);
    };
    this.worker.onerror = (event) => events.onFailure?.(event.message);
    this.worker.postMessage({ path, every: EVERY_MS });
    // A worker must not keep the process alive: the store closes it, or exit does. (Bun's
    // Worker has unref; the DOM type it is declared with does not.)
    (this.worker as Worker & { unref(): void }).unref();
  }

  /** The worker closes its connection and ends (after a checkpoint it is in, if any). */
  close(): void {
    this.worker.onmessage = null;
    this.worker.postMessage({ stop: true });
    URL.revokeObjectURL(this.url);
  }
}
