import { Chalk, type ChalkInstance } from 'chalk';

/**
 * Colour only for a person at a terminal: off when NO_COLOR is set (https://no-color.org) or
 * when stdout is piped or redirected, so logs and CI output stay plain text.
 */
export function colorEnabled(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY);
}

export const paint: ChalkInstance = new Chalk({ level: colorEnabled() ? 1 : 0 });
export const paintErr: ChalkInstance = new Chalk({ level: colorEnabled(process.stderr) ? 1 : 0 });
