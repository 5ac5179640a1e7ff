// The entry for hosts that start the engine's workers their own way: the desktop app's
// utility-process adapter implements WorkerLauncher, finds the compiled worker-service through
// workerEntryPath, and hands confined workers to the plain ChildProcessLauncher. The pool itself
// stays inside the engine.

export { ChildProcessLauncher } from '../pool/child-process-launcher.js';
export { workerEntryPath } from '../pool/worker-entry.js';
export type { LaunchOptions, WorkerChannel, WorkerExit, WorkerLauncher } from '../pool/worker-launcher.js';
