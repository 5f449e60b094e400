// Log-bucketed latency histogram (about 1% resolution from 1 µs to 100 s): constant
// memory however many deliveries, and mergeable across worker processes.
const GROWTH = 1.01;
const MIN_MS = 0.001;
const BUCKETS = Math.ceil(Math.log(100_000 / MIN_MS) / Math.log(GROWTH)) + 1;

export class Histogram {
  counts: number[];
  total = 0;
  max = 0;
  constructor(counts?: number[]) {
    this.counts = counts ?? new Array<number>(BUCKETS).fill(0);
    if (counts) for (const c of counts) this.total += c;
  }
  record(ms: number): void {
    const v = ms < MIN_MS ? MIN_MS : ms;
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log(v / MIN_MS) / Math.log(GROWTH)));
    this.counts[i]!++;
    this.total++;
    if (ms > this.max) this.max = ms;
  }
  merge(other: { counts: number[]; max: number }): void {
    for (let i = 0; i < BUCKETS; i++) {
      const c = other.counts[i] ?? 0;
      this.counts[i]! += c;
      this.total += c;
    }
    if (other.max > this.max) this.max = other.max;
  }
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const target = Math.ceil((p / 100) * this.total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return Math.min(this.max, MIN_MS * GROWTH ** (i + 1));
    }
    return this.max;
  }
  toJSON(): { counts: number[]; max: number } {
    return { counts: this.counts, max: this.max };
  }
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
