// Answers the other side owes us, by what names them (a request id, a computation key, a batch).
// Each question gets its own waiter, so answers may come in any order and several questions of
// one kind may be open at once; a connection that closes rejects (or settles) every waiter.

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

export class Waiters<K, T> {
  private readonly waiting = new Map<K, Array<Waiter<T>>>();

  /** A promise for the answer named `key` (several callers may wait for the same one). */
  wait(key: K): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const list = this.waiting.get(key) ?? [];
      list.push({ resolve, reject });
      this.waiting.set(key, list);
    });
  }

  /** Whether anyone waits for `key`. */
  has(key: K): boolean {
    return this.waiting.has(key);
  }

  resolve(key: K, value: T): void {
    const list = this.waiting.get(key);
    this.waiting.delete(key);
    for (const waiter of list ?? []) waiter.resolve(value);
  }

  reject(key: K, error: Error): void {
    const list = this.waiting.get(key);
    this.waiting.delete(key);
    for (const waiter of list ?? []) waiter.reject(error);
  }

  rejectAll(error: Error): void {
    for (const key of [...this.waiting.keys()]) this.reject(key, error);
  }

  resolveAll(value: T): void {
    for (const key of [...this.waiting.keys()]) this.resolve(key, value);
  }
}

let lastRequestId = 0;

/** A request id unique in this process (answers name the question they answer). */
export function nextRequestId(): number {
  lastRequestId += 1;
  return lastRequestId;
}
