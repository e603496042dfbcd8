import fs from 'node:fs';
import path from 'node:path';

/**
 * Whether the tensorflow-gpu backend really runs on a GPU, and if not, the likely reason.
 *
 * @tensorflow/tfjs-node-gpu 4.22 bundles libtensorflow 2.9.1, built against CUDA 11.2 and cuDNN 8.1.
 * When TensorFlow cannot open those libraries (CUDA 12 installs ship libcudart.so.12, not .so.11.0)
 * or sees no device, it logs a warning among its start-up noise and quietly runs its CPU kernels:
 * the run succeeds at a tenth of the speed. tfjs-node's backend object says which happened: its
 * `isUsingGpuDevice` is what the native binding reported when the backend was created.
 */

/** The shared libraries TensorFlow 2.9 opens for CUDA, by the exact names it asks the loader for. */
export const CUDA_LIBRARIES = ['libcudart.so.11.0', 'libcublas.so.11', 'libcudnn.so.8'] as const;

export interface GpuStatus {
  used: boolean;
  /** When not used: the likely cause, one line. */
  cause?: string;
  /** When not used: what to do about it, one line. */
  fix?: string;
}

/** What the diagnosis looks at; tests pass a made-up machine. */
export interface MachineProbe {
  env: NodeJS.ProcessEnv;
  exists(file: string): boolean;
  /** Names in a folder (empty when it cannot be read). */
  list(dir: string): string[];
  read(file: string): string | undefined;
}

const realMachine: MachineProbe = {
  env: process.env,
  exists: (file) => fs.existsSync(file),
  list: (dir) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  },
  read: (file) => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  },
};

/** Folders the dynamic loader searches besides LD_LIBRARY_PATH, plus where CUDA installs itself. */
const DEFAULT_LIBRARY_DIRS = [
  '/lib',
  '/usr/lib',
  '/lib64',
  '/usr/lib64',
  '/lib/x86_64-linux-gnu',
  '/usr/lib/x86_64-linux-gnu',
  '/usr/local/cuda/lib64',
  '/usr/local/cuda-11.2/lib64',
];

/** The folders named in /etc/ld.so.conf and the files it includes (one level of `include` globs of the form dir/*.conf). */
function ldConfigDirs(probe: MachineProbe): string[] {
  const dirs: string[] = [];
  const readConf = (file: string, depth: number) => {
    const text = probe.read(file);
    if (text === undefined) return;
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) continue;
      const include = /^include\s+(.+)$/.exec(line);
      if (include) {
        if (depth > 0) continue;
        const pattern = include[1]!.trim();
        const dir = path.dirname(pattern);
        const suffix = path.basename(pattern).replace(/^\*/, '');
        for (const name of probe.list(dir)) if (name.endsWith(suffix)) readConf(path.join(dir, name), depth + 1);
      } else if (line.startsWith('/')) {
        dirs.push(line);
      }
    }
  };
  readConf('/etc/ld.so.conf', 0);
  return dirs;
}

/** The CUDA libraries TensorFlow needs that are in none of the loader's folders. */
export function missingCudaLibraries(probe: MachineProbe): string[] {
  const fromEnv = (probe.env.LD_LIBRARY_PATH ?? '').split(':').filter((dir) => dir.trim() !== '');
  const dirs = [...new Set([...fromEnv, ...ldConfigDirs(probe), ...DEFAULT_LIBRARY_DIRS])];
  return CUDA_LIBRARIES.filter((lib) => !dirs.some((dir) => probe.exists(path.join(dir, lib))));
}

function hasNvidiaDevice(probe: MachineProbe): boolean {
  return probe.exists('/proc/driver/nvidia/version') || probe.list('/dev').some((name) => /^nvidia\d+$/.test(name));
}

/** Diagnoses a tensorflow-gpu backend; `backend` is the object tfjs returns for it. */
export function gpuStatus(backend: unknown, probe: MachineProbe = realMachine): GpuStatus {
  if ((backend as { isUsingGpuDevice?: unknown } | null)?.isUsingGpuDevice === true) return { used: true };
  const visible = probe.env.CUDA_VISIBLE_DEVICES?.trim();
  if (visible !== undefined && (visible === '' || visible === '-1')) {
    return {
      used: false,
      cause: `CUDA_VISIBLE_DEVICES="${visible}" hides every GPU`,
      fix: 'unset CUDA_VISIBLE_DEVICES or set it to a device number, e.g. 0',
    };
  }
  if (!hasNvidiaDevice(probe)) {
    return {
      used: false,
      cause: 'no NVIDIA device is visible (no /dev/nvidia0, no /proc/driver/nvidia)',
      fix: 'install the NVIDIA driver; in a container pass the GPU in (docker run --gpus all, apptainer --nv, Kubernetes nvidia.com/gpu)',
    };
  }
  const missing = missingCudaLibraries(probe);
  if (missing.length > 0) {
    return {
      used: false,
      cause:
        `CUDA 11.2 / cuDNN 8.1 libraries not found on the library path (${missing.join(', ')}); ` +
        'tfjs-node-gpu 4.22 needs exactly these, CUDA 12 does not provide them',
      fix:
        'install CUDA 11.2 and cuDNN 8.1 and add their lib64 folders to LD_LIBRARY_PATH, ' +
        'or use the GPU image (Dockerfile.gpu); README "Training on a GPU"',
    };
  }
  return {
    used: false,
    cause:
      'a device and the CUDA 11.2 / cuDNN 8 libraries are present, yet TensorFlow chose its CPU kernels ' +
      '(often a driver older than CUDA 11.2 needs, or a GPU in use)',
    fix:
      "check nvidia-smi (CUDA 11.x needs driver ≥ 450.80) and TensorFlow's start-up lines " +
      '("Could not load dynamic library …") printed before this report',
  };
}

/**
 * tfjs-node-gpu 4.22 lists no N-API 9 build, and its installs on Node ≥ 22 can end with an empty
 * lib/napi-v9 folder (tfjs #8542); Node 20 is the version the project and its images use.
 */
export function nodeVersionWarning(nodeVersion: string, gpuPackagePresent: boolean): string | undefined {
  const major = Number(/^v?(\d+)/.exec(nodeVersion)?.[1]);
  if (!gpuPackagePresent || !(major >= 22)) return undefined;
  return (
    `Node ${nodeVersion} with @tensorflow/tfjs-node-gpu 4.22: installs on Node ≥ 22 can leave no loadable addon ` +
    '(empty lib/napi-v9, tfjs #8542); use Node 20 (as Dockerfile.gpu does) or rebuild the addon: ' +
    'npm rebuild @tensorflow/tfjs-node-gpu --build-addon-from-source (tfjs #8323)'
  );
}

/** The one line `run` and `doctor` print when the GPU package runs without a GPU. */
export function gpuNotUsedLine(status: GpuStatus): string | undefined {
  if (status.used) return undefined;
  return `GPU not used: ${status.cause ?? 'TensorFlow reports no GPU device'}; fix: ${status.fix ?? 'see README "Training on a GPU"'}`;
}
