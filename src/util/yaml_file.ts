import fs from 'node:fs';
import yaml from 'js-yaml';
import { UserError, errorMessage } from './errors.js';

/** A key path as users read it in error messages: `datasets[2].tasks.group`; '' for the top level. */
export function formatKeyPath(parts: readonly PropertyKey[]): string {
  return parts.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

/**
 * Reads and parses one YAML file of the user's (or the given text, named as that file); a missing
 * file or a syntax error is one line naming the file and, for syntax, the line and column.
 */
export function loadYamlFile(file: string, what: string, text?: string): unknown {
  try {
    return yaml.load(text ?? fs.readFileSync(file, 'utf8'), { filename: file });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`${file}: ${what} not found`);
    if (err instanceof yaml.YAMLException && err.mark) {
      throw new UserError(`${file}:${err.mark.line + 1}:${err.mark.column + 1}: not valid YAML: ${err.reason}`);
    }
    throw new UserError(`${file}: not valid YAML: ${errorMessage(err).split('\n')[0]}`);
  }
}
