// Polls until a condition holds (a truthy value comes back), with a time limit.

const POLL_MS = 25;

type Maybe<T> = T | undefined | null | false;

/** The first truthy value `probe` gives (or resolves to); throws naming `what` after `limitMs`. */
export async function until<T>(
  probe: () => Maybe<T> | Promise<Maybe<T>>,
  what: string,
  limitMs = 20_000,
): Promise<T> {
  for (let waited = 0; waited <= limitMs; waited += POLL_MS) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`timed out waiting for ${what}`);
}
