/**
 * `npm run bench:train`: training and inference throughput of the CPU backbones on random data.
 *
 *   node dist/scripts/bench-train.js [--backend wasm] [--models convnet-s,convnet-4] [--batch 32]
 *        [--steps 5] [--warmup 2] [--repeats 3] [--kernels all] [--wasm-threads N] [--profile] [--json] [--debug]
 *        [--settings mtl,mtl+uw,mtl+pcgrad,...]
 *
 * The timed step is the trainer's own, measured the way `mtl-bench doctor` measures it
 * (src/train/throughput.ts); options and errors behave as in mtl-bench (src/cli/).
 * Each network trains at the input size it is studied at (convnet-s 32×32, convnet-4 64×64). With
 * --json every network is one JSON line; --profile adds the per-kernel times of a training step,
 * averaged over --steps profiled steps.
 * --kernels and --wasm-threads switch parts of mtl-bench's speed-ups off to measure each one.
 * --settings also times one training step of each multi-task setting (e.g. the balancing methods),
 * in interleaved rounds, and gives each one's cost relative to mtl.
 */
import * as tf from '@tensorflow/tfjs';
import { type Command, InvalidArgumentError } from 'commander';
import { describeWasmThreads } from '../src/cli/doctor.js';
import { backendOption, batchOption, jsonOption, stepsOption } from '../src/cli/options.js';
import { commaList, nonNegativeInt, positiveInt } from '../src/cli/parse.js';
import { createProgram, runProgram } from '../src/cli/program.js';
import { initBackend } from '../src/engine/backend.js';
import { type Setting, parseSetting } from '../src/config/settings.js';
import { CUSTOM_KERNEL_NAMES, customKernelsInUse, setCustomKernels } from '../src/engine/kernels/index.js';
import { MAX_WASM_THREADS } from '../src/engine/wasm_threads.js';
import { environmentReport } from '../src/train/doctor.js';
import { type StepCost, createTrainingHarness, measureStepCosts, measureThroughput } from '../src/train/throughput.js';
import { UserError } from '../src/util/errors.js';

/** The networks of the CPU-speed study and the input size each is measured at. */
const NETWORKS: Record<string, { inputSize: number }> = {
  'convnet-s': { inputSize: 32 },
  'convnet-4': { inputSize: 64 },
};

interface BenchOptions {
  backend?: string;
  kernels: string[];
  wasmThreads?: number;
  models: string[];
  batch: number;
  steps: number;
  warmup: number;
  repeats: number;
  profile?: boolean;
  json?: boolean;
  settings?: string[];
}

export interface KernelTime {
  kernel: string;
  calls: number;
  ms: number;
}

/**
 * Per-kernel time of a training step averaged over `steps` steps, largest first (tf.profile times
 * each kernel the engine runs; one step alone varies by ±15% on a shared machine). Entries named
 * `…__op` are composite ops whose time already includes the kernels they ran (e.g.
 * fusedConv2d__op around FusedConv2D), as is "unnamed scope" (a tf.customGrad op, such as the
 * training batch norm); they are left out so that nothing counts twice.
 */
async function profileSteps(step: () => void, steps: number): Promise<{ wallMs: number; kernels: KernelTime[] }> {
  const byName = new Map<string, KernelTime>();
  let wallMs = 0;
  for (let s = 0; s < steps; s++) {
    const start = performance.now();
    const info = await tf.profile(() => step());
    wallMs += performance.now() - start;
    for (const k of info.kernels) {
      if (k.name.endsWith('__op') || k.name === 'unnamed scope') continue;
      const entry = byName.get(k.name) ?? { kernel: k.name, calls: 0, ms: 0 };
      entry.calls += 1;
      entry.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      byName.set(k.name, entry);
    }
  }
  const perStep = [...byName.values()].map((k) => ({ ...k, calls: k.calls / steps, ms: k.ms / steps }));
  return { wallMs: wallMs / steps, kernels: perStep.sort((a, b) => b.ms - a.ms) };
}

async function bench(options: BenchOptions): Promise<void> {
  for (const model of options.models) {
    if (!NETWORKS[model]) throw new UserError(`--models: unknown network "${model}"; expected one of ${Object.keys(NETWORKS).join(', ')}`);
  }
  const kernelChoice = parseKernelChoice(options.kernels);
  const settings = options.settings ? parseSettings(options.settings) : undefined;
  // Read when the wasm backend first starts, inside initBackend.
  if (options.wasmThreads !== undefined) process.env.MTL_BENCH_WASM_THREADS = String(options.wasmThreads);
  const backend = await initBackend({ requested: options.backend });
  if (backend.tfName === 'wasm' || backend.tfName === 'cpu') {
    setCustomKernels(backend.tfName, kernelChoice);
  } else if (kernelChoice !== 'all') {
    throw new UserError(`--kernels: custom kernels exist only for the wasm and cpu backends, not "${backend.choice}"`);
  }
  const environment = environmentReport(backend);
  const threads = environment.wasmThreads;
  const kernelsInUse = customKernelsInUse(backend.tfName);
  const machine = environment.cpus;
  if (!options.json) {
    process.stdout.write(`backend ${environment.backend} (tfjs "${environment.tfBackend}")\n`);
    if (threads) process.stdout.write(`threads ${describeWasmThreads(threads)}\n`);
    process.stdout.write(`custom kernels: ${kernelsInUse.join(', ') || 'none'}\n`);
    process.stdout.write(`machine ${machine}, Node ${environment.node}, tfjs ${environment.tfjs}\n`);
    process.stdout.write(
      `batch ${options.batch}, ${options.warmup} warm-up steps, ${options.repeats} rounds of ${options.steps} timed steps (medians)\n`,
    );
  }
  for (const model of options.models) {
    const { inputSize } = NETWORKS[model]!;
    const result = await measureThroughput({
      backbone: model,
      inputSize,
      batch: options.batch,
      steps: options.steps,
      warmup: options.warmup,
      repeats: options.repeats,
    });
    let profile: Awaited<ReturnType<typeof profileSteps>> | undefined;
    if (options.profile) {
      const harness = await createTrainingHarness({ backbone: model, inputSize, batch: options.batch });
      try {
        harness.step();
        harness.step();
        profile = await profileSteps(() => harness.step(), options.steps);
      } finally {
        harness.dispose();
      }
    }
    const costs = settings
      ? await measureStepCosts({
          backbone: model,
          inputSize,
          batch: options.batch,
          steps: options.steps,
          warmup: options.warmup,
          repeats: options.repeats,
          settings,
        })
      : undefined;
    const reference = costs?.find((c) => c.setting === 'mtl') ?? costs?.[0];
    const record = {
      model,
      backend: backend.choice,
      input_size: inputSize,
      batch: options.batch,
      steps: options.steps,
      repeats: options.repeats,
      train_images_per_s: round(result.trainImagesPerSecond, 2),
      infer_images_per_s: round(result.inferImagesPerSecond, 2),
      train_rounds: result.trainRounds.map((r) => round(r, 2)),
      infer_rounds: result.inferRounds.map((r) => round(r, 2)),
      peak_rss_mb: round(result.peakRssMb, 1),
      forward_mflops_per_image: round((result.forwardMacsPerImage * 2) / 1e6, 2),
      gflops_per_s: round(result.trainGflopsPerSecond, 3),
      infer_gflops_per_s: round(result.inferGflopsPerSecond, 3),
      machine,
      ...(threads
        ? {
            wasm_threads: threads.threads,
            wasm_threads_chosen_by: threads.chosenBy,
            wasm_build: threads.build,
            wasm_helper_threads: threads.helpers ?? 0,
          }
        : {}),
      custom_kernels: kernelsInUse,
      ...(profile
        ? { profile_step_ms: round(profile.wallMs, 1), profile: profile.kernels.map((k) => ({ ...k, ms: round(k.ms, 2) })) }
        : {}),
      ...(costs
        ? {
            step_costs: costs.map((c) => ({
              setting: c.setting,
              step_ms: round(c.stepMs, 1),
              rounds_ms: c.rounds.map((r) => round(r, 1)),
              cpu_ms: round(c.cpuMs, 1),
              cpu_rounds_ms: c.cpuRounds.map((r) => round(r, 1)),
              relative_to: reference!.setting,
              ratio: round(relativeCost(c.rounds, reference!.rounds), 2),
              cpu_ratio: round(relativeCost(c.cpuRounds, reference!.cpuRounds), 2),
            })),
          }
        : {}),
    };
    if (options.json) {
      process.stdout.write(`${JSON.stringify(record)}\n`);
      continue;
    }
    process.stdout.write(
      `${model} ${inputSize}×${inputSize}: train ${record.train_images_per_s} images/s (rounds ${record.train_rounds.join(', ')}), ` +
        `inference ${record.infer_images_per_s} images/s, ${record.gflops_per_s} GFLOP/s training, peak RSS ${record.peak_rss_mb} MB\n`,
    );
    if (costs) printStepCosts(costs, reference!, options);
    if (profile) {
      const total = profile.kernels.reduce((s, k) => s + k.ms, 0);
      process.stdout.write(
        `  profiled training step (mean of ${options.steps}): ${profile.wallMs.toFixed(0)} ms wall, ${total.toFixed(0)} ms in kernels\n`,
      );
      for (const k of profile.kernels.filter((k) => k.ms >= 0.5)) {
        const share = ((100 * k.ms) / total).toFixed(1).padStart(5);
        process.stdout.write(`  ${k.kernel.padEnd(28)} ${k.ms.toFixed(1).padStart(8)} ms ${share}%  ${k.calls} calls\n`);
      }
    }
  }
}

/** --settings: names of the settings grammar, each multi-task. */
function parseSettings(items: string[]): Setting[] {
  return items.map((item) => {
    const parsed = parseSetting(item);
    if (!parsed.ok) throw new UserError(`--settings: ${parsed.problem}`);
    if (!parsed.spec.multiTask)
      throw new UserError(`--settings: "${item}" trains one network per task; step costs are measured for multi-task settings`);
    return parsed.setting;
  });
}

/** The median over rounds of a setting's step time relative to the reference's in the same round. */
function relativeCost(rounds: readonly number[], referenceRounds: readonly number[]): number {
  const ratios = rounds.map((r, i) => r / referenceRounds[i]!).sort((a, b) => a - b);
  const mid = Math.floor(ratios.length / 2);
  return ratios.length % 2 === 1 ? ratios[mid]! : (ratios[mid - 1]! + ratios[mid]!) / 2;
}

function printStepCosts(costs: StepCost[], reference: StepCost, options: BenchOptions): void {
  process.stdout.write(
    `  one training step by setting: wall and CPU time, medians of ${options.repeats} interleaved rounds of ${options.steps} steps; ` +
      `ratios: medians of the per-round ratios to ${reference.setting}:\n`,
  );
  const width = Math.max(...costs.map((c) => c.setting.length));
  for (const c of costs) {
    const wall = `${c.stepMs.toFixed(1).padStart(8)} ms wall ×${relativeCost(c.rounds, reference.rounds).toFixed(2)}`;
    const cpu = `${c.cpuMs.toFixed(1).padStart(8)} ms CPU ×${relativeCost(c.cpuRounds, reference.cpuRounds).toFixed(2)}`;
    process.stdout.write(`  ${c.setting.padEnd(width)} ${wall}  ${cpu}\n`);
  }
}

/** --kernels: 'all', 'none' or a comma-separated subset of CUSTOM_KERNEL_NAMES. */
function parseKernelChoice(items: string[]): 'all' | 'none' | string[] {
  if (items.length === 1 && (items[0] === 'all' || items[0] === 'none')) return items[0];
  for (const item of items) {
    if (!CUSTOM_KERNEL_NAMES.includes(item)) {
      throw new UserError(`--kernels: unknown kernel "${item}"; expected all, none or a list of ${CUSTOM_KERNEL_NAMES.join(', ')}`);
    }
  }
  return items;
}

function threadCount(value: string): number {
  const n = positiveInt(value);
  if (n > MAX_WASM_THREADS) throw new InvalidArgumentError(`expected at most ${MAX_WASM_THREADS}, got "${value}"`);
  return n;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function buildProgram(): Command {
  return createProgram({ name: 'bench-train', description: 'training and inference throughput of the CPU backbones on random data' })
    .addOption(backendOption())
    .option(
      '--kernels <list>',
      `mtl-bench's kernels to use on wasm/cpu: all, none, or some of ${CUSTOM_KERNEL_NAMES.join(',')}`,
      commaList,
      ['all'],
    )
    .option(
      '--wasm-threads <n>',
      "threads of the wasm backend (1 = tfjs's single-threaded build; " +
        `default: MTL_BENCH_WASM_THREADS, else the idle cores, at most ${MAX_WASM_THREADS})`,
      threadCount,
    )
    .option('--models <list>', `comma-separated networks (${Object.keys(NETWORKS).join(', ')})`, commaList, Object.keys(NETWORKS))
    .addOption(batchOption())
    .addOption(stepsOption())
    .option('--warmup <n>', 'untimed steps before timing', nonNegativeInt, 2)
    .option('--repeats <n>', 'timed rounds of --steps steps each; rates are medians over rounds', positiveInt, 3)
    .option('--profile', 'also print per-kernel times of a training step, averaged over --steps steps (tf.profile)')
    .option(
      '--settings <list>',
      'also time one training step of each of these multi-task settings, e.g. mtl,mtl+uw,mtl+pcgrad,mtl+famo, relative to mtl',
      commaList,
    )
    .addOption(jsonOption('one JSON object per network'))
    .action((options: BenchOptions) => bench(options));
}

process.exitCode = await runProgram(buildProgram(), process.argv.slice(2));
