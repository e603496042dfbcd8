import cliProgress from 'cli-progress';
import { fitParts, formatDuration } from '../util/format.js';
import type { EpochRecord } from './types.js';

/**
 * 'bar': a live bar per epoch, for a person at a terminal. 'lines': one plain line per epoch and
 * per checkpoint, for logs (Slurm, Kubernetes, CI) where a bar is noise and silence is worse.
 * 'jsonl': one JSON object per epoch. 'quiet': nothing.
 */
export type ProgressMode = 'bar' | 'lines' | 'quiet' | 'jsonl';

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
  /** The unit's checkpoint after `epochsDone` epochs is on disk. */
  checkpoint(unit: string, file: string, epochsDone: number): void;
  note(unit: string, message: string): void;
  finish(unit: string, test: Record<string, Record<string, number>>, bestEpoch: number): void;
}

export interface ProgressOptions {
  /** Put before every line, e.g. the cell's id, so a log can be searched per cell. */
  label?: string;
}

/** Metrics in percent with two decimals, as the reports show them. */
function formatMetrics(metrics: Record<string, Record<string, number>>): string {
  return Object.entries(metrics)
    .map(
      ([task, values]) =>
        `${task} ${Object.entries(values)
          .map(([name, v]) => `${name} ${Number.isFinite(v) ? `${(v * 100).toFixed(2)}%` : 'n/a'}`)
          .join(' ')}`,
    )
    .join(' | ');
}

/** Each loss term of the epoch (the per-group sums sca and dm are left out: their parts are shown). */
function formatTerms(record: EpochRecord): string {
  const terms = Object.entries(record.terms).filter(([name]) => name.includes(':'));
  if (terms.length === 0) return `loss ${record.loss.toFixed(4)}`;
  return `loss ${record.loss.toFixed(4)} (${terms.map(([name, v]) => `${name} ${v.toFixed(4)}`).join(', ')})`;
}

/** The longest an ETA from cli-progress gets in practice, e.g. "1h23m". */
const ETA_WIDTH = 6;

/**
 * The bar's format for a terminal of `columns`: the bar takes what the text leaves, the speed is
 * dropped before the ETA is cut, and below a usable bar width the bar itself goes.
 */
export function barFormat(info: EpochStart, columns: number | undefined): { format: string; barsize: number } {
  const head = `${info.unit} epoch ${info.epoch}/${info.epochs}`;
  const count = `${info.steps}/${info.steps}`;
  const layouts = [
    // fixed: the text's widest rendering (a loss of 8 characters, 5 for the speed)
    { text: ` ${count} | loss {loss} | {speed} img/s | ETA {eta_formatted}`, fixed: count.length + 38 + ETA_WIDTH },
    { text: ` ${count} | loss {loss} | ETA {eta_formatted}`, fixed: count.length + 24 + ETA_WIDTH },
  ].map((l) => ({ ...l, text: l.text.replace(count, '{value}/{total}') }));
  if (!columns) return { format: `${head} [{bar}]${layouts[0]!.text}`, barsize: 24 };
  // One column spare: a line as wide as the terminal wraps on some terminals.
  const room = columns - 1 - head.length - 3;
  for (const layout of layouts) {
    const barsize = Math.min(24, room - layout.fixed);
    if (barsize >= 8) return { format: `${head} [{bar}]${layout.text}`, barsize };
  }
  const withLoss = layouts[1]!;
  if (head.length + withLoss.fixed < columns) return { format: `${head}${withLoss.text}`, barsize: 0 };
  return { format: `${head} {value}/{total} | ETA {eta_formatted}`, barsize: 0 };
}

/** One cli-progress bar per epoch (loss, images/s, ETA), fitted to the terminal, and a summary after it. */
class BarProgress implements ProgressReporter {
  private bar: cliProgress.SingleBar | undefined;
  private readonly stream: NodeJS.WritableStream;

  constructor(stream: NodeJS.WritableStream) {
    this.stream = stream;
  }

  private get columns(): number | undefined {
    return (this.stream as NodeJS.WriteStream).columns || undefined;
  }

  startEpoch(info: EpochStart): void {
    const { format, barsize } = barFormat(info, this.columns);
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream as NodeJS.WriteStream,
        format,
        barsize,
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
    const parts = [
      `${unit} epoch ${record.epoch}: ${formatTerms(record)}`,
      `${record.imagesPerSecond.toFixed(0)} img/s, ${record.seconds.toFixed(1)} s`,
      ...formatMetrics(record.val)
        .split(' | ')
        .map((p, i) => (i === 0 ? `val ${p}` : p)),
    ];
    for (const line of fitParts(parts, this.columns)) this.stream.write(`${line}\n`);
  }

  checkpoint(): void {}

  note(unit: string, message: string): void {
    this.stream.write(`${unit}: ${message}\n`);
  }

  finish(unit: string, test: Record<string, Record<string, number>>, bestEpoch: number): void {
    const parts = [
      `${unit}: best epoch ${bestEpoch}`,
      ...formatMetrics(test)
        .split(' | ')
        .map((p, i) => (i === 0 ? `test ${p}` : p)),
    ];
    for (const line of fitParts(parts, this.columns)) this.stream.write(`${line}\n`);
  }
}

/**
 * Plain lines for logs: one per epoch (losses by term, validation metrics, images/s, the epoch's
 * time and the time since the network started here) and one per checkpoint written.
 */
class LineProgress implements ProgressReporter {
  private readonly stream: NodeJS.WritableStream;
  private readonly prefix: string;
  private readonly startedAt = new Map<string, number>();
  private epochs = 0;

  constructor(stream: NodeJS.WritableStream, label: string | undefined) {
    this.stream = stream;
    this.prefix = label ? `${label} ` : '';
  }

  private write(line: string): void {
    this.stream.write(`${this.prefix}${line}\n`);
  }

  startEpoch(info: EpochStart): void {
    if (!this.startedAt.has(info.unit)) this.startedAt.set(info.unit, performance.now());
    this.epochs = info.epochs;
  }

  step(): void {}

  endEpoch(unit: string, record: EpochRecord): void {
    const elapsed = (performance.now() - (this.startedAt.get(unit) ?? performance.now())) / 1000;
    this.write(
      `${unit} epoch ${record.epoch}/${this.epochs}: ${formatTerms(record)} | val ${formatMetrics(record.val)} | ` +
        `${record.imagesPerSecond.toFixed(0)} img/s | epoch ${formatDuration(record.seconds)}, elapsed ${formatDuration(elapsed)}`,
    );
  }

  checkpoint(unit: string, file: string, epochsDone: number): void {
    this.write(`${unit}: checkpoint after epoch ${epochsDone} written to ${file}`);
  }

  note(unit: string, message: string): void {
    this.write(`${unit}: ${message}`);
  }

  finish(unit: string, test: Record<string, Record<string, number>>, bestEpoch: number): void {
    this.write(`${unit}: best epoch ${bestEpoch} | test ${formatMetrics(test)}`);
  }
}

/** One JSON object per line: {"event":"epoch"|"note"|"test", "unit", ..., "label"}. NaN metrics are written as null. */
class JsonLinesProgress implements ProgressReporter {
  private readonly stream: NodeJS.WritableStream;
  private readonly label: string | undefined;

  constructor(stream: NodeJS.WritableStream, label: string | undefined) {
    this.stream = stream;
    this.label = label;
  }

  // The label tells apart the lines of cells that train at once (`run --jobs`).
  private emit(event: Record<string, unknown>): void {
    const labelled = this.label ? { ...event, label: this.label } : event;
    this.stream.write(`${JSON.stringify(labelled)}\n`);
  }

  startEpoch(): void {}

  step(): void {}

  endEpoch(unit: string, record: EpochRecord): void {
    this.emit({ event: 'epoch', unit, ...record });
  }

  checkpoint(): void {}

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
  checkpoint(): void {}
  note(): void {}
  finish(): void {}
}

export function createProgress(
  mode: ProgressMode,
  stream: NodeJS.WritableStream = process.stderr,
  options: ProgressOptions = {},
): ProgressReporter {
  switch (mode) {
    case 'bar':
      return new BarProgress(stream);
    case 'lines':
      return new LineProgress(stream, options.label);
    case 'jsonl':
      return new JsonLinesProgress(stream, options.label);
    case 'quiet':
      return new QuietProgress();
    default:
      throw new Error(`unknown progress mode ${String(mode)}`);
  }
}
