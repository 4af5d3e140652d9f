// A minimal typed event emitter for the client (browsers and Node alike). A throwing listener
// is isolated: it cannot stop the others or the sync engine.

export class Emitter<Events extends Record<string, unknown>> {
  private readonly listeners: { [K in keyof Events]?: Set<(event: Events[K]) => void> } = {};

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(type: K, listener: (event: Events[K]) => void): () => void {
    (this.listeners[type] ??= new Set()).add(listener);
    return () => this.off(type, listener);
  }

  off<K extends keyof Events>(type: K, listener: (event: Events[K]) => void): void {
    this.listeners[type]?.delete(listener);
  }

  protected emit<K extends keyof Events>(type: K, event: Events[K]): void {
    for (const listener of this.listeners[type] ?? []) {
      try {
        listener(event);
      } catch (error) {
        console.error(`nixfleet: a '${String(type)}' listener threw`, error);
      }
    }
  }

  protected removeAllListeners(): void {
    for (const key of Object.keys(this.listeners) as (keyof Events)[]) delete this.listeners[key];
  }
}
