// The Directory of a single node: the registry already knows every name and member, so
// the answers come straight from it and nothing needs announcing.
import type { Directory } from "./ports.ts";
import type { Registry } from "./registry.ts";

export class LocalDirectory implements Directory {
  constructor(private readonly registry: Registry) {}

  /** The registry reserved the name before this is asked: nobody else can hold it. */
  async claim(): Promise<boolean> {
    return true;
  }
  release(): void {}
  async lookup(key: string): Promise<string | null> {
    return this.registry.people.get(key)?.name ?? null;
  }
  joined(): void {}
  left(): void {}
  async online(room: string): Promise<number> {
    return this.registry.localOnline(room);
  }
  async members(room: string, cap: number): Promise<string[]> {
    return this.registry.localMembers(room, cap);
  }
  health(): Record<string, unknown> {
    return {};
  }
  async close(): Promise<void> {}
}
