// DeskGrid's Node API: `import { Cluster } from 'deskgrid'`.

export {
  Cluster,
  type ClusterEvents,
  type ClusterOptions,
  type ClusterStats,
  type Sharing,
} from './cluster.js';
export { Batch, type BatchEvents } from './batch.js';
export type { Waiting, WaitingNode } from './waiting-for-nodes.js';
export type { NotSharing, NotSharingReason } from '../../shared/not-sharing.js';
export type { SubmitOptions } from './prepare-batch.js';
export type { SplitMode } from './dataset/dataset-item.js';
export type { WorkerLauncher, WorkerChannel, LaunchOptions, WorkerExit } from './pool/worker-launcher.js';
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
export {
  surveyLan,
  type NodeCheck,
  type ShownState,
  type SurveyedNode,
  type SurveyOptions,
} from './doctor/lan-survey.js';
export { diagnose, DEFAULT_DOCTOR_WAIT_S, type DiagnoseOptions, type Finding } from './doctor/diagnose.js';
