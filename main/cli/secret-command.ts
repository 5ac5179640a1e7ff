// `deskgrid secret`: makes a new join code for a new cluster. The code is the last line on
// stdout, so scripts can take it with `tail -n 1`; the explanation goes to stderr.

import { wantsHelp } from './options.js';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import { generateJoinCode } from '../../shared/join-code.js';

export const SECRET_USAGE = `usage: deskgrid secret

Prints a new join code: the secret shared by the computers of one cluster.
Give it to each of them, this one included, with "deskgrid join CODE".`;

export function secretCommand(argv: string[]): number {
  if (wantsHelp(argv)) {
    process.stdout.write(`${SECRET_USAGE}\n`);
    return 0;
  }
  if (argv.length > 0) {
    throw new DeskGridError(ErrorCode.Usage, `deskgrid secret takes no arguments\n${SECRET_USAGE}`);
  }
  process.stderr.write(
    'a new join code: run "deskgrid join CODE" with it on every computer of the cluster, this one included\n',
  );
  process.stdout.write(`${generateJoinCode()}\n`);
  return 0;
}
