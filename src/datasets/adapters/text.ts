import fs from 'node:fs';
import readline from 'node:readline';
import { UserError } from '../../util/errors.js';

/** An error in an annotation file, named by file and 1-based line number. */
export function lineError(file: string, line: number, message: string): UserError {
  return new UserError(`${file}:${line}: ${message}`);
}

/** The first of several candidate locations that exists, or an error listing all of them. */
export function findFirst(candidates: string[], what: string): string {
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new UserError(`missing ${what}; looked in: ${candidates.join(', ')}`);
  return found;
}

export interface Line {
  text: string;
  number: number;
}

/** All non-empty lines of a moderately sized text file, with their line numbers. */
export function readLines(file: string): Line[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`missing annotation file: ${file}`);
    throw err;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const out: Line[] = [];
  const parts = text.split('\n');
  for (let i = 0; i < parts.length; i++) {
    const line = parts[i].endsWith('\r') ? parts[i].slice(0, -1) : parts[i];
    if (line.trim() !== '') out.push({ text: line, number: i + 1 });
  }
  return out;
}

/** Streams the non-empty lines of a file too large to hold as one string (AffectNet's CSV is ~400 MB). */
export async function forEachLine(file: string, visit: (line: Line) => void): Promise<void> {
  if (!fs.existsSync(file)) throw new UserError(`missing annotation file: ${file}`);
  const input = fs.createReadStream(file, { encoding: 'utf8' });
  const reader = readline.createInterface({ input, crlfDelay: Infinity });
  let number = 0;
  try {
    for await (let text of reader) {
      number++;
      if (number === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (text.trim() !== '') visit({ text, number });
    }
  } finally {
    reader.close();
    input.destroy();
  }
}

/** Splits one CSV record; quoted fields may hold the separator and doubled quotes, not line breaks. */
export function splitCsv(line: Line, file: string, separator = ','): string[] {
  const text = line.text;
  if (!text.includes('"')) return text.split(separator).map((s) => s.trim());
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field.trim() === '') {
      quoted = true;
      field = '';
    } else if (ch === separator) {
      fields.push(field.trim());
      field = '';
    } else field += ch;
  }
  if (quoted) throw lineError(file, line.number, 'unterminated quoted field (line breaks inside fields are not supported)');
  fields.push(field.trim());
  return fields;
}

/** Whitespace-separated tokens; runs of spaces and tabs count as one separator (CelebA, CUB). */
export function tokens(line: Line): string[] {
  return line.text.trim().split(/\s+/);
}

export function parseInteger(token: string | undefined, file: string, line: number, what: string): number {
  if (token === undefined || !/^[+-]?\d+$/.test(token)) throw lineError(file, line, `expected an integer ${what}, got "${token ?? ''}"`);
  return Number(token);
}

export function parseNumber(token: string | undefined, file: string, line: number, what: string): number {
  const value = token === undefined || token.trim() === '' ? NaN : Number(token);
  if (!Number.isFinite(value)) throw lineError(file, line, `expected a number ${what}, got "${token ?? ''}"`);
  return value;
}
