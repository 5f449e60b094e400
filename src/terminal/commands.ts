// What a line typed into the terminal client means: a slash command or a chat message to
// the current room. Pure, so every form (and every mistake) is tested without a socket.

export type Command =
  | { kind: "say"; text: string }
  | { kind: "join"; room: string }
  | { kind: "leave"; room?: string }
  | { kind: "msg"; to: string; text: string }
  | { kind: "who"; room?: string }
  | { kind: "nick"; name: string }
  | { kind: "quit" }
  | { kind: "help" }
  | { kind: "nothing" }
  | { kind: "usage"; message: string };

export const HELP = [
  "/join <room>         enter a room (it becomes the one you talk in)",
  "/leave [room]        leave a room (default: the current one)",
  "/msg <name> <text>   a private message",
  "/who [room]          who is online in a room",
  "/nick <name>         change your name",
  "/quit                leave the chat (Ctrl-D too)",
  "anything else        a message to the current room (start with // to send a line that starts with /)",
].join("\n");

export function parseLine(line: string): Command {
  const trimmed = line.trim();
  if (trimmed === "") return { kind: "nothing" };
  if (!trimmed.startsWith("/")) return { kind: "say", text: line };
  if (trimmed.startsWith("//")) return { kind: "say", text: trimmed.slice(1) };
  const [head = "", ...rest] = trimmed.split(/\s+/);
  const args = rest.join(" ");
  switch (head.toLowerCase()) {
    case "/join":
    case "/j":
      return rest.length === 1 ? { kind: "join", room: rest[0]! } : { kind: "usage", message: "usage: /join <room>" };
    case "/leave":
    case "/part":
      return rest.length <= 1 ? { kind: "leave", ...(rest[0] ? { room: rest[0] } : {}) } : { kind: "usage", message: "usage: /leave [room]" };
    case "/msg":
    case "/m": {
      const [to, ...words] = rest;
      // The text keeps its own spacing: everything after the name, as typed.
      const text = to === undefined ? "" : trimmed.slice(trimmed.indexOf(to, head.length) + to.length).trim();
      return to && words.length > 0 && text ? { kind: "msg", to, text } : { kind: "usage", message: "usage: /msg <name> <text>" };
    }
    case "/who":
      return rest.length <= 1 ? { kind: "who", ...(rest[0] ? { room: rest[0] } : {}) } : { kind: "usage", message: "usage: /who [room]" };
    case "/nick":
      return args ? { kind: "nick", name: args } : { kind: "usage", message: "usage: /nick <name>" };
    case "/quit":
    case "/exit":
    case "/q":
      return { kind: "quit" };
    case "/help":
    case "/?":
      return { kind: "help" };
    default:
      return { kind: "usage", message: `unknown command ${head}; /help lists them` };
  }
}
