import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { configHash } from '../../src/runs/identity.js';
import { CELL_FILES } from '../../src/runs/store.js';
import { packageRoot } from '../../src/util/paths.js';
import { tempDir } from './doubles.js';

/**
 * Issue 12's process-level probes, with real `mtl-bench run` processes on the offline OpenMoji
 * data (8×8 images, the wasm backend): two runs at once on one --out, Ctrl-C during training, and
 * an --out that cannot be written. Every child process has a timeout.
 */

const bin = path.join(packageRoot, 'bin', 'mtl-bench.js');
const dir = tempDir('faults');
// One data home for the file: the first test indexes and caches OpenMoji, the others reuse it.
const home = path.join(dir, 'home');
const CHILD_TIMEOUT_MS = 180_000;

function study(name: string, train: string, settings = '[mtl]', seeds = '[1, 2]'): string {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(
    file,
    `name: ${name}
description: issue 12 fault probes
dataset: openmoji
tasks:
  group: { primary: accuracy }
  tags: { primary: label_accuracy }
input: { size: 8 }
backbone: convnet-s
train: ${train}
regimes:
  full: full
settings: ${settings}
seeds: ${seeds}
`,
  );
  return file;
}

const env = () => ({ ...process.env, NO_COLOR: '1', MTL_BENCH_BACKEND: 'wasm', MTL_BENCH_HOME: home });

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** JSON events of --json (stdout) and of the trainer's jsonl progress (stderr), in arrival order. */
  events: () => Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  waitFor: (match: (text: string) => boolean, what: string) => Promise<void>;
}

function start(args: string[], options: { uid?: number; gid?: number; extraEnv?: Record<string, string> } = {}): Running {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: dir,
    env: { ...env(), ...options.extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: CHILD_TIMEOUT_MS,
    uid: options.uid,
    gid: options.gid,
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  const changed = () => listeners.forEach((l) => l());
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    changed();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    changed();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const events = () =>
    `${stdout}\n${stderr}`
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const waitFor = (match: (text: string) => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (match(`${stdout}\n${stderr}`)) {
          listeners.delete(check);
          resolve();
        }
      };
      listeners.add(check);
      void exited.then(() => reject(new Error(`the process ended before ${what}:\n${stderr}`)));
      check();
    });
  return { child, stdout: () => stdout, stderr: () => stderr, events, exited, waitFor };
}

function runToEnd(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd: dir, env: env(), encoding: 'utf8', timeout: CHILD_TIMEOUT_MS });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function readJson(file: string) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** The distinct values of the leaderboard's last column: the seeds each row averages. */
function seedsInLeaderboard(file: string): string[] {
  const rows = fs.readFileSync(file, 'utf8').trim().split('\n').slice(1);
  return [...new Set(rows.map((row) => row.split(',').at(-1) ?? ''))];
}

/** Every cell folder under a benchmark folder holds one config, its hash, and metrics of that hash. */
function assertConsistent(benchDir: string): { id: string; epochs: number }[] {
  return fs
    .readdirSync(benchDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => {
      const cellDir = path.join(benchDir, e.name);
      const config = readJson(path.join(cellDir, CELL_FILES.config));
      const hash = fs.readFileSync(path.join(cellDir, CELL_FILES.hash), 'utf8').trim();
      assert.equal(configHash(config), hash, `${e.name}: config.sha256 is the hash of config.json`);
      assert.equal(readJson(path.join(cellDir, CELL_FILES.metrics)).configHash, hash, `${e.name}: metrics.json belongs to config.json`);
      return { id: e.name, epochs: config.train.epochs as number };
    });
}

test(
  'two runs at once on one --out with different epochs: one trains, the other refuses; the folder is consistent and the report shows it',
  { timeout: 600_000 },
  async () => {
    const file = study('together', '{ epochs: 2, batch: 128, lr: 0.003 }');
    const quick = start(['run', file, '--epochs', '1', '--json']);
    const full = start(['run', file, '--json']);
    const [a, b] = await Promise.all([quick.exited, full.exited]);
    const [winner, loser] = a.code === 0 ? [quick, full] : [full, quick];
    assert.deepEqual([a.code, b.code].sort(), [0, 1], `one succeeds, one is refused:\n${quick.stderr()}\n---\n${full.stderr()}`);
    assert.match(
      loser.stderr(),
      /mtl-bench: error: 2 cells refused: another run is using them with a different configuration \(see above\); nothing was overwritten/,
    );
    const notice = loser.events().find((e) => e.event === 'notice')!;
    assert.match(
      String(notice.message),
      new RegExp(
        `together: 2 cells refused: another run \\(process ${winner.child.pid}, started .*\\) is using them ` +
          `with a different configuration \\(full\\.mtl\\.seed1 and 1 more: config [0-9a-f]{12} there, [0-9a-f]{12} here\\)`,
      ),
    );
    assert.equal(loser.events().filter((e) => e.event === 'cell-start').length, 0, 'the refused run trains nothing');
    assert.equal(winner.events().filter((e) => e.event === 'cell-done').length, 2);

    const benchDir = path.join(dir, 'runs', 'together');
    const cells = assertConsistent(benchDir);
    const winnerEpochs = winner === quick ? 1 : 2;
    assert.deepEqual(cells, [
      { id: 'full.mtl.seed1', epochs: winnerEpochs },
      { id: 'full.mtl.seed2', epochs: winnerEpochs },
    ]);
    const report = runToEnd(['report', benchDir, '--json']);
    assert.equal(report.code, 0, report.stderr);
    assert.deepEqual(seedsInLeaderboard(path.join(benchDir, 'leaderboard.csv')), ['1 2'], 'the report holds both cells');
    assert.deepEqual(
      fs.readdirSync(path.join(benchDir, '.claims')).filter((n) => n.endsWith('.json')),
      [],
      'both claims are released',
    );

    // Later, alone, the refused configuration is a legitimately changed config: it reruns and says so.
    const again = runToEnd(['run', file, '--json', ...(winner === quick ? [] : ['--epochs', '1'])]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /full\.mtl\.seed1: its folder held the results of an earlier, different configuration; they are replaced/);
    assert.deepEqual(
      assertConsistent(benchDir).map((c) => c.epochs),
      [3 - winnerEpochs, 3 - winnerEpochs],
    );
  },
);

test('two identical runs at once share the cells: each cell is trained exactly once', { timeout: 600_000 }, async () => {
  const file = study('twins', '{ epochs: 1, batch: 128, lr: 0.003 }');
  // Its own --out: under runs/ an earlier test's benchmark holds the same cells, which would be reused.
  const first = start(['run', file, '--json', '--out', 'twins-runs']);
  const second = start(['run', file, '--json', '--out', 'twins-runs']);
  const ends = await Promise.all([first.exited, second.exited]);
  assert.deepEqual(
    ends.map((e) => e.code),
    [0, 0],
    `${first.stderr()}\n---\n${second.stderr()}`,
  );
  const trained = [...first.events(), ...second.events()].filter((e) => e.event === 'cell-done').map((e) => e.cell);
  assert.deepEqual(trained.sort(), ['full.mtl.seed1', 'full.mtl.seed2'], 'no cell trained twice');
  assertConsistent(path.join(dir, 'twins-runs', 'twins'));
});

test(
  'Ctrl-C stops within a training step: partial epoch checkpointed, reports written, exit 130; ' +
    'a second Ctrl-C ends at once; the resumed results equal an uninterrupted run',
  { timeout: 600_000 },
  async () => {
    const file = study('interrupt', '{ epochs: 2, batch: 16, lr: 0.003 }');
    const reference = runToEnd(['run', file, '--jobs', '1', '--out', 'reference']);
    assert.equal(reference.code, 0, reference.stderr);

    // First Ctrl-C a moment into the second epoch of the second cell: an epoch has about 175 steps
    // of some 15 ms here, so the signal lands between two of them.
    const first = start(['run', file, '--jobs', '1', '--out', 'interrupted', '--json']);
    await first.waitFor(() => first.events().filter((e) => e.event === 'epoch').length >= 3, 'the first epoch of the second cell');
    await new Promise((r) => setTimeout(r, 300));
    const signalledAt = Date.now();
    first.child.kill('SIGINT');
    const ended = await first.exited;
    assert.equal(ended.code, 130, first.stderr());
    assert.ok(ended.at - signalledAt < 30_000, `ended ${ended.at - signalledAt} ms after the signal`);
    const stopped = first.events().find((e) => e.event === 'cell-interrupted')!;
    assert.equal(stopped.cell, 'full.mtl.seed2');
    const checkpoint = path.join(dir, 'interrupted', 'interrupt', 'full.mtl.seed2', 'checkpoint.bin');
    assert.match(
      String(stopped.note),
      new RegExp(
        `^mtl: stopped in epoch 2 after step (\\d+) of (\\d+); ${checkpoint.replace(/[.+]/g, '\\$&')} holds this partial epoch, ` +
          `and the next run continues at step \\d+$`,
      ),
    );
    assert.match(first.stderr(), /stopping after the current training step \(Ctrl-C again to quit at once\)/);
    assert.match(first.stderr(), /mtl-bench: error: interrupted; run the same command again to finish the missing cells/);
    assert.deepEqual(
      seedsInLeaderboard(path.join(dir, 'interrupted', 'interrupt', 'leaderboard.csv')),
      ['1'],
      'the report holds the finished cell',
    );

    // Resume, then Ctrl-C twice: the second one ends the process at once, whatever it was doing.
    const second = start(['run', file, '--jobs', '1', '--out', 'interrupted', '--json']);
    await second.waitFor((text) => /resuming from .*checkpoint\.bin in epoch 2 at step \d+/.test(text), 'the resume');
    second.child.kill('SIGINT');
    await second.waitFor((text) => text.includes('stopping after the current training step'), 'the first signal to be handled');
    const secondSignalAt = Date.now();
    second.child.kill('SIGINT');
    const killed = await second.exited;
    assert.ok(killed.signal === 'SIGINT' || killed.code === 130, `ended by the signal (${killed.signal}, ${killed.code})`);
    assert.ok(killed.at - secondSignalAt < 2_000, `ended ${killed.at - secondSignalAt} ms after the second signal`);

    // Nothing written was damaged: the next run finishes, with exactly the numbers of the uninterrupted run.
    const last = runToEnd(['run', file, '--jobs', '1', '--out', 'interrupted']);
    assert.equal(last.code, 0, last.stderr);
    for (const cell of ['full.mtl.seed1', 'full.mtl.seed2']) {
      const resumed = readJson(path.join(dir, 'interrupted', 'interrupt', cell, CELL_FILES.metrics));
      const uninterrupted = readJson(path.join(dir, 'reference', 'interrupt', cell, CELL_FILES.metrics));
      assert.deepEqual(resumed.test, uninterrupted.test, cell);
      assert.deepEqual(resumed.val, uninterrupted.val, cell);
    }
  },
);

/** The processes whose parent is `pid` (Linux: read from /proc). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name in field 2 may hold spaces: the fields after it start after the last ')'.
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test(
  '--jobs 2 trains two cells at once in worker processes; Ctrl-C stops both within a step; the resumed results ' +
    'equal a one-job run; killing the run ends its workers',
  { timeout: 600_000, skip: process.platform !== 'linux' && 'reads /proc' },
  async () => {
    const file = study('parallel', '{ epochs: 2, batch: 16, lr: 0.003 }');
    const reference = runToEnd(['run', file, '--jobs', '1', '--out', 'one-job']);
    assert.equal(reference.code, 0, reference.stderr);

    const first = start(['run', file, '--jobs', '2', '--out', 'two-jobs', '--json']);
    const epochsOf = (run: Running, label: string) => run.events().filter((e) => e.event === 'epoch' && e.label === label).length;
    await first.waitFor(
      () => epochsOf(first, '[full.mtl.seed1]') >= 1 && epochsOf(first, '[full.mtl.seed2]') >= 1,
      'an epoch of each cell',
    );
    assert.equal(childrenOf(first.child.pid!).length, 2, 'two worker processes');
    await new Promise((r) => setTimeout(r, 300));
    first.child.kill('SIGINT');
    const ended = await first.exited;
    assert.equal(ended.code, 130, first.stderr());
    const stopped = first.events().filter((e) => e.event === 'cell-interrupted');
    assert.deepEqual(stopped.map((e) => e.cell).sort(), ['full.mtl.seed1', 'full.mtl.seed2'], 'both cells in flight stop');
    for (const e of stopped) assert.match(String(e.note), /^mtl: stopped in epoch 2 after step \d+ of \d+; .* holds this partial epoch/);

    // Resumed with two jobs: exactly the numbers of the one-job run.
    const resumed = runToEnd(['run', file, '--jobs', '2', '--out', 'two-jobs']);
    assert.equal(resumed.code, 0, resumed.stderr);
    for (const cell of ['full.mtl.seed1', 'full.mtl.seed2']) {
      const parallel = readJson(path.join(dir, 'two-jobs', 'parallel', cell, CELL_FILES.metrics));
      const sequential = readJson(path.join(dir, 'one-job', 'parallel', cell, CELL_FILES.metrics));
      assert.deepEqual(parallel.test, sequential.test, cell);
      assert.deepEqual(parallel.val, sequential.val, cell);
      assert.equal(parallel.configHash, sequential.configHash);
    }

    // A run killed outright (kill -9) cannot tell its workers: they notice the closed channel and exit.
    const killed = start(['run', file, '--jobs', '2', '--out', 'killed', '--json']);
    await killed.waitFor(() => killed.events().filter((e) => e.event === 'cell-start').length === 2, 'both cells to start');
    const workers = childrenOf(killed.child.pid!);
    assert.equal(workers.length, 2);
    killed.child.kill('SIGKILL');
    await killed.exited;
    const deadline = Date.now() + 20_000;
    while (workers.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(workers.filter(alive), [], 'no worker outlives its run');
  },
);

test(
  'a worker process killed in the middle of a cell fails only that cell: a new worker takes the next cell, and a resumed run ' +
    'trains just the failed one',
  { timeout: 600_000, skip: process.platform !== 'linux' && 'reads /proc' },
  async () => {
    const file = study('crash', '{ epochs: 2, batch: 16, lr: 0.003 }', '[mtl]', '[1, 2, 3]');
    const run = start(['run', file, '--jobs', '2', '--out', 'crash', '--json']);
    await run.waitFor(() => run.events().filter((e) => e.event === 'epoch').length >= 1, 'a first epoch');
    const workers = childrenOf(run.child.pid!);
    assert.equal(workers.length, 2, 'two worker processes');
    process.kill(workers[0]!, 'SIGKILL');
    const ended = await run.exited;
    const outcomes = run.events().filter((e) => e.event === 'cell-done' || e.event === 'cell-failed');
    const failed = outcomes.filter((e) => e.event === 'cell-failed');
    assert.equal(failed.length, 1, run.stderr());
    assert.match(String(failed[0]!.error), /^the worker process training full\.mtl\.seed\d stopped \(signal SIGKILL\)$/);
    assert.deepEqual(
      outcomes.map((e) => e.cell).sort(),
      ['full.mtl.seed1', 'full.mtl.seed2', 'full.mtl.seed3'],
      'every cell ends, the failed one included',
    );
    // The run goes on after the failed cell, as for any failing cell, and then fails naming it.
    const failedCell = String(failed[0]!.cell);
    assert.equal(ended.code, 1);
    assert.match(
      run.stderr(),
      new RegExp(`1 cell failed \\(crash/${failedCell.replaceAll('.', '\\.')}\\); each folder holds error\\.json`),
    );
    assert.equal(fs.existsSync(path.join(dir, 'crash', 'crash', failedCell, CELL_FILES.metrics)), false);
    assert.equal(fs.existsSync(path.join(dir, 'crash', 'crash', failedCell, CELL_FILES.error)), true);

    const resumed = start(['run', file, '--jobs', '2', '--out', 'crash', '--json']);
    assert.equal((await resumed.exited).code, 0, resumed.stderr());
    const trained = resumed.events().filter((e) => e.event === 'cell-done');
    assert.deepEqual(
      trained.map((e) => e.cell),
      [failedCell],
      'only the failed cell is trained again',
    );
    assertConsistent(path.join(dir, 'crash', 'crash'));
  },
);

/** Whether this machine lets an unprivileged user namespace bind-mount a folder read-only. */
function canMountReadOnly(): boolean {
  const probe = path.join(dir, 'ro-probe');
  fs.mkdirSync(probe, { recursive: true });
  return spawnSync('unshare', ['-rm', 'sh', '-c', `mount --bind -o ro ${probe} ${probe}`], { timeout: 10_000 }).status === 0;
}

test(
  'an --out that cannot be written is one line naming it and the cause: read-only, a file in the way, no permission',
  { timeout: 300_000 },
  async (t) => {
    const file = study('unwritable', '{ epochs: 1, batch: 128, lr: 0.003 }', '[mtl]', '[1]');
    const oneLine = (stderr: string) =>
      stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('mtl-bench: error:'));

    const blocker = path.join(dir, 'a-file');
    fs.writeFileSync(blocker, 'not a folder');
    const notDir = runToEnd(['run', file, '--out', path.join(blocker, 'runs')]);
    assert.equal(notDir.code, 1);
    assert.deepEqual(oneLine(notDir.stderr), [
      `mtl-bench: error: cannot write under ${path.join(blocker, 'runs', 'unwritable')}: ` +
        `${blocker} is a file, not a folder; use another --out`,
    ]);

    await t.test('read-only file system', { skip: !canMountReadOnly() && 'no unprivileged mount namespaces here' }, () => {
      const ro = path.join(dir, 'read-only');
      fs.mkdirSync(ro, { recursive: true });
      const quote = (s: string) => JSON.stringify(s);
      const inner = `mount --bind -o ro ${ro} ${ro} && exec ${quote(process.execPath)} ${quote(bin)} run ${quote(file)} --out ${quote(ro)}`;
      const result = spawnSync('unshare', ['-rm', 'sh', '-c', inner], {
        cwd: dir,
        env: env(),
        encoding: 'utf8',
        timeout: CHILD_TIMEOUT_MS,
      });
      assert.equal(result.status, 1, result.stderr);
      // Node reports "ENOENT … mkdir" here for a folder that exists; the message says what is really wrong.
      assert.deepEqual(oneLine(result.stderr), [
        `mtl-bench: error: cannot write under ${path.join(ro, 'unwritable')}: it is on a read-only file system; use another --out`,
      ]);
    });

    await t.test('no permission', () => {
      const locked = path.join(dir, 'locked');
      fs.mkdirSync(locked, { mode: 0o555 });
      fs.chmodSync(locked, 0o555);
      // root ignores permissions: run the command as nobody, with a data home it may write.
      const asRoot = process.getuid?.() === 0;
      if (asRoot) {
        fs.chmodSync(dir, 0o755);
        fs.mkdirSync(path.join(dir, 'nobody-home'), { mode: 0o777 });
        fs.chmodSync(path.join(dir, 'nobody-home'), 0o777);
        fs.chmodSync(file, 0o644);
      }
      const run = spawnSync(process.execPath, [bin, 'run', file, '--out', locked], {
        cwd: dir,
        env: { ...env(), ...(asRoot ? { MTL_BENCH_HOME: path.join(dir, 'nobody-home'), HOME: path.join(dir, 'nobody-home') } : {}) },
        encoding: 'utf8',
        timeout: CHILD_TIMEOUT_MS,
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
      });
      assert.equal(run.status, 1, run.stderr);
      assert.deepEqual(oneLine(run.stderr), [
        `mtl-bench: error: cannot write under ${path.join(locked, 'unwritable')}: ` +
          `permission denied (${locked} is not writable by this user); fix its permissions or use another --out`,
      ]);
    });
  },
);
