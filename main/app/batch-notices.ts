// A notification when one of this user's batches ends: one per batch, worded from its counts.

export interface EndedBatch {
  id: string;
  title: string;
  state: string;
  error: string | null;
  done: number;
  failed: number;
  timeout: number;
  cancelled: number;
  abandoned: number;
}

export interface Notice {
  title: string;
  body: string;
}

/** Tells each batch's end once: `notice(batch)` is null until it ends, and after it was told. */
export function batchNotices(): (batch: EndedBatch) => Notice | null {
  const told = new Set<string>();
  return (batch) => {
    if ((batch.state !== 'ended' && batch.state !== 'failed') || told.has(batch.id)) return null;
    told.add(batch.id);
    if (batch.state === 'failed') return { title: `${batch.title} could not run`, body: batch.error ?? '' };
    const notDone = batch.failed + batch.timeout + batch.abandoned;
    const parts = [`${batch.done} done`];
    if (notDone > 0) parts.push(`${notDone} failed`);
    if (batch.cancelled > 0) parts.push(`${batch.cancelled} cancelled`);
    return {
      title: notDone === 0 && batch.cancelled === 0 ? `${batch.title} finished` : `${batch.title} ended`,
      body: parts.join(', '),
    };
  };
}
