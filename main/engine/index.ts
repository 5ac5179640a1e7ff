// The engine's public face. Programs use it as DeskGrid's Node API (`import { Cluster } from
// 'deskgrid'`); DeskGrid's own shells, the CLI (main/cli) and the desktop app (main/app), reach
// the engine only through it and through the light entry modules in entry/ (lint-enforced):
//   entry/doctor.ts    `deskgrid nodes` and `doctor`: the LAN survey and diagnosis, without the Cluster
//   entry/settings.ts  this computer's data home, saved settings, cluster id and version
//   entry/worker.ts    what a host needs to start the engine's workers its own way
//   entry/host.ts      hosting a node for people (`deskgrid node`, the app): the UI service and
//                      server, the owner's sharing policy, the logger
// What entry/doctor, settings and worker export is exported here too; entry/host is not, so that
// `deskgrid run` and programs using the Node API do not load the UI's server.

export {
  Cluster,
  scrubbedEnvironment,
  type ClusterEvents,
  type ClusterOptions,
  type ClusterStats,
  type Sharing,
} from './cluster.js';
export { Batch, type BatchEvents } from './batch.js';
export type { Waiting, WaitingNode } from './waiting-for-nodes.js';
export type { NotSharing, NotSharingReason } from '../../shared/not-sharing.js';
export type { SubmitOptions } from './prepare-batch.js';
export type { Requirements } from './requirements.js';
export { SPLIT_MODES, type SplitMode } from '../../shared/split-mode.js';
export { RESULTS_FILE } from './store/batch-store.js';
export { DeskGridError, ErrorCode, type JobError } from '../../shared/errors.js';
export type {
  BatchStats,
  BatchSummary,
  FinalStatus,
  JobLog,
  JobProgress,
  JobProvisional,
  JobResult,
  JobStatus,
} from '../../shared/job.js';
export type { JobContext, ComputationFunction } from '../../shared/job-context.js';
export { toResultLine } from '../../shared/result-line.js';

export * from './entry/doctor.js';
export * from './entry/settings.js';
export * from './entry/worker.js';
