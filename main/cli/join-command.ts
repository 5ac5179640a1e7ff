// `deskgrid join [CODE]`: checks a join code for typos and saves it in the settings, so that
// this node takes part in that cluster from its next start. Without CODE it asks on the
// terminal (not echoed): a code typed as an argument lands in the shell's history and, while
// the command runs, in the process list.

import { wantsHelp } from './options.js';
import { askOnTerminal } from './secret-input.js';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import { formatJoinCode, parseJoinCode } from '../../shared/join-code.js';
import { clusterId, defaultDataHome, loadSettings, saveSettings } from '../engine/entry/settings.js';

export const JOIN_USAGE = `usage: deskgrid join [CODE]

Saves the cluster's join code (made by "deskgrid secret" on any computer) so that this
computer takes part in that cluster. Case, spaces and dashes do not matter. Without CODE,
it asks for it on the terminal without showing it (better: it stays out of the shell's
history and of the process list).`;

export async function joinCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(`${JOIN_USAGE}\n`);
    return 0;
  }
  const typed = argv.length === 0 ? await askOnTerminal('join code (not shown): ') : argv.join('');
  if (typed === null || typed.trim() === '') {
    throw new DeskGridError(
      ErrorCode.Usage,
      `which join code? (make one with "deskgrid secret")\n${JOIN_USAGE}`,
    );
  }
  // Several words are one code typed with spaces ("K7QF 9XM2 ..." unquoted).
  const parsed = parseJoinCode(typed);
  if (!parsed.ok) throw new DeskGridError(ErrorCode.JoinCode, parsed.reason);

  const home = defaultDataHome();
  const id = clusterId(parsed.code);
  const previous = loadSettings(home).joinCode;
  saveSettings(home, { joinCode: formatJoinCode(parsed.code) });
  if (previous !== undefined) {
    const before = parseJoinCode(previous);
    const previousId = before.ok ? clusterId(before.code) : null;
    if (previousId !== id) {
      process.stderr.write(`this node leaves cluster ${previousId ?? '(an invalid saved code)'}\n`);
    }
  }
  process.stdout.write(`saved: this node joins cluster ${id}\n`);
  return 0;
}
