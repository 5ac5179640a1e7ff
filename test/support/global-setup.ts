// Before any test: remove network namespaces left by an earlier test run that was killed
// (only those of our own naming scheme whose owner process is gone).

import { cleanupStaleNamespaces, netnsUnavailableReason } from './netns.js';

export default function setup(): void {
  if (netnsUnavailableReason() === null) cleanupStaleNamespaces();
}
