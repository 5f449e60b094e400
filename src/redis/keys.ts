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
  /** Hash name key → the id of the person who holds (or last held) it. */
  names: "bc:names",
  /** Resume key hash → person id (per key, so it can expire with its person). */
  resume: (hash: string) => `bc:resume:${hash}`,
  /** Sorted set (by name) of the rooms with people in them. */
  rooms: "bc:rooms",
  /** Hash ban or mute id → its JSON record (engine/moderation.ts). */
  sanctions: "bc:sanctions",
  /** Hash person id → display name, per room (everyone in it, on any node). */
  members: (room: string) => `bc:members:${room}`,
  /** Per person: hash {name, key, resume, seen, delivered}; bc:conns:<id> node → connections. */
  person: (id: string) => `bc:id:${id}`,
  seq: (conversation: string) => `bc:seq:${conversation}`,
  log: (conversation: string) => `bc:log:${conversation}`,
  channel: (topic: string) => `${CHANNEL_PREFIX}${topic}`,
  /** One channel per node for the inbox frames of everyone connected to it: no channel per person. */
  nodeChannel: (node: string) => `bc:n:${node}`,
} as const;

