// Uploading a file through the UI service, as the renderer does (one chunk): for the tests that
// submit from the UI's side.

import type { UiService } from '../../main/engine/ui/ui-service.js';

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
