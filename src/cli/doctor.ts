import type { Command } from 'commander';
import { gpuNotUsedLine } from '../engine/gpu.js';
import type { DoctorReport } from '../train/doctor.js';
import { backendOption, batchOption, jsonOption, stepsOption } from './options.js';
import { paint } from './output.js';
import { positiveInt } from './parse.js';

interface DoctorCommandOptions {
  backend?: string;
  json?: boolean;
  batch: number;
  size: number;
  steps: number;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The wasm thread setup in one line (also the benchmark script's). */
export function describeWasmThreads(status: NonNullable<DoctorReport['wasmThreads']>): string {
  const build = `${status.build} build${status.reason ? `: ${status.reason}` : ''}`;
  const helpers =
    status.helpers === undefined
      ? ''
      : `, ${plural(status.helpers, 'helper thread')}${status.helpersReason ? ` (${status.helpersReason})` : ''}`;
  const threads = plural(status.threads, 'wasm thread');
  return `${threads} (chosen by ${status.chosenBy}; ${build})${helpers}; set MTL_BENCH_WASM_THREADS to change`;
}

const CHOSEN_BY: Record<DoctorReport['chosenBy'], string> = { auto: 'preference', flag: '--backend', env: 'MTL_BENCH_BACKEND' };

function formatDoctorReport(report: DoctorReport): string {
  const { throughput } = report;
  const lines = [
    `${paint.bold('backend')}     ${paint.green(report.backend)} (tfjs "${report.tfBackend}", chosen by ${CHOSEN_BY[report.chosenBy]})`,
    ...report.skipped.map((s) => `  skipped   ${s.choice}: ${s.reason}`),
    ...(report.gpu
      ? [
          `${paint.bold('gpu')}         ` +
            `${report.gpu.used ? paint.green('used: TensorFlow runs on a CUDA device') : paint.yellow(gpuNotUsedLine(report.gpu)!)}`,
        ]
      : []),
    ...report.warnings.map((w) => `${paint.bold('warning')}     ${paint.yellow(w)}`),
    `${paint.bold('cache')}       ${report.home}${report.homeChosenBy === 'MTL_BENCH_HOME' ? ' (MTL_BENCH_HOME)' : ''}`,
    ...(report.wasmThreads ? [`${paint.bold('threads')}     ${describeWasmThreads(report.wasmThreads)}`] : []),
    `${paint.bold('runtime')}     Node ${report.node}, tfjs ${report.tfjs}, ${report.cpus}`,
    `${paint.bold('throughput')}  ${throughput.model} ${throughput.inputSize}×${throughput.inputSize}, batch ${throughput.batch}: ` +
      `train ${throughput.trainImagesPerSecond.toFixed(1)} images/s, inference ${throughput.inferImagesPerSecond.toFixed(1)} images/s ` +
      `(${throughput.trainGflopsPerSecond.toFixed(2)} GFLOP/s training, peak RSS ${throughput.peakRssMb.toFixed(0)} MB)`,
  ];
  return lines.join('\n');
}

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('show the training backend, the cache folder and a measured training throughput')
    .addOption(backendOption())
    .addOption(batchOption())
    .option('--size <pixels>', 'input size of the throughput measurement', positiveInt, 32)
    .addOption(stepsOption())
    .addOption(jsonOption('print one JSON object instead of text'))
    .action(async (opts: DoctorCommandOptions) => {
      // Loaded on demand: TensorFlow.js takes seconds to import, and `--help` should not wait for it.
      const { doctor } = await import('../train/doctor.js');
      const report = await doctor(opts);
      process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : `${formatDoctorReport(report)}\n`);
    });
}
