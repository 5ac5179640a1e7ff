// Join codes: generation, formatting, forgiving parsing, and the check characters catching every
// single substitution and every transposition, tried exhaustively over some codes.

import { describe, expect, it } from 'vitest';
import { formatJoinCode, generateJoinCode, JOIN_CODE_LENGTH, parseJoinCode } from '../../shared/join-code.js';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TYPO = 'the join code has a typo: check it again (its check characters do not match)';
const FORMAT = /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){4}-[0-9A-HJKMNP-TV-Z]{2}$/;

/** The valid code starting with these 20 data characters, found by trying every check pair. */
function complete(data: string): string {
  for (const first of ALPHABET) {
    for (const second of ALPHABET) {
      const result = parseJoinCode(data + first + second);
      if (result.ok) return result.code;
    }
  }
  throw new Error(`no check characters for ${data}`);
}

function canonical(text: string): string {
  const result = parseJoinCode(text);
  if (!result.ok) throw new Error(`${text}: ${result.reason}`);
  return result.code;
}

function reason(text: string): string {
  const result = parseJoinCode(text);
  return result.ok ? `accepted as ${result.code}` : result.reason;
}

function replaceAt(code: string, index: number, character: string): string {
  return code.slice(0, index) + character + code.slice(index + 1);
}

/** The 20 data characters with check characters that pass the typo check (the code may still be refused). */
function withCheck(data: string): string {
  for (const first of ALPHABET) {
    for (const second of ALPHABET) {
      if (reason(data + first + second) !== TYPO) return data + first + second;
    }
  }
  throw new Error(`no check characters for ${data}`);
}

const SAMPLES = [
  complete('ZZZZZZZZ0000000012AB'),
  complete('00000000ZZZZZZZZ9XYW'),
  complete('01234567ZYXWVTSR89AB'),
  complete('MNPQRSTV0WXYZ1V1V0Z9'),
  canonical(generateJoinCode()),
  canonical(generateJoinCode()),
];

describe('generateJoinCode', () => {
  it('makes codes of 22 characters grouped by 4, each valid and new', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i += 1) {
      const code = generateJoinCode();
      expect(code).toMatch(FORMAT);
      expect(canonical(code)).toBe(code.replaceAll('-', ''));
      seen.add(code);
    }
    expect(seen.size).toBe(500);
  });

  it('uses every symbol in every data position (the random bits are spread over the alphabet)', () => {
    const perPosition = Array.from({ length: 20 }, () => new Set<string>());
    for (let i = 0; i < 2000; i += 1) {
      const code = canonical(generateJoinCode());
      for (let position = 0; position < 20; position += 1) perPosition[position]?.add(code.charAt(position));
    }
    for (const symbols of perPosition) expect(symbols.size).toBe(32);
  });
});

describe('formatJoinCode and parseJoinCode', () => {
  it('round trips', () => {
    for (const code of SAMPLES) {
      const formatted = formatJoinCode(code);
      expect(formatted).toMatch(FORMAT);
      expect(canonical(formatted)).toBe(code);
      expect(formatJoinCode(formatted)).toBe(formatted);
    }
  });

  it('ignores case, spaces and dashes of any kind', () => {
    const code = SAMPLES[2] ?? '';
    const formatted = formatJoinCode(code);
    expect(canonical(formatted.toLowerCase())).toBe(code);
    expect(canonical(code)).toBe(code);
    expect(canonical(formatted.replaceAll('-', ' '))).toBe(code);
    expect(canonical(`  ${formatted.replaceAll('-', ' - ')}\n`)).toBe(code);
    expect(canonical(formatted.replaceAll('-', '\u2013'))).toBe(code);
    expect(canonical(code.split('').join(' '))).toBe(code);
  });

  it('reads O as 0, I and L as 1, and U as V', () => {
    const code = SAMPLES[3] ?? '';
    expect(code).toMatch(/0/);
    expect(code).toMatch(/1/);
    expect(code).toMatch(/V/);
    const misread = code.replaceAll('0', 'O').replace('1', 'I').replace('1', 'l').replaceAll('V', 'u');
    expect(misread).not.toBe(code);
    expect(canonical(misread)).toBe(code);
    expect(formatJoinCode(misread)).toBe(formatJoinCode(code));
  });

  it('catches every single substitution, in data and check characters alike', () => {
    let tried = 0;
    for (const code of SAMPLES) {
      for (let position = 0; position < JOIN_CODE_LENGTH; position += 1) {
        for (const symbol of ALPHABET) {
          if (symbol === code.charAt(position)) continue;
          const typo = replaceAt(code, position, symbol);
          expect(reason(typo), `${code} -> ${typo}`).toBe(TYPO);
          tried += 1;
        }
      }
    }
    expect(tried).toBe(SAMPLES.length * JOIN_CODE_LENGTH * 31);
  });

  it('catches every adjacent transposition, and transpositions farther apart too', () => {
    let adjacent = 0;
    for (const code of SAMPLES) {
      for (let i = 0; i < JOIN_CODE_LENGTH; i += 1) {
        for (let j = i + 1; j < JOIN_CODE_LENGTH; j += 1) {
          const a = code.charAt(i);
          const b = code.charAt(j);
          if (a === b) continue;
          const swapped = replaceAt(replaceAt(code, i, b), j, a);
          expect(reason(swapped), `${code}: swap ${i} and ${j}`).toBe(TYPO);
          if (j === i + 1) adjacent += 1;
        }
      }
    }
    expect(adjacent).toBeGreaterThan(SAMPLES.length * 10);
  });

  it('catches every adjacent transposition in many random codes', () => {
    for (let n = 0; n < 300; n += 1) {
      const code = canonical(generateJoinCode());
      for (let i = 0; i + 1 < JOIN_CODE_LENGTH; i += 1) {
        const a = code.charAt(i);
        const b = code.charAt(i + 1);
        if (a === b) continue;
        const swapped = replaceAt(replaceAt(code, i, b), i + 1, a);
        if (reason(swapped) !== TYPO) throw new Error(`${code}: swap at ${i} not caught`);
      }
    }
  });

  it('explains each mistake in plain words', () => {
    const formatted = formatJoinCode(SAMPLES[5] ?? '');
    expect(reason(formatted.slice(0, -5))).toBe('the join code is too short (18 of 22 characters)');
    expect(reason(`${formatted}X`)).toBe('the join code is too long (23 of 22 characters)');
    expect(reason('')).toBe('the join code is empty');
    expect(reason(' - - ')).toBe('the join code is empty');
    expect(reason(`${formatted.slice(0, 6)}#${formatted.slice(7)}`)).toBe(
      'the join code contains "#", which is not used in join codes',
    );
    expect(reason(`${formatted}\u00e9`)).toBe('the join code contains "é", which is not used in join codes');
    expect(reason(`${formatted.slice(0, 3)}"`)).toBe(
      'the join code contains "\\"", which is not used in join codes',
    );
    expect(reason(replaceAt(formatted, 0, formatted.startsWith('A') ? 'B' : 'A'))).toBe(TYPO);
  });
});

describe('join codes made up by hand', () => {
  const WEAK = /^the join code is too easy to guess \(.+\): use one made by deskgrid secret or the app$/;

  it('refuses obviously guessable codes with a plain reason', () => {
    expect(reason('0000-0000-0000-0000-0000-01')).toMatch(WEAK);
    expect(reason('0000-0000-0000-0000-0000-01')).toContain('very few different characters');
    for (const data of [
      'ZZZZZZZZZZZZZZZZZZZZ',
      '0123456789ABCDEFGHJK',
      'ZYXWVTSRQPNMKJHGFEDC',
      '1234123412341234123A'.slice(0, 19) + '4',
      'K7QFK7QFK7QFK7QFK7QF',
      'AAAAAAAAAAK7QF9XM2D4',
    ]) {
      expect(reason(withCheck(data)), data).toMatch(WEAK);
    }
  });

  it('accepts every one of many generated codes', () => {
    for (let i = 0; i < 20_000; i++) {
      const code = generateJoinCode();
      expect(reason(code), code).toMatch(/^accepted as /);
    }
  });
});
