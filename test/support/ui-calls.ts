// What tests that submit from the UI's side do through the UI service: upload a file as the
// renderer does (one chunk), and wait for a batch to reach a state.

import type { BatchInfo } from '../../shared/ui-api.js';
import type { UiService } from '../../main/engine/ui/ui-service.js';
import { until } from './until.js';

export async function uploadFile(ui: UiService, role: 'script' | 'dataset', name: string, text: string) {
  const bytes = Buffer.byteLength(text);
  const { uploadId } = await ui.call('beginUpload', { role, name, kind: 'file', bytes, files: 1 });
  await ui.call('uploadChunk', {
    uploadId,
    path: name,
    offset: 0,
    data: Buffer.from(text).toString('base64'),
  });
  return { type: 'upload' as const, uploadId };
}

/** Waits (a minute at most) until the UI says the batch is in `state`; its info then. */
export function batchIn(ui: UiService, batchId: string, state: BatchInfo['state']): Promise<BatchInfo> {
  return until(
    async () => {
      const { batches } = await ui.call('getBatches', {});
      const found = batches.find((candidate) => candidate.id === batchId);
      return found?.state === state ? found : undefined;
    },
    `the batch to be ${state}`,
    60_000,
  );
}
