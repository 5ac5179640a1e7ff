// `deskgrid doctor`: prints the engine's diagnosis (main/engine/doctor) of this computer's
// network and settings, one finding a line with what to do. Exit 0 when nothing is wrong, 1 when
// something is.

import { parseCommandArgs, wantsHelp } from './options.js';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
// Light entries rather than the engine's index: a quick command need not load the Cluster.
import { DEFAULT_DOCTOR_WAIT_S, diagnose } from '../engine/entry/doctor.js';
import { defaultDataHome } from '../engine/entry/settings.js';
import { waitOption } from './nodes-command.js';
import { SECRET_OPTIONS, SECRET_USAGE_LINES, secretFromOptions } from './secret-input.js';

export const DOCTOR_USAGE = `usage: deskgrid doctor [options]

Checks this computer's network and settings for DeskGrid and says what to fix.

options:
${SECRET_USAGE_LINES}
  --wait S        seconds to listen for nodes on the LAN (default 3)`;

export async function doctorCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(`${DOCTOR_USAGE}\n`);
    return 0;
  }
  const { values, positionals } = parseCommandArgs(
    argv,
    { ...SECRET_OPTIONS, wait: { type: 'string' } },
    DOCTOR_USAGE,
  );
  if (positionals.length > 0) {
    throw new DeskGridError(
      ErrorCode.Usage,
      `unexpected argument "${positionals.join(' ')}"\n${DOCTOR_USAGE}`,
    );
  }
  const waitS = waitOption(values.wait, DEFAULT_DOCTOR_WAIT_S);
  const findings = await diagnose({
    secret: secretFromOptions(values, 'doctor'),
    ...(values['secret-file'] === undefined ? {} : { secretSource: '--secret-file' }),
    waitS,
    home: defaultDataHome(),
    onListen: () => process.stderr.write(`listening on the LAN for ${waitS} s...\n`),
  });

  const problems = findings.filter((finding) => !finding.ok).length;
  const lines: string[] = [];
  for (const finding of findings) {
    lines.push(`${finding.ok ? 'ok      ' : 'PROBLEM '} ${finding.text}`);
    if (finding.advice !== undefined) lines.push(`         ${finding.ok ? '' : '-> '}${finding.advice}`);
  }
  lines.push(problems === 0 ? 'no problems found' : `${problems} problem${problems === 1 ? '' : 's'} found`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return problems === 0 ? 0 : 1;
}
