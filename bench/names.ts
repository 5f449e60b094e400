// Cost of the name rules on connect: checkName + nameKey over 100k mixed names, beside the
// rules they replaced (NFC + one regex; NFKC + toLowerCase) as a baseline.
//
//   bun bench/names.ts [--names 100000] [--rounds 5]
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { names: { type: "string", default: "100000" }, rounds: { type: "string", default: "5" } } });
const COUNT = Number(values.names);
const ROUNDS = Number(values.rounds);

const loadStart = performance.now();
const { checkName, nameKey } = await import("../src/protocol/names.ts");
const loadMs = performance.now() - loadStart;

const OLD_FORBIDDEN = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}\u00A0\u2000-\u200A\u3000]/u;
function oldCheckAndKey(raw: string): string | null {
  const name = raw.normalize("NFC");
  const length = [...name].length;
  if (length === 0 || length > 32 || OLD_FORBIDDEN.test(name) || name.trim() !== name) return null;
  return name.normalize("NFKC").toLowerCase();
}
function newCheckAndKey(raw: string): string | null {
  const verdict = checkName(raw, 32);
  return verdict.ok ? nameKey(verdict.name) : null;
}

const ASCII = ["alice", "Bob", "carol_99", "Dave.Smith", "eve-2", "load-user-", "Mallory", "TrentX", "peggy", "victor"];
const OTHER = ["Алиса", "Иван", "ασπίδα", "Ζωή", "张伟", "山田さくら", "김민준", "محمد", "Anna李", "José", "Zoë", "Straße", "שרה", "नेहा", "สมชาย", "Ελένη"];
// A 4-in-5 ASCII mix (load tests and most real names are ASCII), each name unique.
function makeNames(asciiShare: number): string[] {
  return Array.from({ length: COUNT }, (_, i) => {
    const pool = (i % 100) / 100 < asciiShare ? ASCII : OTHER;
    return `${pool[i % pool.length]}${i}`;
  });
}

function measure(label: string, names: string[], run: (name: string) => string | null): void {
  let best = Infinity;
  let accepted = 0;
  for (let round = 0; round < ROUNDS; round++) {
    accepted = 0;
    const start = Bun.nanoseconds();
    for (const name of names) if (run(name) !== null) accepted++;
    best = Math.min(best, Bun.nanoseconds() - start);
  }
  console.log(`${label.padEnd(34)} ${(best / names.length).toFixed(0).padStart(5)} ns/name  (${(best / 1e6).toFixed(1)} ms for ${names.length}, ${accepted} accepted, best of ${ROUNDS})`);
}

console.log(`module load with tables: ${loadMs.toFixed(1)} ms`);
for (const [label, share] of [["ascii", 1], ["mixed (80% ascii)", 0.8], ["non-ascii", 0]] as const) {
  const names = makeNames(share);
  measure(`old rules, ${label}`, names, oldCheckAndKey);
  measure(`checkName+nameKey, ${label}`, names, newCheckAndKey);
}
