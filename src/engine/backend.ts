import * as tf from '@tensorflow/tfjs';
import { UserError, errorMessage } from '../util/errors.js';
import { type GpuStatus, gpuStatus } from './gpu.js';
import { registerCustomKernels } from './kernels/index.js';

/** Backends mtl-bench knows how to bring up, in the order it prefers them. */
export const BACKEND_PREFERENCE = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_PREFERENCE)[number];

/**
 * `tensorflow-gpu` and `tensorflow` are both registered by tfjs under the name `tensorflow`
 * (the GPU package runs TensorFlow's native CPU code too when no CUDA device is present); we keep
 * them apart so that `doctor` can say which package provided it.
 */
interface Candidate {
  choice: BackendChoice;
  tfName: string;
  /** Imports whatever registers the backend; throws when the package or its native addon is missing. */
  load(): Promise<void>;
}

const CANDIDATES: Candidate[] = [
  { choice: 'tensorflow-gpu', tfName: 'tensorflow', load: () => importOptional('@tensorflow/tfjs-node-gpu') },
  { choice: 'tensorflow', tfName: 'tensorflow', load: () => importOptional('@tensorflow/tfjs-node') },
  {
    choice: 'wasm',
    tfName: 'wasm',
    load: async () => {
      await import('@tensorflow/tfjs-backend-wasm');
    },
  },
  {
    choice: 'cpu',
    tfName: 'cpu',
    load: async () => {
      /* bundled with @tensorflow/tfjs */
    },
  },
];

async function importOptional(specifier: string): Promise<void> {
  // A variable specifier keeps TypeScript from requiring the optional package's types.
  const name: string = specifier;
  await import(name);
}

export interface BackendReport {
  /** What mtl-bench chose: also the key used in results and provenance. */
  choice: BackendChoice;
  /** The name tfjs knows the backend by (`tf.getBackend()`). */
  tfName: string;
  /** Why the candidates before the chosen one were skipped, one line each. */
  skipped: { choice: BackendChoice; reason: string }[];
  /** How the choice was made: a flag, the environment, or automatic preference. */
  source: 'flag' | 'env' | 'auto';
  /** Only for tensorflow-gpu: whether TensorFlow runs on a GPU, and if not, why. */
  gpu?: GpuStatus;
}

let active: BackendReport | undefined;

export function activeBackend(): BackendReport | undefined {
  return active;
}

function parseChoice(value: string, origin: string): BackendChoice {
  const normalized = value.trim().toLowerCase();
  const aliases: Record<string, BackendChoice> = {
    node: 'tensorflow',
    'tfjs-node': 'tensorflow',
    'tfjs-node-gpu': 'tensorflow-gpu',
    gpu: 'tensorflow-gpu',
  };
  const choice = (aliases[normalized] ?? normalized) as BackendChoice;
  if (!BACKEND_PREFERENCE.includes(choice)) {
    throw new UserError(`${origin}: unknown backend "${value}"; expected one of ${BACKEND_PREFERENCE.join(', ')}`);
  }
  return choice;
}

function firstLine(err: unknown): string {
  return errorMessage(err).split('\n')[0]!.trim();
}

async function tryActivate(candidate: Candidate): Promise<void> {
  await candidate.load();
  if (candidate.tfName === 'cpu') {
    // The cpu backend prints a multi-line banner urging tfjs-node on first use; `doctor` already
    // lists what was skipped and why, so the banner would only break our one-line output.
    tf.env().set('PROD', true);
  }
  // Look at the factory registry, not tf.findBackend: findBackend starts an initialisation of its
  // own that setBackend below does not wait for, so the backend would be brought up twice.
  if (!tf.engine().registryFactory[candidate.tfName]) {
    throw new Error(`the package loaded but registered no "${candidate.tfName}" backend`);
  }
  const ok = await tf.setBackend(candidate.tfName);
  if (!ok) throw new Error(`tf.setBackend("${candidate.tfName}") failed`);
  await tf.ready();
}

/**
 * Brings up the training backend: the one named by `requested` (a --backend flag) or
 * MTL_BENCH_BACKEND, else the first that loads of tfjs-node-gpu, tfjs-node, wasm, cpu.
 * A named backend that fails is an error; in automatic mode a failing candidate is skipped with a
 * one-line reason. Custom kernels are registered before the first op runs.
 */
export async function initBackend(options: { requested?: string; env?: NodeJS.ProcessEnv } = {}): Promise<BackendReport> {
  const env = options.env ?? process.env;
  let forced: BackendChoice | undefined;
  let source: BackendReport['source'] = 'auto';
  if (options.requested) {
    forced = parseChoice(options.requested, '--backend');
    source = 'flag';
  } else if (env.MTL_BENCH_BACKEND?.trim()) {
    forced = parseChoice(env.MTL_BENCH_BACKEND, 'MTL_BENCH_BACKEND');
    source = 'env';
  }
  if (active && (!forced || active.choice === forced)) return active;

  registerCustomKernels();
  const skipped: BackendReport['skipped'] = [];
  const candidates = forced ? CANDIDATES.filter((c) => c.choice === forced) : CANDIDATES;
  for (const candidate of candidates) {
    try {
      await tryActivate(candidate);
      active = { choice: candidate.choice, tfName: candidate.tfName, skipped, source };
      // The GPU package falls back to TensorFlow's CPU kernels without failing: ask its backend.
      if (candidate.choice === 'tensorflow-gpu') active.gpu = gpuStatus(tf.backend());
      return active;
    } catch (err) {
      if (forced) {
        throw new UserError(
          `backend "${forced}" (from ${source === 'flag' ? '--backend' : 'MTL_BENCH_BACKEND'}) could not start: ${firstLine(err)}`,
        );
      }
      skipped.push({ choice: candidate.choice, reason: describeLoadFailure(err) });
    }
  }
  throw new UserError(`no TensorFlow.js backend could start: ${skipped.map((s) => `${s.choice}: ${s.reason}`).join('; ')}`);
}

/** Whether `specifier` is installed where this package would import it from (without loading it). */
function installed(specifier: string): boolean {
  try {
    import.meta.resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

/** Whether @tensorflow/tfjs-node-gpu is installed. */
export function gpuPackageInstalled(): boolean {
  return installed('@tensorflow/tfjs-node-gpu');
}

/** Whether tfjs-node or tfjs-node-gpu is installed, so that an automatic choice would try TensorFlow's native code first. */
export function nativePackageInstalled(): boolean {
  return gpuPackageInstalled() || installed('@tensorflow/tfjs-node');
}

function describeLoadFailure(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
    const message = firstLine(err);
    const missing = /Cannot find (?:package|module) '([^']+)'/.exec(message)?.[1];
    return `not installed${missing ? ` (${missing})` : ''}`;
  }
  return `failed to load: ${firstLine(err)}`;
}
