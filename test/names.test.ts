// Names nobody can fake: look-alikes are refused (checkName) or collide (nameKey), while
// names in any one script, or in the scripts Chinese, Japanese and Korean combine, stay open.
import { describe, expect, test } from "bun:test";
import confusablesTxt from "unhomoglyph/data.json" with { type: "json" };
import { fullNameKey } from "../src/protocol/name-key.ts";
import { checkName, checkRoom, nameKey } from "../src/protocol/names.ts";
import { UNICODE_VERSION } from "../src/protocol/unicode-data.ts";
import { handshake } from "./helpers/client.ts";
import { serverFixture } from "./helpers/fixture.ts";

const MAX = 32;
const reasonFor = (name: string) => {
  const verdict = checkName(name, MAX);
  return verdict.ok ? "accepted" : verdict.reason;
};
const collide = (...names: string[]) => new Set(names.map(nameKey)).size === 1;

describe("look-alikes that are refused", () => {
  test.each([
    ["alice + U+034F combining grapheme joiner", "alice\u034F"],
    ["alice + U+FE0F variation selector 16", "alice\uFE0F"],
    ["alice + U+FE00 variation selector 1", "alice\uFE00"],
    ["only U+3164 Hangul filler", "\u3164\u3164"],
    ["only U+2800 Braille blank", "\u2800\u2800"],
    ["U+115F Hangul choseong filler", "al\u115Fice"],
    ["U+1160 Hangul jungseong filler", "\u1160"],
    ["U+3164 Hangul filler inside a name", "ali\u3164ce"],
    ["U+FFA0 halfwidth Hangul filler", "alice\uFFA0"],
    ["U+17B4 Khmer vowel inherent aq", "alice\u17B4"],
    ["U+17B5 Khmer vowel inherent aa", "\u17B5alice"],
    ["U+200B zero width space", "ali\u200Bce"],
    ["U+200D zero width joiner", "ali\u200Dce"],
    ["U+2060 word joiner", "alice\u2060"],
    ["U+FEFF byte order mark", "\uFEFFalice"],
    ["U+00AD soft hyphen", "ali\u00ADce"],
    ["U+202E right-to-left override", "ad\u202Emin"],
    ["U+E0041 tag letter", "alice\u{E0041}"],
    ["U+1D159 musical null notehead", "alice\u{1D159}"],
  ])("%s: invisible", (_, name) => {
    expect(reasonFor(name)).toBe("name contains invisible characters");
  });

  test("Cyrillic а beside Latin lice mixes scripts", () => {
    expect(reasonFor("\u0430lice")).toBe("name mixes scripts that look alike (Cyrillic and Latin)");
    expect(reasonFor("alic\u0435")).toBe("name mixes scripts that look alike (Latin and Cyrillic)");
    expect(reasonFor("\u0391lice")).toBe("name mixes scripts that look alike (Greek and Latin)");
    expect(reasonFor("Ali محمد")).toBe("name mixes scripts that look alike (Latin and Arabic)");
    expect(reasonFor("김さくら")).toBe("name mixes scripts that look alike (Hangul and Hiragana)");
  });

  test("controls, format and private-use characters, odd spaces, stacked marks, unassigned code points", () => {
    expect(reasonFor("tab\tname")).toBe("name contains control, format or private-use characters");
    expect(reasonFor("a\u0007b")).toBe("name contains control, format or private-use characters");
    expect(reasonFor("\u0600alice")).toBe("name contains control, format or private-use characters");
    expect(reasonFor("alice\uE000")).toBe("name contains control, format or private-use characters");
    for (const space of ["\u00A0", "\u1680", "\u2002", "\u202F", "\u205F", "\u3000"]) {
      expect(reasonFor(`ali${space}ce`)).toBe("name contains a space other than the plain space");
    }
    expect(reasonFor("ali  ce")).toBe("name contains consecutive spaces");
    expect(reasonFor(" alice")).toBe("name starts or ends with a space");
    expect(reasonFor("\u0301alice")).toBe("name starts with a combining mark");
    expect(reasonFor("ale\u0301\u0301")).toBe("name stacks combining marks");
    expect(reasonFor("a\u0300\u0301\u0302\u0303\u0304")).toBe("name stacks combining marks");
    expect(reasonFor("alice\u{50000}")).toBe("name contains unassigned characters");
    expect(reasonFor("alice\uFDD0")).toBe("name contains unassigned characters");
  });
});

describe("look-alikes that collide", () => {
  test("case: Alice, alice and ALICE; final sigma ΑΣ, ασ and ας; ß and SS", () => {
    expect(collide("Alice", "alice", "ALICE")).toBe(true);
    expect(collide("ΑΣ", "ασ", "ας")).toBe(true);
    expect(collide("Straße", "STRASSE", "strasse", "STRAẞE")).toBe(true);
  });

  test("full case folding's special cases (CaseFolding.txt status F)", () => {
    expect(collide("İstanbul", "i\u0307stanbul")).toBe(true);
    expect(collide("ᾳ", "αι", "ΑΙ")).toBe(true);
    expect(collide("ǰ", "J\u030C")).toBe(true);
    expect(collide("ŉ", "ʼn")).toBe(true);
    // Cherokee folds to upper case, the other way round from every other script.
    expect(collide("\uAB70", "\u13A0")).toBe(true);
  });

  test("skeletons: whole-script confusables, digits and letters, rn and m, capital I and l", () => {
    expect(checkName("асе", MAX).ok).toBe(true);
    expect(collide("асе", "ace")).toBe(true);
    expect(collide("paypal", "paypaI", "paypa1", "PAYPAL")).toBe(true);
    expect(collide("AIice", "Alice")).toBe(true);
    expect(collide("B0B", "bob")).toBe(true);
    expect(collide("mary", "rnary")).toBe(true);
    expect(collide("ασ", "ao")).toBe(true);
    // Cherokee and Lisu capitals that draw A L I C E.
    expect(collide("ᎪᏞᎥᏟᎬ", "ꓮꓡꓲꓚꓰ", "alice")).toBe(true);
  });

  test("compatibility forms and invisible characters collide too (the key ignores what checkName refuses)", () => {
    expect(collide("𝐚𝐥𝐢𝐜𝐞", "ａｌｉｃｅ", "alice")).toBe(true);
    expect(collide("alice\u034F", "alice\uFE0F", "ali\u200Bce", "alice")).toBe(true);
  });

  test("i and l share a key, the price of catching capital I (Neil and Nell)", () => {
    expect(collide("Neil", "Nell", "NEIL")).toBe(true);
  });

  test("different names keep different keys", () => {
    const names = ["alice", "alicia", "bob", "mary", "many", "ann", "anna", "Hanna", "张伟", "张三", "ivan", "иван", "ace", "асе2", "user-7f3a", "user-7f3b"];
    expect(new Set(names.map(nameKey)).size).toBe(names.length);
  });
});

describe("names that stay open", () => {
  test.each(["алиса", "ασ", "ΑΣ", "张伟", "さくら", "山田さくら", "カタカナ", "김민준", "محمد", "Anna李", "李さくら", "José", "Zoë", "Ελένη", "नेहा", "สมชาย", "שרה", "Ali 2", "Anna ❤", "user-7f3a", "o'brien", "jean-luc"])("%s", (name) => {
    expect(checkName(name, MAX)).toEqual({ ok: true, name });
  });

  test("the display form is NFC; length counts code points", () => {
    expect(checkName("Zoe\u0308", MAX)).toEqual({ ok: true, name: "Zoë" });
    expect(checkName("𝐚".repeat(MAX), MAX).ok).toBe(true);
    expect(reasonFor("𝐚".repeat(MAX + 1))).toBe(`name is longer than ${MAX} characters`);
    expect(reasonFor("")).toBe("name is empty");
  });

  test("room names are unchanged", () => {
    expect(checkRoom("Lobby")).toEqual({ ok: true, name: "lobby" });
    expect(checkRoom("a b").ok).toBe(false);
  });
});

describe("nameKey", () => {
  test("the ASCII fast path gives the full path's key", () => {
    for (let c = 0; c < 128; c++) expect(nameKey(String.fromCharCode(c))).toBe(fullNameKey(String.fromCharCode(c)));
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) % 128;
    for (let i = 0; i < 5000; i++) {
      const name = String.fromCharCode(...Array.from({ length: 1 + (i % 16) }, random));
      expect(nameKey(name)).toBe(fullNameKey(name));
    }
  });

  test("keys are stable (the key of a key is itself) and bring in no control character", () => {
    // Keys become Redis fields and topic names joined with \x1f.
    const CONTROL = /\p{Cc}/u;
    for (let codePoint = 0; codePoint < 0x110000; codePoint++) {
      if (codePoint >= 0xd800 && codePoint <= 0xdfff) continue;
      const ch = String.fromCodePoint(codePoint);
      const key = nameKey(ch);
      if (key !== nameKey(key) || (CONTROL.test(key) && !CONTROL.test(ch))) throw new Error(`U+${codePoint.toString(16)} keys as ${JSON.stringify(key)}`);
    }
  });

  test("every confusables.txt source collides with its prototype (sources unchanged by NFKD and case folding)", () => {
    const changesWhenFolded = /\p{Changes_When_Casefolded}|\p{Default_Ignorable_Code_Point}/u;
    let checked = 0;
    for (const [source, prototype] of Object.entries(confusablesTxt as Record<string, string>)) {
      if (source.normalize("NFKD") !== source || changesWhenFolded.test(source)) continue;
      checked++;
      if (nameKey(source) !== nameKey(prototype.replace(/\t/g, ""))) throw new Error(`${source} (U+${source.codePointAt(0)!.toString(16)}) does not collide with ${prototype}`);
    }
    expect(checked).toBeGreaterThan(2000);
  });

  test("the tables are on the runtime's Unicode version (regenerate them when Bun moves on)", () => {
    expect(UNICODE_VERSION.startsWith(`${process.versions.unicode}.`)).toBe(true);
  });
});

describe("on a real server", () => {
  const { start, connect } = serverFixture();

  test("a look-alike of an online name is taken (409); a refused name is a bad name (400)", async () => {
    const s = await start();
    await connect({ name: "ΑΣ" });
    await connect({ name: "paypal" });
    const base = `http://127.0.0.1:${s.port}`;
    for (const [name, status, error] of [
      ["ας", 409, "name_taken"],
      ["ασ", 409, "name_taken"],
      ["paypaI", 409, "name_taken"],
      ["раураl", 400, "bad_name"],
      ["\u0430lice", 400, "bad_name"],
      ["alice\u034F", 400, "bad_name"],
      ["\u3164", 400, "bad_name"],
    ] as const) {
      const res = await handshake(base, `/ws?name=${encodeURIComponent(name)}`);
      const body = (await res.json()) as { error: string; message: string };
      expect({ name, status: res.status, error: body.error }).toEqual({ name, status, error });
    }
    const refused = (await (await handshake(base, `/ws?name=${encodeURIComponent("\u0430lice")}`)).json()) as { message: string };
    expect(refused.message).toBe("name mixes scripts that look alike (Cyrillic and Latin)");
  });
});
