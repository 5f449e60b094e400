// Group commit: collect everything appended during one event-loop turn and hand it to
// `commit` as one batch from setImmediate, after the I/O phase. (queueMicrotask would run
// after each socket event and so hold one message; setImmediate holds the whole turn.)

export class GroupCommit<T> {
  private queue: T[] = [];
  private scheduled = false;

  constructor(private readonly commit: (batch: T[]) => void) {}

  push(item: T): void {
    this.queue.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Commit what is queued now (also used by shutdown). */
  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.commit(batch);
  }
}
