import cliProgress from 'cli-progress';
import { formatBytes, formatClock } from '../util/format.js';

/** Progress of one long step (a download in bytes, a cache build in images). */
export interface Progress {
  update(value: number): void;
  stop(): void;
}

export type ProgressUnit = 'bytes' | 'images';
export type ProgressFactory = (label: string, total: number | undefined, unit: ProgressUnit) => Progress;

export const silentProgress: ProgressFactory = () => ({ update() {}, stop() {} });

/**
 * A progress bar on stderr for a person at a terminal (bytes or images, rate and ETA); nothing
 * at all when stderr is piped, so logs and CI output stay clean.
 */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): ProgressFactory {
  if (!stream.isTTY) return silentProgress;
  return (label, total, unit) => {
    const started = Date.now();
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: total ? `${label} [{bar}] {percentage}% | {done}/{all} | {rate} | ETA {remaining}` : `${label} {done} | {rate}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    const show = (value: number) => (unit === 'bytes' ? formatBytes(value) : String(value));
    const payload = (value: number) => {
      const seconds = (Date.now() - started) / 1000;
      const perSecond = seconds > 0 ? value / seconds : 0;
      const remaining = total && perSecond > 0 ? (total - value) / perSecond : NaN;
      return {
        done: show(value),
        all: total ? show(total) : '?',
        rate: unit === 'bytes' ? `${formatBytes(perSecond)}/s` : `${perSecond.toFixed(0)} img/s`,
        remaining: formatClock(remaining),
      };
    };
    bar.start(total ?? 0, 0, payload(0));
    return {
      update(value) {
        bar.update(value, payload(value));
      },
      stop() {
        bar.stop();
      },
    };
  };
}
