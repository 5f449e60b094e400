// The Directory answers cluster-wide questions the hub cannot answer from its own maps:
// is this name taken anywhere, where is that user, who is in this room on every node.
// One process needs none of it (the hub's maps are the truth); src/cluster/directory.ts
// implements it on Redis for several nodes.

export interface Directory {
  /** Take a name for a user of this node; false if it is online anywhere. */
  claim(key: string, name: string): Promise<boolean>;
  /** Give a name back (the user left or renamed). */
  release(key: string): void;
  /** The display name of an online user anywhere, or null. */
  lookup(key: string): Promise<string | null>;
  /** Room membership of a user of this node (for cluster-wide counts and lists). */
  joined(room: string, name: string): void;
  left(room: string, name: string): void;
  online(room: string): Promise<number>;
  members(room: string, cap: number): Promise<string[]>;
  /** Facts for /healthz. */
  health(): Record<string, unknown>;
  close(): Promise<void>;
}
