// A warning that can happen thousands of times a second (a webhook queue overflowing, a
// publish hook timing out) is logged at once the first time, then at most once per
// interval with how many happened since: never silent, never a flood.
import type { LogFields, Logger } from "../obs/log.ts";

export class ThrottledWarning {
  private last = Number.NEGATIVE_INFINITY;
  private suppressed = 0;

  constructor(private readonly log: Logger, private readonly event: string, private readonly everyMs = 10_000, private readonly now: () => number = Date.now) {}

  warn(fields: LogFields = {}): void {
    const now = this.now();
    if (now - this.last < this.everyMs) {
      this.suppressed++;
      return;
    }
    this.log.warn(this.event, { ...fields, ...(this.suppressed > 0 ? { moreSinceLastLine: this.suppressed } : {}) });
    this.last = now;
    this.suppressed = 0;
  }
}
