// Polls until a condition holds (a truthy value comes back), with a bound. The bound counts polls
// rather than reading the clock: a loaded machine that runs each poll late waits longer in real
// time, instead of failing a test for being slow. Every polling loop in the tests goes through here.

const POLL_MS = 25;

type Maybe<T> = T | undefined | null | false;
type Probe<T> = () => Maybe<T> | Promise<Maybe<T>>;

/**
 * The first truthy value `probe` gives (or resolves to); throws naming `what` (a text, or a
 * function that describes the state at the time) after `limitMs` of polling.
 */
export async function until<T>(probe: Probe<T>, what: string | (() => string), limitMs = 20_000): Promise<T> {
  const value = await eventually(probe, limitMs);
  if (value !== null) return value;
  throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
}

/** Like `until`, but gives null at the bound instead of throwing: for "does it happen soon?". */
export async function eventually<T>(probe: Probe<T>, limitMs = 20_000): Promise<T | null> {
  for (let waited = 0; waited <= limitMs; waited += POLL_MS) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return null;
}
