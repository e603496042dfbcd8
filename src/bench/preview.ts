import path from 'node:path';
import { trainingHash } from '../runs/identity.js';
import { describeSource, findReusableCell } from '../runs/reuse.js';
import { hasResult } from '../runs/store.js';
import type { CommandIO } from '../util/command_io.js';
import { UserError } from '../util/errors.js';
import type { DatasetCatalog } from './catalog.js';
import type { CostRequest } from './cost.js';
import {
  combineEstimates,
  estimateBenchmark,
  formatEstimate,
  type ImageCounts,
  type PerImageCost,
  type StudyEstimate,
} from './estimate.js';
import { expandMatrix, selectShard, type Shard } from './matrix.js';
import { formatPlan, planJson, type BenchmarkPlan } from './plan.js';
import type { ResolvedBenchmark } from './resolve.js';

/** What `run` knows of a pretrained backbone of backbones.yaml before training. */
export interface PretrainedBackboneInfo {
  label: string;
  ready: boolean;
  hint: string;
}

/** The parts of the program a preview needs; tests pass doubles. */
export interface PreviewDeps {
  pretrainedBackbone?: (name: string) => PretrainedBackboneInfo | undefined;
  /** Seconds per image of training and evaluation on the started backend; without it, no time estimate. */
  measureCost?: (request: CostRequest) => Promise<PerImageCost | undefined>;
}

const backboneName = (resolved: ResolvedBenchmark) =>
  typeof resolved.doc.backbone === 'string' ? resolved.doc.backbone : resolved.doc.backbone.name;

/** Fails, before any training, when a benchmark names a pretrained backbone that is not fetched here. */
export function ensureBackboneReady(resolved: ResolvedBenchmark, deps: PreviewDeps): void {
  const name = backboneName(resolved);
  const info = typeof resolved.doc.backbone !== 'string' && resolved.doc.backbone.pretrained ? undefined : deps.pretrainedBackbone?.(name);
  if (info && !info.ready)
    throw new UserError(`${resolved.file}: backbone: pretrained backbone "${name}" is not fetched here; ${info.hint}`);
}

/**
 * The cells of each benchmark (of this shard), which are done under `outRoot`, which will be
 * reused (with `reuse`: a finished cell of another benchmark there, or a cell an earlier benchmark
 * of this study trains first, has the same training hash), and where data and backbone stand.
 */
export function planStudy(
  benchmarks: ResolvedBenchmark[],
  options: { outRoot: string; shard?: Shard; catalog: DatasetCatalog; deps: PreviewDeps; reuse: boolean },
): BenchmarkPlan[] {
  // Training hash → the cell of an earlier benchmark of this study that trains it.
  const plannedEarlier = new Map<string, string>();
  return benchmarks.map((resolved) => {
    const cells = selectShard(expandMatrix(resolved), options.shard);
    const dir = path.join(options.outRoot, resolved.name);
    const done = new Set(cells.filter((cell) => hasResult(path.join(dir, cell.id), cell.hash)).map((cell) => cell.id));
    const reusable = new Map<string, string>();
    for (const cell of cells) {
      const key = trainingHash(cell.config);
      if (options.reuse && !done.has(cell.id)) {
        const found = findReusableCell(options.outRoot, cell.config, cell.id);
        const source = found ? describeSource(found.reusedFrom) : plannedEarlier.get(key);
        if (source) reusable.set(cell.id, source);
      }
      if (!plannedEarlier.has(key)) plannedEarlier.set(key, `${resolved.name}/${cell.id}`);
    }
    const datasets = resolved.datasetIds.map((id) => {
      const entry = options.catalog.get(id)!;
      const hint = entry.buildsOffline && !entry.ready ? 'built from its installed npm package when the study starts' : entry.fetchHint;
      return { id, ready: entry.ready, ...(hint ? { hint } : {}) };
    });
    const name = backboneName(resolved);
    const pretrained = typeof resolved.doc.backbone === 'string' ? undefined : resolved.doc.backbone.pretrained;
    const library = pretrained ? undefined : options.deps.pretrainedBackbone?.(name);
    return {
      resolved,
      cells,
      done,
      reusable,
      datasets,
      backbone: { name, ...(pretrained ? { pretrained } : {}), ...(library ? { library } : {}) },
      ...(options.shard ? { shard: `${options.shard.index}/${options.shard.count}` } : {}),
    };
  });
}

/** Image counts of a benchmark's data: a multi-source study trains on the sources' splits together. */
function imagesOf(resolved: ResolvedBenchmark, catalog: DatasetCatalog): ImageCounts | undefined {
  const counts = resolved.datasetIds.map((id) => catalog.imageCounts?.(id));
  if (counts.some((c) => c === undefined)) return undefined;
  return counts.reduce<ImageCounts>(
    (sum, c) => ({
      train: sum.train + c!.train,
      val: sum.val + c!.val,
      test: sum.test + c!.test,
      source: sum.source === 'manifest' || c!.source === 'manifest' ? 'manifest' : 'index',
    }),
    { train: 0, val: 0, test: 0, source: 'index' },
  );
}

/** Times each benchmark's network once (per backbone, input size and batch) and estimates the cells still to run. */
export async function estimateStudy(
  plans: BenchmarkPlan[],
  options: { catalog: DatasetCatalog; deps: PreviewDeps; backend: string; jobs?: number },
): Promise<StudyEstimate | undefined> {
  const measureCost = options.deps.measureCost;
  if (!measureCost) return undefined;
  const costs = new Map<string, Promise<PerImageCost | undefined>>();
  const benchmarks = [];
  for (const plan of plans) {
    const pending = plan.cells.filter((cell) => !plan.done.has(cell.id) && !plan.reusable.has(cell.id));
    const images = imagesOf(plan.resolved, options.catalog);
    const request: CostRequest = {
      backbone: plan.backbone.name,
      inputSize: plan.resolved.doc.input.size,
      batch: plan.resolved.doc.train.batchSize,
      backend: options.backend,
    };
    const key = `${request.backbone}|${request.inputSize}|${request.batch}`;
    if (pending.length > 0 && !costs.has(key)) costs.set(key, measureCost(request));
    const cost = pending.length > 0 ? await costs.get(key)! : undefined;
    const missing = !images
      ? `no image counts for ${plan.resolved.datasetIds.join(', ')} (fetch the data, or give samples: in its manifest entry)`
      : !cost
        ? `no way to time backbone "${request.backbone}" here`
        : undefined;
    benchmarks.push(estimateBenchmark(plan.resolved.name, pending, images, cost, missing, options.jobs));
  }
  return combineEstimates(options.backend, benchmarks);
}

/** Prints the estimate once, before the first cell (text on stderr, or one JSON event on stdout). */
export function reportEstimate(estimate: StudyEstimate, options: { json?: boolean; gpuInUse: boolean }, io: CommandIO): void {
  if (options.json) {
    io.stdout(`${JSON.stringify({ event: 'estimate', ...estimate })}\n`);
    return;
  }
  const [first, ...rest] = formatEstimate(estimate, { gpuInUse: options.gpuInUse });
  io.stderr(`${io.paintErr.bold('estimate')} ${first ?? ''}\n`);
  for (const line of rest) io.stderr(`${/^that is days/.test(line) ? io.paintErr.yellow(`warning: ${line}`) : `         ${line}`}\n`);
}

/** `run --dry-run`: every benchmark's plan and the estimate on stdout; nothing is trained or written. */
export function reportDryRun(
  plans: BenchmarkPlan[],
  estimate: StudyEstimate | undefined,
  options: { json?: boolean; gpuInUse: boolean },
  io: CommandIO,
): void {
  if (options.json) {
    for (const plan of plans) io.stdout(`${JSON.stringify(planJson(plan))}\n`);
    if (estimate) io.stdout(`${JSON.stringify({ event: 'estimate', ...estimate })}\n`);
    return;
  }
  for (const plan of plans) io.stdout(`${formatPlan(plan).join('\n')}\n`);
  if (estimate) {
    const lines = formatEstimate(estimate, { gpuInUse: options.gpuInUse });
    io.stdout(
      `estimate     ${lines[0] ?? ''}\n${lines
        .slice(1)
        .map((l) => `             ${l}\n`)
        .join('')}`,
    );
  }
  io.stdout('dry run: nothing was trained or written\n');
}
