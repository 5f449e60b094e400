// Every Redis key and channel bunchat uses, in one place. Prefix "bc:" keeps them apart
// from anything else in a shared Redis.
export const SEP = "\u001f"; // cannot appear in names or rooms (control characters are refused)

/** Redis pub/sub channel of a bus topic: the prefix, then the topic. */
export const CHANNEL_PREFIX = "bc:t:";

export const keys = {
  nodes: "bc:nodes",
  alive: (node: string) => `bc:node:${node}:alive`,
  nodeMembers: (node: string) => `bc:node:${node}:members`,
  names: "bc:names",
  members: (room: string) => `bc:members:${room}`,
  seq: (conversation: string) => `bc:seq:${conversation}`,
  log: (conversation: string) => `bc:log:${conversation}`,
  channel: (topic: string) => `${CHANNEL_PREFIX}${topic}`,
} as const;

