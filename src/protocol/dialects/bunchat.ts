// bunchat's own dialect: the frames of docs/PROTOCOL.md, as they are.
import { decode, type TextRules } from "../decode.ts";
import { encode, type ServerFrame } from "../frames.ts";
import type { Dialect, Reading } from "./dialect.ts";

export const bunchatDialect: Dialect = {
  name: "bunchat",
  topic: (roomTopic: string) => roomTopic,
  render: (frame: ServerFrame) => [encode(frame)],
  read: (raw: string, rules: TextRules): Reading => ({ frame: decode(raw, rules) }),
};
