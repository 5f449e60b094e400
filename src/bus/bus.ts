// The Bus carries encoded frames to every subscriber of a topic on every node. The
// in-process default hands them straight to Bun's native pub/sub; the Redis bus crosses
// processes and machines. Either way a frame is encoded once, before it reaches the bus.

/** Receives a frame on this node; `seq` is the message id for room messages, else 0. */
export type Deliver = (topic: string, frame: string, seq: number) => void;

export interface Bus {
  /** Send a frame to every subscriber of `topic`, on every node. */
  publish(topic: string, frame: string, seq?: number): void;
  /** This node now has (or no longer has) local subscribers for `topic`. */
  interest(topic: string, wanted: boolean): Promise<void>;
  close(): Promise<void>;
}

export const topics = {
  room: (room: string) => `r:${room}`,
  inbox: (nameKey: string) => `u:${nameKey}`,
  /** The room a room topic names, or null for any other topic. */
  roomOf: (topic: string) => (topic.startsWith("r:") ? topic.slice(2) : null),
} as const;
