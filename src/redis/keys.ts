// Every Redis key and channel bunchat uses, in one place. Prefix "bc:" keeps them apart
// from anything else in a shared Redis. (Lua scripts in scripts.ts build the per-node
// keys of other nodes from the same patterns.)
export const SEP = "\u001f"; // cannot appear in names or rooms (control characters are refused)

/** Redis pub/sub channel of a topic: the prefix, then the topic. */
export const CHANNEL_PREFIX = "bc:t:";

export const keys = {
  /** Hash {id, floor}: the history's epoch, and the id new conversations count up from. */
  epoch: "bc:epoch",
  nodes: "bc:nodes",
  alive: (node: string) => `bc:node:${node}:alive`,
  nodeNames: (node: string) => `bc:node:${node}:names`,
  nodeMembers: (node: string) => `bc:node:${node}:members`,
  /** Hash name key → "<node>\x1f<display name>". */
  names: "bc:names",
  /** Hash person key → "<node>\x1f<display name>", per room. */
  members: (room: string) => `bc:members:${room}`,
  seq: (conversation: string) => `bc:seq:${conversation}`,
  log: (conversation: string) => `bc:log:${conversation}`,
  channel: (topic: string) => `${CHANNEL_PREFIX}${topic}`,
} as const;

/** "<node>\x1f<name>" → [node, name]. */
export function ownerAndName(value: string): [node: string, name: string] {
  const at = value.indexOf(SEP);
  return at < 0 ? [value, ""] : [value.slice(0, at), value.slice(at + 1)];
}
