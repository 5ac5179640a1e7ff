// The entry for the processes that host a node for people, `deskgrid node` and the desktop app:
// the UI service the renderer talks to and the HTTP server of `--ui`, the owner's sharing policy
// and its signals, and the engine's logger. Kept off the engine's index, so that `deskgrid run`
// and programs using the Node API do not load a web server they never start.

export { UiService, type UiServiceOptions } from '../ui/ui-service.js';
export { UiServer, defaultRendererDir, CONTENT_SECURITY_POLICY } from '../ui/ui-server.js';
export { OwnerController } from '../owner/owner-controller.js';
export { activityFileSignals } from '../owner/activity-file.js';
export {
  DEFAULT_OWNER_SETTINGS,
  parseShareMode,
  type OwnerSettings,
  type OwnerSignals,
  type ShareMode,
  type SharingReason,
} from '../owner/owner-policy.js';
export { createLogger, type Logger } from '../log.js';
