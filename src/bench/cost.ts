import { BACKBONE_NAMES, DEFAULT_BACKBONE } from '../model/backbones.js';
import { loadBackboneManifest, type BackboneManifest } from '../model/backbone_manifest.js';
import { fetchedBackboneFolder } from '../model/backbone_store.js';
import { measureThroughput, type ThroughputOptions, type ThroughputResult } from '../train/throughput.js';
import type { PerImageCost } from './estimate.js';

export interface CostRequest {
  /** A built-in architecture or a pretrained backbone of backbones.yaml. */
  backbone: string;
  inputSize: number;
  /** The benchmark's batch size. */
  batch: number;
  /** The backend training runs on (what `initBackend` chose). */
  backend: string;
}

/**
 * On the CPU backends one step at the benchmark's batch can take minutes (a ResNet-50 at 224×224
 * costs about a second per image on wasm), so the network is first timed on a small batch, and
 * again on the benchmark's own only when that step stays short: for small networks the fixed cost
 * of a step makes a small batch's cost per image far too high. On the native backends, a GPU
 * above all, the cost per image depends on the batch, so the benchmark's own is timed at once.
 */
const CPU_PROBE_BATCH = 4;
const FULL_BATCH_STEP_BUDGET_SECONDS = 4;

type Measure = (options: ThroughputOptions) => Promise<ThroughputResult>;

/**
 * Seconds per image for training and evaluation of a benchmark's network on this backend: the
 * trainer's own step timed for one step after one warm-up step (src/train/throughput.ts). A
 * pretrained backbone that is not fetched yet cannot be timed: its cost then comes from its
 * multiply-accumulates (backbones.yaml) and the GFLOP/s measured with the default backbone at the
 * same input size. A `pretrained: PATH` model costs what its named architecture costs.
 */
export async function perImageCost(
  request: CostRequest,
  options: { measure?: Measure; manifest?: BackboneManifest; home?: string } = {},
): Promise<PerImageCost | undefined> {
  const measure = options.measure ?? measureThroughput;
  const size = request.inputSize;
  const onCpu = request.backend === 'wasm' || request.backend === 'cpu';
  const time = async (backbone: string): Promise<{ result: ThroughputResult; batch: number }> => {
    const once = (batch: number) => measure({ backbone, inputSize: size, batch, steps: 1, warmup: 1 });
    if (!onCpu || request.batch <= CPU_PROBE_BATCH) return { result: await once(request.batch), batch: request.batch };
    const probe = await once(CPU_PROBE_BATCH);
    if (request.batch / probe.trainImagesPerSecond > FULL_BATCH_STEP_BUDGET_SECONDS) return { result: probe, batch: CPU_PROBE_BATCH };
    return { result: await once(request.batch), batch: request.batch };
  };
  if (BACKBONE_NAMES.includes(request.backbone) || fetchedBackboneFolder(request.backbone, options.home)) {
    const { result, batch } = await time(request.backbone);
    return {
      trainSeconds: 1 / result.trainImagesPerSecond,
      inferSeconds: 1 / result.inferImagesPerSecond,
      how: `measured: ${request.backbone} at ${size}×${size}, batch ${batch}`,
    };
  }
  const entry = (options.manifest ?? loadBackboneManifest()).backbones.get(request.backbone);
  if (!entry?.macs) return undefined;
  const macs = entry.macs * (size / entry.input.size) ** 2;
  const { result: reference } = await time(DEFAULT_BACKBONE);
  // 2 FLOPs per multiply-accumulate; a training step is about three forward passes (forward, input and weight gradients).
  return {
    trainSeconds: (macs * 2 * 3) / (reference.trainGflopsPerSecond * 1e9),
    inferSeconds: (macs * 2) / (reference.inferGflopsPerSecond * 1e9),
    how:
      `${request.backbone} is not fetched here: its ${(macs / 1e9).toFixed(2)} GMAC per image at ${size}×${size} ` +
      `at the ${reference.trainGflopsPerSecond.toFixed(1)} GFLOP/s measured with ${DEFAULT_BACKBONE}`,
  };
}
