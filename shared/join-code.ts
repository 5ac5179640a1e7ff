// The cluster's secret, the "join code": 100 random bits written as 20 Crockford base32
// characters plus 2 check characters, grouped by 4 for reading aloud. Parsing forgives case,
// spacing and the usual misreadings, and catches typos before any connection is tried. A code
// made up by hand that is obviously easy to guess (few different characters, a long run or
// sequence, a short pattern repeated) is refused; a generated code is one of those with a
// probability below 1e-11.

/** Crockford's base32: digits and letters without I, L, O and U, which are easy to misread. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const DATA_LENGTH = 20;
const CHECK_LENGTH = 2;
export const JOIN_CODE_LENGTH = DATA_LENGTH + CHECK_LENGTH;
const GROUP = 4;

/*
 * Check characters, after ISO 7064's pure systems: they are chosen so that the whole 22-character
 * code, read as a base-32 number N, has N mod 1021 = 1. 1021 is prime and the largest below
 * 32^2, so the check fits in 2 characters. A substitution changes N by d*32^k with 0 < |d| < 32,
 * never a multiple of the prime; a transposition of characters j apart changes N by
 * d*32^k*(32^j - 1), and 32^j = 1 (mod 1021) only when j is a multiple of 68, longer than a
 * code. So every single substitution and every transposition, check characters included, is caught.
 */
const MODULUS = 1021;
const REMAINDER = 1;

const VALUES = new Map<string, number>(Array.from(ALPHABET, (symbol, value) => [symbol, value]));
/** Crockford's decoding of look-alikes (and U, which Crockford leaves out, read as V). */
const MISREADINGS = new Map<string, string>([
  ['O', '0'],
  ['I', '1'],
  ['L', '1'],
  ['U', 'V'],
]);
/** Grouping marks people type or that mail and word processors substitute for '-'. */
const SEPARATORS = /[\s\-\u2010-\u2015\u2212_.]/u;

export type ParsedJoinCode = { ok: true; code: string } | { ok: false; reason: string };

/** A new random join code, formatted with dashes. */
export function generateJoinCode(): string {
  // 256 is a multiple of 32, so keeping the low 5 bits of each random byte stays uniform.
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(DATA_LENGTH));
  const data = Array.from(bytes, (byte) => symbol(byte & 31)).join('');
  return formatJoinCode(data + checkCharacters(data));
}

/** Reads a join code as a person typed it; `code` is its canonical form: 22 characters, no dashes. */
export function parseJoinCode(text: string): ParsedJoinCode {
  let code = '';
  for (const character of text) {
    if (SEPARATORS.test(character)) continue;
    const upper = character.toUpperCase();
    const canonical = MISREADINGS.get(upper) ?? upper;
    if (!VALUES.has(canonical)) {
      return {
        ok: false,
        reason: `the join code contains ${JSON.stringify(character)}, which is not used in join codes`,
      };
    }
    code += canonical;
  }
  if (code.length === 0) return { ok: false, reason: 'the join code is empty' };
  if (code.length < JOIN_CODE_LENGTH) {
    return {
      ok: false,
      reason: `the join code is too short (${code.length} of ${JOIN_CODE_LENGTH} characters)`,
    };
  }
  if (code.length > JOIN_CODE_LENGTH) {
    return {
      ok: false,
      reason: `the join code is too long (${code.length} of ${JOIN_CODE_LENGTH} characters)`,
    };
  }
  if (remainder(code) !== REMAINDER || checkValue(code.slice(DATA_LENGTH)) >= MODULUS) {
    return {
      ok: false,
      reason: 'the join code has a typo: check it again (its check characters do not match)',
    };
  }
  const weakness = weaknessOf(code.slice(0, DATA_LENGTH));
  if (weakness !== null) {
    return {
      ok: false,
      reason: `the join code is too easy to guess (${weakness}): use one made by deskgrid secret or the app`,
    };
  }
  return { ok: true, code };
}

/** Fewer different characters than this in the 20 data characters is not a random code. */
const MIN_DISTINCT_SYMBOLS = 6;
/** A run this long of one character, or of consecutive ones up or down, is not random either. */
const MAX_SEQUENCE = 10;
/** A pattern this short or shorter repeated over the whole code. */
const MAX_PATTERN = 4;

/** Why 20 data characters are obviously not random, or null. Each test fails a random code with p < 1e-11. */
function weaknessOf(data: string): string | null {
  const values = Array.from(data, value);
  if (new Set(values).size < MIN_DISTINCT_SYMBOLS) return 'it uses very few different characters';
  let length = 1;
  for (let at = 1; at < values.length; at += 1) {
    const step = (values[at] ?? 0) - (values[at - 1] ?? 0);
    const previous = at >= 2 ? (values[at - 1] ?? 0) - (values[at - 2] ?? 0) : null;
    length =
      Math.abs(step) <= 1 && (previous === null || previous === step)
        ? length + 1
        : Math.abs(step) <= 1
          ? 2
          : 1;
    if (length >= MAX_SEQUENCE) return 'it has a long run or sequence of characters';
  }
  for (let period = 1; period <= MAX_PATTERN; period += 1) {
    if (values.every((symbolValue, at) => at < period || symbolValue === values[at - period]))
      return 'it repeats a short pattern';
  }
  return null;
}

/**
 * Groups a code by 4 with dashes ("K7QF-9XM2-D4RT-W8HN-3CZA-P7"). Takes any spelling of it;
 * characters that are not in the alphabet are kept, so showing a bad code does not hide the fault.
 */
export function formatJoinCode(code: string): string {
  let plain = '';
  for (const character of code) {
    if (SEPARATORS.test(character)) continue;
    const upper = character.toUpperCase();
    plain += MISREADINGS.get(upper) ?? upper;
  }
  const groups: string[] = [];
  const characters = Array.from(plain);
  for (let start = 0; start < characters.length; start += GROUP) {
    groups.push(characters.slice(start, start + GROUP).join(''));
  }
  return groups.join('-');
}

function checkCharacters(data: string): string {
  // N = data * 32^2 + check, and 32^2 = 1024 = 3 (mod 1021).
  const check = mod(REMAINDER - remainder(data) * (1024 % MODULUS), MODULUS);
  return symbol(Math.floor(check / 32)) + symbol(check % 32);
}

/** The code read as a base-32 number, mod 1021 (Horner's rule keeps the numbers small). */
function remainder(code: string): number {
  let total = 0;
  for (const character of code) total = (total * 32 + value(character)) % MODULUS;
  return total;
}

function checkValue(check: string): number {
  let total = 0;
  for (const character of check) total = total * 32 + value(character);
  return total;
}

function value(character: string): number {
  const found = VALUES.get(character);
  if (found === undefined) throw new Error(`not a join code character: ${character}`);
  return found;
}

function symbol(index: number): string {
  const found = ALPHABET[index];
  if (found === undefined) throw new Error(`no join code symbol for ${index}`);
  return found;
}

function mod(a: number, m: number): number {
  return ((a % m) + m) % m;
}
