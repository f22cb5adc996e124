/**
 * A minimal typed event emitter: the event map fixes each event's argument
 * tuple, so listeners are checked by the compiler instead of receiving `any`.
 */

/** An event map: event name → the listener's argument tuple. */
export type EventMap = { [event: string]: unknown[] };

/** A listener for one event of a map. */
export type Listener<M extends EventMap, K extends keyof M> = (...args: M[K]) => void;

/**
 * Typed emitter. A listener that throws is isolated (reported to `onListenerError`)
 * so one faulty consumer cannot break the connection logic that emitted.
 */
export class TypedEmitter<M extends EventMap> {
  // Listeners are stored untyped; `on` and `emit` restore the type per event.
  private readonly listeners = new Map<keyof M, Set<unknown>>();

  constructor(private readonly onListenerError: (err: unknown, event: keyof M) => void = () => undefined) {}

  /** Add a listener; returns a function that removes it. */
  on<K extends keyof M>(event: K, listener: Listener<M, K>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Add a listener that runs at most once. */
  once<K extends keyof M>(event: K, listener: Listener<M, K>): () => void {
    const off = this.on(event, (...args: M[K]) => {
      off();
      listener(...args);
    });
    return off;
  }

  /** Remove a listener. */
  off<K extends keyof M>(event: K, listener: Listener<M, K>): void {
    this.listeners.get(event)?.delete(listener);
  }

  /** Number of listeners for an event. */
  listenerCount(event: keyof M): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** Call every listener of `event` with `args`. */
  protected emit<K extends keyof M>(event: K, ...args: M[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const l of [...set]) {
      try {
        (l as (...a: M[K]) => void)(...args);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }
}
