import cliProgress from 'cli-progress';
import type { EpochStart, ProgressReporter } from '../train/progress.js';
import { formatDuration } from '../util/format.js';
import type { RunReporter } from './runner.js';

/**
 * What a person at a terminal sees while `run --jobs` trains several cells at once: a line per
 * running cell (its epoch, step, loss and speed) under a line for the study (cells done, time
 * left), with the cells' epoch summaries and the run's messages scrolling above them.
 */
export interface LivePanel {
  /** A line printed above the bars. */
  log(line: string): void;
  /** The progress of the cell `label` running in job `slot`, drawn on that job's line. */
  cellProgress(slot: number, label: string): ProgressReporter;
  /** The run's reporter, with the study line kept up to date from its cell events. */
  track(reporter: RunReporter): RunReporter;
  stop(): void;
}

type Bar = cliProgress.SingleBar;

/** Cut to the terminal's width less one column (a full-width line wraps on some terminals). */
function fit(text: string, columns: number | undefined): string {
  if (!columns || text.length < columns) return text;
  return `${text.slice(0, Math.max(0, columns - 2))}…`;
}

export function livePanel(stream: NodeJS.WriteStream, jobs: number): LivePanel {
  const columns = () => stream.columns || undefined;
  const multibar = new cliProgress.MultiBar(
    {
      stream,
      format: '{text}',
      hideCursor: false,
      clearOnComplete: false,
      gracefulExit: false,
      autopadding: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const studyBar: Bar = multibar.create(1, 0, { text: 'study: starting' });
  const jobBars: Bar[] = Array.from({ length: jobs }, (_, slot) => multibar.create(1, 0, { text: `job ${slot + 1}: waiting` }));
  let done = 0;
  let total = 0;
  let eta: number | undefined;

  const drawStudy = () => {
    const left = eta !== undefined ? `, about ${formatDuration(eta)} left` : '';
    studyBar.update(done, { text: fit(`study: ${done}/${total} cells done, ${jobs} jobs${left}`, columns()) });
  };

  const log = (line: string) => multibar.log(`${line}\n`);

  return {
    log,
    cellProgress(slot, label) {
      const bar = jobBars[slot % jobBars.length]!;
      let epoch: EpochStart | undefined;
      const draw = (detail: string) => bar.update(0, { text: fit(`${label} ${detail}`, columns()) });
      return {
        startEpoch(info) {
          epoch = info;
          draw(`${info.unit} epoch ${info.epoch}/${info.epochs} 0/${info.steps}`);
        },
        step(stepsDone, loss, imagesPerSecond) {
          if (!epoch) return;
          const width = 16;
          const filled = Math.round((stepsDone / epoch.steps) * width);
          const gauge = `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
          draw(
            `${epoch.unit} epoch ${epoch.epoch}/${epoch.epochs} ${gauge} ${stepsDone}/${epoch.steps} | loss ${loss.toFixed(4)} | ` +
              `${imagesPerSecond.toFixed(0)} img/s`,
          );
        },
        endEpoch(unit, record) {
          const val = Object.entries(record.val)
            .map(([task, values]) => `${task} ${Object.entries(values).map(([name, v]) => `${name} ${(v * 100).toFixed(2)}%`)[0] ?? ''}`)
            .join(', ');
          log(fit(`${label} ${unit} epoch ${record.epoch}: loss ${record.loss.toFixed(4)}, val ${val}`, columns()));
        },
        checkpoint() {},
        note(unit, message) {
          log(`${label} ${unit}: ${message}`);
        },
        finish(unit, _test, bestEpoch) {
          draw(`${unit} finished (best epoch ${bestEpoch})`);
        },
      };
    },
    track(reporter) {
      return {
        ...reporter,
        benchmarkStart(info) {
          total = info.toRun;
          done = 0;
          eta = undefined;
          studyBar.setTotal(Math.max(1, total));
          drawStudy();
          reporter.benchmarkStart(info);
        },
        cellStart(info) {
          eta = info.etaSeconds;
          drawStudy();
          reporter.cellStart(info);
        },
        cellEnd(outcome) {
          done++;
          if (done >= total) eta = undefined;
          drawStudy();
          reporter.cellEnd(outcome);
        },
      };
    },
    stop() {
      // MultiBar prints logged lines only when it redraws on its timer, and stop() does not: redraw
      // once, or the last epoch summaries before the end are lost.
      multibar.update();
      multibar.stop();
    },
  };
}
