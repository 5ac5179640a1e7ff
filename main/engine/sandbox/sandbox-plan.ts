// What a confined worker may reach, said once for every system. A plan names only the
// submitter's own folders; the system folders and the runtime that every worker needs are the
// confiner's business (bwrap-command.ts on Linux, macos-profile.ts on macOS). Any launched
// worker command (the Node worker, a Python worker) goes through the same wrap.

export interface SandboxPlan {
  /** Folders (or files) the job reads: its bundle. Bound read-only at the same path. */
  readOnly: string[];
  /** Folders the job writes: its job folders. Bound read-write at the same path. */
  readWrite: string[];
  /** Whether the job may use the network (off: only a private loopback). */
  network: boolean;
}

export interface CommandLine {
  command: string;
  args: string[];
}

/** Turns a worker's command line into one that runs it confined to a plan. */
export interface Confiner {
  /** How this system confines ("bubblewrap", "sandbox-exec"), for messages. */
  readonly mechanism: string;
  /**
   * Whether the confined worker lives in its own pid namespace: process ids it reports (of the
   * programs it starts) then mean nothing outside, and the pool signals the sandbox's whole
   * process tree instead.
   */
  readonly ownPidNamespace: boolean;
  wrap(command: CommandLine, plan: SandboxPlan): CommandLine;
  /** Environment the confined worker needs on top of its own (a temp folder it may write). */
  environment(plan: SandboxPlan): Record<string, string>;
}

/** A plan and the confiner that enforces it: what a launcher needs to start a confined worker. */
export interface Sandbox {
  plan: SandboxPlan;
  confiner: Confiner;
}
