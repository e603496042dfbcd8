import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { activeBackend } from '../engine/backend.js';
import { wasmThreadsStatus } from '../engine/wasm_threads.js';
import { packageRoot } from '../util/paths.js';
import type { Provenance } from '../runs/store.js';

function run(command: string, args: string[], cwd?: string): string | null {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
  if (result.status !== 0 || typeof result.stdout !== 'string') return null;
  return result.stdout.trim() || null;
}

function packageInfo(): { name: string; version: string } {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { name: string; version: string };
    return { name: pkg.name, version: pkg.version };
  } catch {
    return { name: 'mtl-bench', version: 'unknown' };
  }
}

/** Where a result came from: enough to tell two runs apart and to reproduce one. */
export function collectProvenance(): Provenance {
  const isGitCheckout = fs.existsSync(path.join(packageRoot, '.git'));
  const gitCommit = isGitCheckout ? run('git', ['rev-parse', 'HEAD'], packageRoot) : null;
  const gitDirty = gitCommit ? (run('git', ['status', '--porcelain', '--untracked-files=no'], packageRoot) ?? '') !== '' : null;
  const backend = activeBackend();
  const cpus = os.cpus();
  // Only a CUDA backend can use a GPU; asking the driver otherwise would only slow startup.
  const gpu = backend?.choice === 'tensorflow-gpu' ? run('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader']) : null;
  return {
    package: packageInfo(),
    gitCommit,
    gitDirty,
    // Never tf.getBackend() here: with no backend yet it would start one as a side effect.
    backend: backend?.choice ?? 'none',
    // With `run --jobs` the workers start with the run's own thread count (jobs.ts), so this is theirs too.
    wasmThreads: backend?.choice === 'wasm' ? (wasmThreadsStatus()?.threads ?? null) : null,
    tfjs: tf.version.tfjs,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: { model: cpus[0]?.model.trim() ?? 'unknown', count: cpus.length },
    gpu: gpu ? gpu.split('\n').join('; ') : null,
  };
}
