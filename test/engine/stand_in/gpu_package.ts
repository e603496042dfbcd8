/**
 * A stand-in for @tensorflow/tfjs-node-gpu, for tests only: it registers a backend under the
 * native package's name ("tensorflow") that computes with the cpu backend's kernels and carries
 * the `isUsingGpuDevice` flag tfjs-node's backend exposes. MTL_BENCH_STAND_IN_GPU chooses the
 * flag: "true", "false", or "absent" (no flag at all).
 */
import * as tf from '@tensorflow/tfjs';

const mode = process.env.MTL_BENCH_STAND_IN_GPU ?? 'false';
const cpuFactory = tf.findBackendFactory('cpu');
if (!cpuFactory) throw new Error('stand-in GPU package: the cpu backend is not registered');

// The cpu backend prints a banner urging tfjs-node when created; the stand-in is not what it means.
tf.env().set('PROD', true);
for (const kernel of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...kernel, backendName: 'tensorflow' });
tf.registerBackend('tensorflow', async () => {
  const backend = await cpuFactory();
  if (mode !== 'absent') Object.assign(backend, { isGPUPackage: true, isUsingGpuDevice: mode === 'true' });
  return backend;
});
