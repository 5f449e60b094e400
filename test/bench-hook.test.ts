// Smoke test of bench/hook.ts at tiny sizes (the real run is by hand, see bench/README.md):
// both variants run both scenarios against the local hook server, lose nothing, and the
// table has a ratio for every measure.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { hookTable, measureHook } from "../bench/hook.ts";

// test/setup.ts's 30 s default reaches only the first file bun test loads (Bun 1.4.5): say it here.
setDefaultTimeout(60_000);

describe("publish hook benchmark", () => {
  test("measures burst and fan-out with and without the hook, and writes the table", async () => {
    const o = { reps: 1, clients: 4, messages: 20, subscribers: 6, publishers: 1, rate: 20, duration: 1 };
    const results = await measureHook(o);
    for (const scenario of ["burst", "fanout"] as const) {
      for (const variant of ["no hook", "hook"] as const) {
        const [r] = results[scenario][variant];
        expect({ scenario, variant, lost: r!.lost, received: r!.received > 0 }).toEqual({ scenario, variant, lost: 0, received: true });
      }
    }
    const table = hookTable(o, results);
    expect(table).toContain("Command: `bun bench/hook.ts --reps 1 --clients 4");
    expect(table.split("\n").filter((l) => /^\| (burst|fanout) \|.*× \|$/.test(l))).toHaveLength(6);
  });
});
