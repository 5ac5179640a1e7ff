#!/usr/bin/env node
// The `deskgrid` command. Each subcommand lives in its own module, loaded only when used so
// that `deskgrid run` starts fast.

import { DeskGridError } from '../../shared/errors.js';
import { readVersion } from './version.js';

const USAGE = `usage: deskgrid <command> [options]

commands:
  run <computation> [dataset]   run a computation over a dataset and collect every result
  help [command]                show help

Run "deskgrid help run" for the options of a command.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      const { runCommand } = await import('./run-command.js');
      return runCommand(rest);
    }
    case 'help':
    case '--help':
    case '-h':
    case undefined: {
      if (rest[0] === 'run') {
        const { RUN_USAGE } = await import('./run-command.js');
        process.stdout.write(`${RUN_USAGE}\n`);
      } else {
        process.stdout.write(`${USAGE}\n`);
      }
      return command === undefined ? 2 : 0;
    }
    case '--version':
    case '-v':
      process.stdout.write(`${readVersion()}\n`);
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
    // User mistakes are DeskGridErrors and get one line; anything else is our bug, shown in full.
    if (error instanceof DeskGridError) process.stderr.write(`deskgrid: ${error.message}\n`);
    else
      process.stderr.write(
        `deskgrid: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    process.exitCode = 2;
  },
);
