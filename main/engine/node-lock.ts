// One serving node per data folder. The folder holds the node's identity, so two nodes on it
// would be one node twice: both would announce the same id, and both would write the journal of
// other submitters' jobs. `deskgrid node`, `deskgrid node --ui` and the desktop app all serve
// through Cluster.start({ serve }), which takes this lock first; a submitting `deskgrid run` on
// the same folder does not serve and is not held back.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FolderLock } from './store/folder-lock.js';

export const NODE_LOCK_FILE = 'node.lock';

/** Takes the data folder for this node, or throws DG_ERR_LOCKED naming the node that has it. */
export function lockDataFolder(home: string, port: number | undefined): FolderLock {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  return FolderLock.acquire(
    join(home, NODE_LOCK_FILE),
    (holder) =>
      `the data folder ${home} is in use by another DeskGrid node (${holder}): stop that node first, or give this one its own data folder (--data DIR or DESKGRID_HOME)`,
    port === undefined || port === 0 ? undefined : `serving on port ${port}`,
  );
}
