// The desktop app's entry (package.json "main"): one instance per user, the UI's contract and
// service behind the IPC gateway, everything else in desktop.ts.

import { app } from 'electron';
import { UI_CALLS } from '../../shared/ui-api.js';
import { UiService } from '../engine/entry/host.js';
import { keepHeapSmall } from '../engine/entry/process-heap.js';
import { prepareDesktop, startDesktop } from './desktop.js';

const prepared = prepareDesktop();
if (prepared !== null) {
  // The app runs for days beside its owner's work: its heap should stay near what is live.
  keepHeapSmall();
  app
    .whenReady()
    .then(() =>
      startDesktop(prepared.home, {
        contract: UI_CALLS,
        createUi: ({ cluster, home, joinCode, openPath }) => {
          const ui = new UiService({ cluster, home, joinCode, openPath });
          // The batches this app had running when it last stopped go on where they were.
          ui.resumeUnfinished();
          return ui;
        },
      }),
    )
    .catch((error: unknown) => {
      process.stderr.write(
        `deskgrid: the app could not start: ${error instanceof Error ? error.message : String(error)}\n`,
      );
      app.exit(1);
    });
}
