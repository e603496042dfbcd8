import cliProgress from 'cli-progress';
import type { EpochRecord } from './types.js';

export type ProgressMode = 'bar' | 'quiet' | 'jsonl';

export interface EpochStart {
  /** 'mtl', or the task of an stl network. */
  unit: string;
  epoch: number;
  epochs: number;
  steps: number;
}

export interface ProgressReporter {
  startEpoch(info: EpochStart): void;
  step(done: number, loss: number, imagesPerSecond: number): void;
  endEpoch(unit: string, record: EpochRecord): void;
  note(unit: string, message: string): void;
  finish(unit: string, test: Record<string, Record<string, number>>, bestEpoch: number): void;
}

function formatMetrics(metrics: Record<string, Record<string, number>>): string {
  return Object.entries(metrics)
    .map(([task, values]) => `${task} ${Object.entries(values).map(([name, v]) => `${name} ${Number.isFinite(v) ? v.toFixed(3) : 'n/a'}`).join(' ')}`)
    .join(' | ');
}

/** One cli-progress bar per epoch (loss, images/s, ETA) and a summary line after it. */
class BarProgress implements ProgressReporter {
  private bar: cliProgress.SingleBar | undefined;
  private readonly stream: NodeJS.WritableStream;

  constructor(stream: NodeJS.WritableStream) {
    this.stream = stream;
  }

  startEpoch(info: EpochStart): void {
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream as NodeJS.WriteStream,
        format: `${info.unit} epoch ${info.epoch}/${info.epochs} [{bar}] {value}/{total} | loss {loss} | {speed} img/s | ETA {eta_formatted}`,
        barsize: 24,
        hideCursor: false,
        clearOnComplete: false,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(info.steps, 0, { loss: '-', speed: '-' });
  }

  step(done: number, loss: number, imagesPerSecond: number): void {
    this.bar?.update(done, { loss: loss.toFixed(4), speed: imagesPerSecond.toFixed(0) });
  }

  endEpoch(unit: string, record: EpochRecord): void {
    this.bar?.stop();
    this.bar = undefined;
    this.stream.write(`${unit} epoch ${record.epoch}: loss ${record.loss.toFixed(4)}, ${record.imagesPerSecond.toFixed(0)} img/s, ${record.seconds.toFixed(1)} s | val ${formatMetrics(record.val)}\n`);
  }

  note(unit: string, message: string): void {
    this.stream.write(`${unit}: ${message}\n`);
  }

  finish(unit: string, test: Record<string, Record<string, number>>, bestEpoch: number): void {
    this.stream.write(`${unit}: best epoch ${bestEpoch} | test ${formatMetrics(test)}\n`);
  }
}

/** One JSON object per line: {"event":"epoch"|"note"|"test", "unit", ...}. NaN metrics are written as null. */
class JsonLinesProgress implements ProgressReporter {
  private readonly stream: NodeJS.WritableStream;

  constructor(stream: NodeJS.WritableStream) {
    this.stream = stream;
  }

  private emit(event: Record<string, unknown>): void {
    this.stream.write(`${JSON.stringify(event)}\n`);
  }

  startEpoch(): void {}

  step(): void {}

  endEpoch(unit: string, record: EpochRecord): void {
    this.emit({ event: 'epoch', unit, ...record });
  }

  note(unit: string, message: string): void {
    this.emit({ event: 'note', unit, message });
  }

  finish(unit: string, test: Record<string, Record<string, number>>, bestEpoch: number): void {
    this.emit({ event: 'test', unit, bestEpoch, test });
  }
}

class QuietProgress implements ProgressReporter {
  startEpoch(): void {}
  step(): void {}
  endEpoch(): void {}
  note(): void {}
  finish(): void {}
}

export function createProgress(mode: ProgressMode, stream: NodeJS.WritableStream = process.stderr): ProgressReporter {
  switch (mode) {
    case 'bar':
      return new BarProgress(stream);
    case 'jsonl':
      return new JsonLinesProgress(stream);
    case 'quiet':
      return new QuietProgress();
    default:
      throw new Error(`unknown progress mode ${String(mode)}`);
  }
}
