import { relativeStepCost } from '../train/balancing/cost.js';
import type { Cell } from './matrix.js';

/**
 * How long a study will take on this machine, said before the first cell: cells × networks ×
 * epochs × images, each image costing what a short measurement (or the backbone's FLOP count and
 * a measured GFLOP/s) says, times what a balancing method's extra passes add. An upper bound: every network is counted as seeing the whole
 * training split each epoch, while stl and uncoupled settings skip samples without their labels.
 */

/** Split sizes of a benchmark's data: from the index when the data is here, else from the manifest. */
export interface ImageCounts {
  train: number;
  val: number;
  test: number;
  source: 'index' | 'manifest';
}

/** Seconds per image of one training step and of evaluation, and how that was found. */
export interface PerImageCost {
  trainSeconds: number;
  inferSeconds: number;
  how: string;
}

export interface BenchmarkEstimate {
  benchmark: string;
  cells: number;
  /** Networks trained: an stl cell trains one per task. */
  networks: number;
  /** Epochs of the cells (the largest, when overrides make them differ). */
  epochs: number;
  images?: ImageCounts;
  cost?: PerImageCost;
  /** Cells trained side by side (`run --jobs`); the seconds are wall time, the work divided among them. */
  jobs: number;
  /** Undefined when the image counts or the cost are unknown (`missing` says which). */
  seconds?: number;
  missing?: string;
}

export interface StudyEstimate {
  backend: string;
  benchmarks: BenchmarkEstimate[];
  /** Sum over the benchmarks, when every one is known. */
  seconds?: number;
}

const DAY = 86_400;

export function estimateBenchmark(
  benchmark: string,
  cells: readonly Cell[],
  images: ImageCounts | undefined,
  cost: PerImageCost | undefined,
  missing?: string,
  requestedJobs = 1,
): BenchmarkEstimate {
  const networksOf = (cell: Cell) => (cell.config.setting === 'stl' ? cell.config.tasks.length : 1);
  const networks = cells.reduce((sum, cell) => sum + networksOf(cell), 0);
  const epochs = cells.reduce((max, cell) => Math.max(max, cell.config.train.epochs), 0);
  // The cost per image is measured at one job's share of the cores, so the jobs divide the work.
  const jobs = Math.max(1, Math.min(requestedJobs, cells.length));
  const base: BenchmarkEstimate = {
    benchmark,
    cells: cells.length,
    jobs,
    networks,
    epochs,
    ...(images ? { images } : {}),
    ...(cost ? { cost } : {}),
  };
  if (cells.length === 0) return { ...base, seconds: 0 };
  if (!images || !cost)
    return { ...base, missing: missing ?? (!images ? 'the number of images is unknown' : 'the cost per image is unknown') };
  const perNetwork = (cell: Cell) =>
    cell.config.train.epochs *
      (images.train * cost.trainSeconds * relativeStepCost(cell.config.setting, cell.config.tasks.length) +
        images.val * cost.inferSeconds) +
    images.test * cost.inferSeconds;
  const seconds = cells.reduce((sum, cell) => sum + networksOf(cell) * perNetwork(cell), 0) / jobs;
  return { ...base, seconds };
}

export function combineEstimates(backend: string, benchmarks: BenchmarkEstimate[]): StudyEstimate {
  const known = benchmarks.every((b) => b.seconds !== undefined);
  return { backend, benchmarks, ...(known ? { seconds: benchmarks.reduce((sum, b) => sum + b.seconds!, 0) } : {}) };
}

/** "about 40 s", "about 25 min", "about 3.5 h", "about 12 days". */
export function humanDuration(seconds: number): string {
  if (seconds < 90) return `about ${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 90 * 60) return `about ${Math.round(seconds / 60)} min`;
  if (seconds < 2 * DAY) return `about ${(seconds / 3600).toFixed(seconds < 10 * 3600 ? 1 : 0)} h`;
  return `about ${(seconds / DAY).toFixed(seconds < 10 * DAY ? 1 : 0)} days`;
}

const milliseconds = (seconds: number) =>
  seconds >= 0.1 ? `${seconds.toFixed(2)} s` : `${(seconds * 1000).toFixed(seconds >= 0.001 ? 1 : 3)} ms`;
const count = (n: number) => n.toLocaleString('en-US');

/** The estimate as text lines: one per benchmark, a total, and the advice when it is days on a CPU backend. */
export function formatEstimate(estimate: StudyEstimate, options: { gpuInUse: boolean }): string[] {
  const lines = estimate.benchmarks.map((b) => {
    const head =
      `${b.benchmark}: ${b.cells} cell${b.cells === 1 ? '' : 's'} ` +
      `(${b.networks} network${b.networks === 1 ? '' : 's'}) × ${b.epochs} epochs`;
    if (b.cells === 0) return `${b.benchmark}: nothing left to run`;
    const images = b.images
      ? ` × ${count(b.images.train)} training images (+ ${count(b.images.val)} validation per epoch, ` +
        `${count(b.images.test)} test; ${b.images.source === 'index' ? 'from the index' : 'from the manifest, data not here'})`
      : '';
    const cost = b.cost
      ? `; per image ${milliseconds(b.cost.trainSeconds)} training, ${milliseconds(b.cost.inferSeconds)} evaluation (${b.cost.how})`
      : '';
    const inJobs = b.jobs > 1 ? ` in ${b.jobs} parallel jobs` : '';
    const total = b.seconds !== undefined ? `: ${humanDuration(b.seconds)} on ${estimate.backend}${inJobs}` : `: no estimate, ${b.missing}`;
    return `${head}${images}${total}${cost}`;
  });
  if (estimate.benchmarks.length > 1 && estimate.seconds !== undefined)
    lines.push(`in all: ${humanDuration(estimate.seconds)} on ${estimate.backend}`);
  const slowest = estimate.seconds ?? Math.max(0, ...estimate.benchmarks.map((b) => b.seconds ?? 0));
  if (slowest >= DAY) {
    lines.push(
      options.gpuInUse
        ? `that is days of training: spread the cells over machines with --shard I/N (README "Spreading a study over machines")`
        : `that is days of training on ${estimate.backend}: train on a GPU (README "Training on a GPU") ` +
            `or spread the cells over machines with --shard I/N (README "Spreading a study over machines")`,
    );
  }
  return lines;
}
