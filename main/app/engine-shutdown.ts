// Quitting the app: other people's jobs go back to their submitters at once (to run elsewhere),
// this user's batches get a little time to end cleanly (their results are committed as they
// arrive, and a batch with a results folder can be resumed), then whatever is left is stopped.

export interface ClosableEngine {
  handBackOthers(): void;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export const QUIT_TIME_LIMIT_MS = 10_000;

/** Resolves 'closed', or 'stopped' when the time limit ran out and the engine was destroyed. */
export async function shutDownEngine(
  engine: ClosableEngine,
  limitMs = QUIT_TIME_LIMIT_MS,
): Promise<'closed' | 'stopped'> {
  engine.handBackOthers();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    engine.close().then(() => 'closed' as const),
    new Promise<'stopped'>((resolve) => {
      timer = setTimeout(() => resolve('stopped'), limitMs);
    }),
  ]);
  clearTimeout(timer);
  if (outcome === 'stopped') await engine.destroy();
  return outcome;
}
