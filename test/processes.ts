import { spawn, spawnSync } from 'node:child_process';

/** How a child process ended, with what it wrote. */
export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface NodeRunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** A child still running after this long is killed and the test fails, instead of hanging the suite. */
  timeoutMs: number;
}

function timedOut(args: readonly string[], timeoutMs: number, output: { stdout: string; stderr: string }): Error {
  const tail = output.stderr.trim().split('\n').slice(-5).join('\n');
  const stderrTail = tail ? `; its stderr ended with:\n${tail}` : '';
  return new Error(`node ${args.join(' ').slice(0, 200)} did not finish within ${timeoutMs / 1000} s and was killed${stderrTail}`);
}

/** Runs Node with `args` and waits for it (blocking this process); throws when it runs out of time. */
export function runNodeSync(args: readonly string[], options: NodeRunOptions): Finished {
  const result = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    env: options.env ?? process.env,
    cwd: options.cwd,
    timeout: options.timeoutMs,
    killSignal: 'SIGKILL',
  });
  const output = { stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') throw timedOut(args, options.timeoutMs, output);
  if (result.error) throw result.error;
  return { code: result.status, ...output };
}

/** Runs Node with `args` without blocking this process (tests serve HTTP from it meanwhile); rejects when it runs out of time. */
export function runNode(args: readonly string[], options: NodeRunOptions): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { stdout: '', stderr: '' };
    child.stdout.on('data', (d: Buffer) => (output.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output.stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(timedOut(args, options.timeoutMs, output));
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, ...output });
    });
  });
}
