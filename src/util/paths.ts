import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the installed package (the folder holding package.json, datasets.yaml, benchmarks/). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Where datasets, indexes and image caches live; `MTL_BENCH_HOME` overrides the default. */
export function mtlBenchHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.MTL_BENCH_HOME?.trim();
  if (fromEnv) return path.resolve(fromEnv);
  return path.join(os.homedir(), '.cache', 'mtl-bench');
}

/** A path as shown to the user: relative to the working folder when inside it, else as given. */
export function displayPath(file: string, cwd: string = process.cwd()): string {
  const relative = path.relative(cwd, file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}
