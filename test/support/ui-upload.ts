// Uploads one file to a UiService in one chunk, as the renderer does for a dropped file.

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
