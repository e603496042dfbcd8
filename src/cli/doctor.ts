import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../engine/backend.js';
import { type WasmThreadsStatus, wasmThreadsStatus } from '../engine/wasm_threads.js';
import { DEFAULT_BACKBONE } from '../model/backbones.js';
import { measureThroughput } from '../train/throughput.js';
import { mtlBenchHome } from '../util/paths.js';
import { paint } from './output.js';

export interface DoctorOptions {
  backend?: string;
  json?: boolean;
  steps: number;
  batch: number;
  size: number;
}

function describeWasmThreads(status: WasmThreadsStatus): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const build = `${status.build} build${status.reason ? `: ${status.reason}` : ''}`;
  const helpers = status.helpers === undefined ? '' : `, ${plural(status.helpers, 'helper thread')}${status.helpersReason ? ` (${status.helpersReason})` : ''}`;
  return `${plural(status.threads, 'wasm thread')} (chosen by ${status.chosenBy}; ${build})${helpers}; set MTL_BENCH_WASM_THREADS to change`;
}

export async function doctorCommand(options: DoctorOptions): Promise<void> {
  const backend = await initBackend({ requested: options.backend });
  const throughput = await measureThroughput({ backbone: DEFAULT_BACKBONE, inputSize: options.size, batch: options.batch, steps: options.steps });
  const report = {
    backend: backend.choice,
    tfBackend: backend.tfName,
    chosenBy: backend.source,
    skipped: backend.skipped,
    home: mtlBenchHome(),
    node: process.version,
    tfjs: tf.version.tfjs,
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
    ...(backend.tfName === 'wasm' ? { wasmThreads: wasmThreadsStatus() } : {}),
    throughput,
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const lines = [
    `${paint.bold('backend')}     ${paint.green(backend.choice)} (tfjs "${backend.tfName}", chosen by ${backend.source === 'auto' ? 'preference' : backend.source === 'flag' ? '--backend' : 'MTL_BENCH_BACKEND'})`,
    ...backend.skipped.map((s) => `  skipped   ${s.choice}: ${s.reason}`),
    `${paint.bold('cache')}       ${report.home}${process.env.MTL_BENCH_HOME ? ' (MTL_BENCH_HOME)' : ''}`,
    ...(report.wasmThreads ? [`${paint.bold('threads')}     ${describeWasmThreads(report.wasmThreads)}`] : []),
    `${paint.bold('runtime')}     Node ${report.node}, tfjs ${report.tfjs}, ${report.cpus}`,
    `${paint.bold('throughput')}  ${throughput.model} ${throughput.inputSize}×${throughput.inputSize}, batch ${throughput.batch}: ` +
      `train ${throughput.trainImagesPerSecond.toFixed(1)} images/s, inference ${throughput.inferImagesPerSecond.toFixed(1)} images/s ` +
      `(${throughput.trainGflopsPerSecond.toFixed(2)} GFLOP/s training, peak RSS ${throughput.peakRssMb.toFixed(0)} MB)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
