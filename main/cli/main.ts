#!/usr/bin/env -S node --max-semi-space-size=4
// The `deskgrid` command. Each subcommand lives in its own module, loaded only when used so
// that `deskgrid run` starts fast. The line above gives V8 a young generation of 8 MB at most
// instead of up to 32: see entry/process-heap.ts (`env -S` splits it into the program and its
// flags on Linux and macOS; npm's Windows shims read it the same way).

import { DeskGridError } from '../../shared/errors.js';
import { keepHeapSmall } from '../engine/entry/process-heap.js';
import { readPackageVersion } from '../engine/entry/settings.js';
import { EXIT_USAGE, exitStatusOf } from './exit-status.js';

const USAGE = `usage: deskgrid <command> [options]

commands:
  run <computation> [dataset]   run a computation over a dataset and collect every result
  node                          share this machine's cores with the cluster (headless)
  secret                        make a new join code, the secret of a new cluster
  join <code>                   make this computer part of the cluster with that join code
  nodes                         list the DeskGrid nodes that answer on the LAN
  doctor                        check the network and settings, and say what to fix
  peers add|remove|list         the nodes to use by address when the LAN does not show them
  help [command]                show help

Run "deskgrid help run" for the options of a command.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      keepHeapSmall();
      const { runCommand } = await import('./run-command.js');
      return runCommand(rest);
    }
    case 'node': {
      keepHeapSmall();
      const { nodeCommand } = await import('./node-command.js');
      return nodeCommand(rest);
    }
    case 'secret': {
      const { secretCommand } = await import('./secret-command.js');
      return secretCommand(rest);
    }
    case 'join': {
      const { joinCommand } = await import('./join-command.js');
      return joinCommand(rest);
    }
    case 'nodes': {
      const { nodesCommand } = await import('./nodes-command.js');
      return nodesCommand(rest);
    }
    case 'doctor': {
      const { doctorCommand } = await import('./doctor-command.js');
      return doctorCommand(rest);
    }
    case 'peers': {
      const { peersCommand } = await import('./peers-command.js');
      return peersCommand(rest);
    }
    case 'help':
    case '--help':
    case '-h':
    case undefined: {
      if (rest[0] === 'run') {
        const { RUN_USAGE } = await import('./run-command.js');
        process.stdout.write(`${RUN_USAGE}\n`);
      } else if (rest[0] === 'node') {
        const { NODE_USAGE } = await import('./node-command.js');
        process.stdout.write(`${NODE_USAGE}\n`);
      } else if (rest[0] === 'nodes') {
        const { NODES_USAGE } = await import('./nodes-command.js');
        process.stdout.write(`${NODES_USAGE}\n`);
      } else if (rest[0] === 'peers') {
        const { PEERS_USAGE } = await import('./peers-command.js');
        process.stdout.write(`${PEERS_USAGE}\n`);
      } else if (rest[0] === 'doctor') {
        const { DOCTOR_USAGE } = await import('./doctor-command.js');
        process.stdout.write(`${DOCTOR_USAGE}\n`);
      } else {
        process.stdout.write(`${USAGE}\n`);
      }
      return command === undefined ? EXIT_USAGE : 0;
    }
    case '--version':
    case '-v':
      process.stdout.write(`${readPackageVersion()}\n`);
      return 0;
    default:
      throw new DeskGridError('DG_ERR_USAGE', `unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const status = exitStatusOf(error);
    // User mistakes and failures are DeskGridErrors and get one line (a failure's ends with its
    // code, for scripts and searches); anything else is our bug, shown in full.
    if (error instanceof DeskGridError) {
      const code = status === EXIT_USAGE ? '' : ` (${error.code})`;
      process.stderr.write(`deskgrid: ${error.message}${code}\n`);
    } else {
      process.stderr.write(
        `deskgrid: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    process.exitCode = status;
  },
);
