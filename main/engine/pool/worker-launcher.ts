// The one interface the pool uses to start worker processes. Two adapters implement it: child
// processes in plain Node (child-process-launcher.ts) and Electron's utilityProcess in the app
// (main/app). Both run worker-service/main.js unchanged and carry structured-clone messages.

import type { ToWorker } from '../../../shared/worker-protocol.js';
import type { Sandbox } from '../sandbox/sandbox-plan.js';

export interface WorkerExit {
  code: number | null;
  signal: string | null;
}

export interface WorkerChannel {
  /** The worker's process id, once known. */
  readonly pid: number | undefined;
  /**
   * The worker runs in a pid namespace of its own (a bubblewrap sandbox): the pids it reports mean
   * nothing here, and stopping or measuring it means the whole process tree under `pid`.
   */
  readonly ownPidNamespace?: boolean;
  /** Sends a message; throws if the value cannot be serialized. */
  send(message: ToWorker): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Called once when the process has exited. */
  onExit(listener: (exit: WorkerExit) => void): void;
  /** The last few kilobytes the process wrote to stderr (to explain a crash). */
  stderrTail(): string;
  /** Asks the process to exit once it has nothing left to do (closes its channel). */
  close(): void;
  /** Kills the process at once. */
  kill(): void;
}

export interface LaunchOptions {
  /** V8 heap limit for the worker, in MB (jobs that exceed it crash their worker). */
  maxHeapMb?: number;
  /** Start the worker confined (other submitters' jobs); absent: as this process's user. */
  sandbox?: Sandbox;
}

export interface WorkerLauncher {
  launch(options: LaunchOptions): WorkerChannel;
}
