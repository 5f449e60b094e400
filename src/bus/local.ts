// In-process bus: publishing is delivering. One process, no network hop.
import type { Bus, Deliver } from "./bus.ts";

export class LocalBus implements Bus {
  constructor(private readonly deliver: Deliver) {}
  publish(topic: string, frame: string, seq = 0): void {
    this.deliver(topic, frame, seq);
  }
  async interest(): Promise<void> {}
  async close(): Promise<void> {}
}
