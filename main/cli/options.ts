// Option parsing shared by the commands: numbers with a plain message when they are wrong.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';

export function numberOption(
  name: string,
  text: string | undefined,
  rule: { min: number; integer: boolean; inclusive?: boolean },
): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  const valid =
    text.trim() !== '' &&
    Number.isFinite(value) &&
    (rule.inclusive ? value >= rule.min : value > rule.min) &&
    (!rule.integer || Number.isInteger(value));
  if (!valid) {
    const kind = rule.integer ? 'a whole number' : 'a number';
    const bound = rule.inclusive ? `${rule.min} or more` : `above ${rule.min}`;
    throw new DeskGridError(ErrorCode.Usage, `${name} needs ${kind} ${bound}, not "${text}"`);
  }
  return value;
}

/** Whether the arguments ask for the command's help. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** Strict parseArgs for a command: a mistake becomes a usage error followed by the command's usage. */
export function parseCommandArgs<const O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O,
  usage: string,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: true }>> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new DeskGridError(ErrorCode.Usage, `${(error as Error).message}\n${usage}`);
  }
}
