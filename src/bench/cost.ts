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
 * On the CPU backends the cost of an image hardly depends on the batch, so a small batch keeps
 * the measurement short (a ResNet-50 step at 224×224 takes seconds per image on wasm); on the
 * native backends, a GPU above all, it does, so the benchmark's own batch is timed.
 */
const CPU_TIMING_BATCH = 4;

function timingBatch(backend: string, batch: number): number {
  return backend === 'wasm' || backend === 'cpu' ? Math.min(batch, CPU_TIMING_BATCH) : batch;
}

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
  const batch = timingBatch(request.backend, request.batch);
  const size = request.inputSize;
  const timed = (result: ThroughputResult, how: string): PerImageCost => ({
    trainSeconds: 1 / result.trainImagesPerSecond,
    inferSeconds: 1 / result.inferImagesPerSecond,
    how,
  });
  if (BACKBONE_NAMES.includes(request.backbone) || fetchedBackboneFolder(request.backbone, options.home)) {
    const result = await measure({ backbone: request.backbone, inputSize: size, batch, steps: 1, warmup: 1 });
    return timed(result, `measured: ${request.backbone} at ${size}×${size}, batch ${batch}`);
  }
  const entry = (options.manifest ?? loadBackboneManifest()).backbones.get(request.backbone);
  if (!entry?.macs) return undefined;
  const macs = entry.macs * (size / entry.input.size) ** 2;
  const reference = await measure({ backbone: DEFAULT_BACKBONE, inputSize: size, batch, steps: 1, warmup: 1 });
  // 2 FLOPs per multiply-accumulate; a training step is about three forward passes (forward, input and weight gradients).
  return {
    trainSeconds: (macs * 2 * 3) / (reference.trainGflopsPerSecond * 1e9),
    inferSeconds: (macs * 2) / (reference.inferGflopsPerSecond * 1e9),
    how: `${request.backbone} is not fetched here: its ${(macs / 1e9).toFixed(2)} GMAC per image at ${size}×${size} at the ${reference.trainGflopsPerSecond.toFixed(1)} GFLOP/s measured with ${DEFAULT_BACKBONE}`,
  };
}
