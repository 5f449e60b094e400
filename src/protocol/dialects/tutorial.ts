// The dialect of the classic Node.js `ws` chat tutorial bunchat grew from, so the
// tutorial's own client.html works unchanged (see docs/PROTOCOL.md, "The tutorial
// dialect"). Its page connects with no query and no subprotocol, sends plain text, and
// reads these JSON frames:
//   welcome {message, userName, time} · your-id {id} · chat-message {userName, message, time}
//   user-join / user-leave {message, userName, onlineCount, time}
//   private-message {from, content, time} · system {message, time} · error {message}
// It sends {type: "private", to, content} (to: the id a your-id frame gave, which is the
// person's name here) and "ping" as plain text, answered with plain "pong". bunchat's other
// features (rooms beyond the first, history paging, typing, nick) have no words in it.
import type { ClientFrame, ServerFrame } from "../frames.ts";
import { ProtocolError, validateText, type TextRules } from "../decode.ts";
import type { Dialect, Reading } from "./dialect.ts";

/** The tutorial's clock: a 24-hour wall-clock time, as its server sent it. */
function time(ts = Date.now()): string {
  return new Date(ts).toLocaleTimeString("zh-CN", { hour12: false });
}

const json = (frame: Record<string, unknown>) => JSON.stringify(frame);

function render(frame: ServerFrame, viewer?: string): string[] {
  switch (frame.type) {
    case "welcome":
      return [
        json({ type: "welcome", message: `欢迎来到聊天室，${frame.you.name}！`, userName: frame.you.name, time: time() }),
        json({ type: "your-id", id: frame.you.name }),
        ...frame.history.flatMap((m) => render(m, viewer)),
      ];
    case "message":
      return [json({ type: "chat-message", userName: frame.from, message: frame.text, time: time(frame.ts) })];
    case "private":
      // The sender's own copy: the tutorial's page shows what it sent by itself.
      if (viewer !== undefined && frame.from === viewer && frame.to !== viewer) return [];
      return [json({ type: "private-message", from: frame.from, content: frame.text, time: time(frame.ts) })];
    case "presence": {
      const at = time();
      return [
        ...frame.joined.map((name) => json({ type: "user-join", message: `${name} 加入了聊天室`, userName: name, onlineCount: frame.online, time: at })),
        ...frame.left.map((name) => json({ type: "user-leave", message: `${name} 离开了聊天室`, userName: name, onlineCount: frame.online, time: at })),
      ];
    }
    case "system":
      return [json({ type: "system", message: frame.text, time: time() })];
    case "error":
      return [json({ type: "error", message: frame.message })];
    default:
      return [];
  }
}

function read(raw: string, rules: TextRules): Reading {
  if (raw.charCodeAt(0) !== 123 /* { */) {
    if (raw.trim() === "ping") return { reply: "pong" };
    return { frame: { type: "chat", text: validateText(raw, rules) } };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ProtocolError("bad_json", "frame is not valid JSON");
  }
  const obj = (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {}) as Record<string, unknown>;
  if (obj.type === "private") {
    if (typeof obj.to !== "string" || obj.to === "") throw new ProtocolError("bad_field", "to must be the id of the person to write to");
    const frame: ClientFrame = { type: "private", to: obj.to, text: validateText(obj.content, rules) };
    return { frame };
  }
  throw new ProtocolError("unknown_type", "send plain text, or {type: \"private\", to, content}");
}

export const tutorialDialect: Dialect = {
  name: "tutorial",
  topic: (roomTopic: string) => `t:${roomTopic}`,
  render,
  read,
};
