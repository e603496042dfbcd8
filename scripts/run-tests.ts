/**
 * `npm test` (after tsc): runs the compiled test files with Node's test runner, one file at a time.
 *
 *   node dist/scripts/run-tests.js                      every test/**\/*.test.ts, compiled
 *   node dist/scripts/run-tests.js dist/test/a.test.js  only the files named
 *
 * The files are listed here because Node cannot be given the folder: Node 22 and later fail on a
 * folder argument (nodejs/node#50219), and Node 20 runs every .js file in it, so the helper
 * modules next to the tests would count as test files that pass. Node 20's --test does not expand
 * globs either. The suite is what test/ holds as sources, so a compiled file left behind by a
 * renamed or deleted test never runs, and a suite that finds no test fails instead of passing.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TEST_FILE = /\.test\.ts$/;

/** The repository: this file runs as dist/scripts/run-tests.js. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Every *.test.ts under `dir`, as paths relative to the repository, in a stable order. */
function testSources(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...testSources(full));
    else if (entry.isFile() && TEST_FILE.test(entry.name)) found.push(path.relative(root, full));
  }
  return found.sort();
}

function compiledTestFiles(): string[] {
  const sources = testSources(path.join(root, 'test'));
  if (sources.length === 0) throw new Error(`no *.test.ts file under ${path.join(root, 'test')}`);
  return sources.map((source) => {
    const compiled = path.join(root, 'dist', source.replace(TEST_FILE, '.test.js'));
    if (!fs.existsSync(compiled))
      throw new Error(`${source} has no compiled ${path.relative(root, compiled)}; run tsc -p tsconfig.json first`);
    return compiled;
  });
}

function namedTestFiles(args: string[]): string[] {
  return args.map((file) => {
    if (!file.endsWith('.test.js')) throw new Error(`${file}: expected a compiled test file (*.test.js under dist/test)`);
    if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
    return file;
  });
}

function main(args: string[]): number {
  let files: string[];
  try {
    files = args.length > 0 ? namedTestFiles(args) : compiledTestFiles();
  } catch (err) {
    process.stderr.write(`run-tests: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  // One file at a time: many files train networks or start wasm worker pools, and side by side
  // they would compete for the same cores.
  const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
  if (result.error) {
    process.stderr.write(`run-tests: could not start ${process.execPath}: ${result.error.message}\n`);
    return 1;
  }
  return result.status ?? 1;
}

process.exitCode = main(process.argv.slice(2));
