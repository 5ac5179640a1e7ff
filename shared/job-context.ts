// What a JS/TS computation receives as its second argument. A computation module looks like:
//
//   export default async function (input: number, ctx: JobContext) {
//     ctx.progress(0.5, 'half way');
//     return input * 2;
//   }

export interface JobContext {
  /** 0-based position of the input in the dataset. */
  readonly index: number;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
  /** A folder for output files; whatever is written there comes back with the result. */
  readonly outputDir: string;
  /** Reports how far the job is, 0..1, with an optional note. */
  progress(fraction: number, note?: string): void;
  /** Sends a line to the submitter's log events; it is also kept in the job's stderr. */
  log(...args: unknown[]): void;
  /** Sends an intermediate result to the submitter while the job goes on. */
  provisional(value: unknown): void;
}

/** The shape of a computation module's default export. */
export type ComputationFunction<I = unknown, O = unknown> = (input: I, ctx: JobContext) => O | Promise<O>;
