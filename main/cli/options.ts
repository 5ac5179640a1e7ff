// Option parsing shared by the commands: numbers with a plain message when they are wrong.

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
