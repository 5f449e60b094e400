// A typed event emitter small enough to carry no dependency: the SDK runs in browsers,
// Bun, Node and Deno, which share no emitter class. Listeners that throw do not stop the
// others (one broken UI handler must not cut the client off from later frames).

export type Listener<Args extends unknown[]> = (...args: Args) => void;

export class Emitter<Events extends { [K in keyof Events]: unknown[] }> {
  // Values are Listener<Events[K]> for their key K; the map cannot say so in its type.
  private readonly listeners = new Map<keyof Events, Set<unknown>>();

  /** Call `listener` on every `event`; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Call `listener` on the next `event` only. */
  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, ((...args: Events[K]) => {
      off();
      listener(...args);
    }) as Listener<Events[K]>);
    return off;
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener);
  }

  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(...args);
      } catch (error) {
        // Report it where the runtime reports uncaught errors, without unwinding the client.
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }
}
