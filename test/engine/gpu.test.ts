import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  CUDA_LIBRARIES,
  gpuNotUsedLine,
  gpuStatus,
  missingCudaLibraries,
  nodeVersionWarning,
  type MachineProbe,
} from '../../src/engine/gpu.js';
import { packageRoot } from '../../src/util/paths.js';
import { runNodeSync } from '../processes.js';

/** A made-up machine: the files that exist, and the text of the few it reads. */
function machine(files: string[], options: { env?: NodeJS.ProcessEnv; texts?: Record<string, string> } = {}): MachineProbe {
  const set = new Set([...files, ...Object.keys(options.texts ?? {})]);
  return {
    env: options.env ?? {},
    exists: (file) => set.has(file),
    list: (dir) => [...set].filter((f) => path.dirname(f) === dir).map((f) => path.basename(f)),
    read: (file) => options.texts?.[file],
  };
}

const DEVICE = ['/dev/nvidia0', '/dev/nvidiactl'];

describe('GPU diagnosis of the tensorflow-gpu backend', () => {
  it('trusts the backend that says it uses a GPU device', () => {
    assert.deepEqual(gpuStatus({ isUsingGpuDevice: true }, machine([])), { used: true });
    assert.equal(gpuNotUsedLine({ used: true }), undefined);
  });

  it('names no device when the machine shows no NVIDIA device', () => {
    for (const backend of [{ isUsingGpuDevice: false }, {}, null]) {
      const status = gpuStatus(backend, machine([]));
      assert.equal(status.used, false);
      assert.match(status.cause!, /no NVIDIA device/);
      assert.match(gpuNotUsedLine(status)!, /^GPU not used: no NVIDIA device .*; fix: .*--gpus all/);
    }
  });

  it('names the missing CUDA 11.2 / cuDNN 8 libraries when only CUDA 12 is on the library path', () => {
    const cuda12 = ['/usr/local/cuda-12.4/lib64/libcudart.so.12', '/usr/local/cuda-12.4/lib64/libcublas.so.12'];
    const status = gpuStatus(
      { isUsingGpuDevice: false },
      machine([...DEVICE, ...cuda12], { env: { LD_LIBRARY_PATH: '/usr/local/cuda-12.4/lib64' } }),
    );
    assert.equal(status.used, false);
    assert.match(
      status.cause!,
      /CUDA 11\.2 \/ cuDNN 8\.1 libraries not found on the library path \(libcudart\.so\.11\.0, libcublas\.so\.11, libcudnn\.so\.8\)/,
    );
    assert.match(status.fix!, /LD_LIBRARY_PATH/);
  });

  it('finds the libraries through LD_LIBRARY_PATH and the folders /etc/ld.so.conf includes', () => {
    const inEnv = CUDA_LIBRARIES.map((lib) => `/opt/cuda-11.2/lib64/${lib}`);
    assert.deepEqual(missingCudaLibraries(machine(inEnv, { env: { LD_LIBRARY_PATH: '/opt/x:/opt/cuda-11.2/lib64' } })), []);
    const viaConf = machine(
      CUDA_LIBRARIES.map((lib) => `/srv/cudnn/${lib}`),
      { texts: { '/etc/ld.so.conf': 'include /etc/ld.so.conf.d/*.conf\n', '/etc/ld.so.conf.d/cuda.conf': '# CUDA 11.2\n/srv/cudnn\n' } },
    );
    assert.deepEqual(missingCudaLibraries(viaConf), []);
    assert.deepEqual(missingCudaLibraries(machine([`/usr/lib/x86_64-linux-gnu/${CUDA_LIBRARIES[0]}`])), CUDA_LIBRARIES.slice(1));
  });

  it('with a device and the libraries, points at the driver; a hidden device is named first', () => {
    const ready = machine([...DEVICE, ...CUDA_LIBRARIES.map((lib) => `/usr/lib/x86_64-linux-gnu/${lib}`)]);
    assert.match(gpuStatus({ isUsingGpuDevice: false }, ready).fix!, /nvidia-smi/);
    const hidden = gpuStatus({ isUsingGpuDevice: false }, { ...ready, env: { CUDA_VISIBLE_DEVICES: '-1' } });
    assert.match(hidden.cause!, /CUDA_VISIBLE_DEVICES="-1" hides every GPU/);
  });

  it('warns about Node ≥ 22 only when the GPU package is there', () => {
    assert.match(nodeVersionWarning('v22.13.1', true)!, /Node v22\.13\.1 .*tfjs #8542.*Node 20.*--build-addon-from-source/);
    assert.match(nodeVersionWarning('v24.0.0', true)!, /Node v24/);
    assert.equal(nodeVersionWarning('v22.13.1', false), undefined);
    assert.equal(nodeVersionWarning('v20.20.2', true), undefined);
  });
});

/** The CLI with the stand-in GPU package (test/engine/stand_in) answering for @tensorflow/tfjs-node-gpu. */
function withStandIn(args: string[], flag: 'true' | 'false' | 'absent') {
  const register = path.join(packageRoot, 'dist', 'test', 'engine', 'stand_in', 'register.js');
  return runNodeSync(['--import', register, path.join(packageRoot, 'bin', 'mtl-bench.js'), ...args], {
    timeoutMs: 120_000,
    env: {
      ...process.env,
      NO_COLOR: '1',
      MTL_BENCH_STAND_IN_GPU: flag,
      MTL_BENCH_HOME: path.join(os.tmpdir(), 'mtl-bench-gpu-test-home'),
      MTL_BENCH_BACKEND: '',
    },
  });
}

const DOCTOR = ['doctor', '--steps', '1', '--batch', '2', '--size', '16'];

describe('doctor with the stand-in GPU package', () => {
  it('reports "GPU not used" with its cause when the backend has no GPU device', () => {
    for (const flag of ['false', 'absent'] as const) {
      const { code, stdout, stderr } = withStandIn(DOCTOR, flag);
      assert.equal(code, 0, stderr);
      assert.match(stdout, /backend\s+tensorflow-gpu \(tfjs "tensorflow", chosen by preference\)/, flag);
      assert.match(stdout, /gpu\s+GPU not used: .+; fix: .+/, flag);
    }
    const json = withStandIn([...DOCTOR, '--json'], 'false');
    const report = JSON.parse(json.stdout);
    assert.equal(report.gpu.used, false);
    assert.ok(report.gpu.cause.length > 0 && report.gpu.fix.length > 0);
  });

  it('reports the GPU as used when the backend says so', () => {
    const { code, stdout, stderr } = withStandIn(DOCTOR, 'true');
    assert.equal(code, 0, stderr);
    assert.match(stdout, /gpu\s+used: TensorFlow runs on a CUDA device/);
    assert.doesNotMatch(stdout, /GPU not used/);
  });

  it('says nothing about a GPU on the other backends', () => {
    const { code, stdout } = withStandIn([...DOCTOR, '--backend', 'cpu', '--json'], 'false');
    assert.equal(code, 0);
    assert.equal(JSON.parse(stdout).gpu, undefined);
  });
});
