import type { ChalkInstance } from 'chalk';
import { fitParts, formatDuration } from '../util/format.js';
import type { CellOutcome, RunReporter } from './runner.js';

/** Each task's primary test metric in percent, as the reports show it. */
function headline(outcome: CellOutcome): string[] {
  const metrics = outcome.metrics;
  if (!metrics) return [];
  return outcome.cell.config.tasks.map((t) => {
    const v = metrics.test[t.name]?.[t.primary];
    return `${t.name} ${t.primary} ${typeof v === 'number' ? `${(v * 100).toFixed(2)}%` : '?'}`;
  });
}

/**
 * One line per cell on stderr, so stdout keeps only the summary table. With `columns` (a
 * terminal's width) a line that would wrap continues on an indented line instead.
 */
export function textReporter(write: (line: string) => void, paint: ChalkInstance, columns?: number): RunReporter {
  return {
    benchmarkStart({ benchmark, dir, cells, toRun, skipped, reused, refused, shard }) {
      const shardText = shard ? ` (shard ${shard.index}/${shard.count})` : '';
      const reusedText = reused > 0 ? `, ${reused} reused` : '';
      const refusedText = refused > 0 ? `, ${paint.yellow(`${refused} refused`)}` : '';
      write(
        `${paint.bold(benchmark)}: ${cells} cells${shardText}, ${skipped} already done${reusedText}, ${toRun} to run${refusedText} → ${dir}`,
      );
    },
    cellStart({ cell, position, toRun, etaSeconds }) {
      const eta = etaSeconds !== undefined ? paint.dim(` (about ${formatDuration(etaSeconds)} left)`) : '';
      write(`[${position}/${toRun}] ${paint.cyan(cell.id)} …${eta}`);
    },
    cellEnd(outcome) {
      const where = `[${outcome.position}/${outcome.toRun}] ${paint.cyan(outcome.cell.id)}`;
      if (outcome.status === 'done') {
        // Measured without colour codes, painted after.
        const plainWhere = `[${outcome.position}/${outcome.toRun}] ${outcome.cell.id}`;
        const lines = fitParts([`${plainWhere} done in ${formatDuration(outcome.wallSeconds ?? 0)}`, ...headline(outcome)], columns);
        lines[0] = lines[0]!.replace(plainWhere, where).replace(' done in ', ` ${paint.green('done')} in `);
        for (const line of lines) write(line);
      } else if (outcome.status === 'failed')
        write(`${where} ${paint.red('FAILED')}: ${outcome.error?.message.split('\n')[0]} (see ${outcome.dir}/error.json)`);
      else if (outcome.status === 'interrupted')
        write(`${where} ${paint.yellow('interrupted')}: ${outcome.note ? `${outcome.note}; ` : ''}run the same command again to resume`);
      else if (outcome.status === 'busy') write(`${where} ${paint.yellow('skipped')}: ${outcome.note}`);
      else if (outcome.status === 'skipped') write(`${where} skipped: ${outcome.note ?? 'already done'}`);
    },
    benchmarkEnd({ benchmark, outcomes }) {
      const count = (s: string) => outcomes.filter((o) => o.status === s).length;
      const failed = count('failed');
      const others = (['busy', 'refused', 'interrupted'] as const)
        .filter((s) => count(s) > 0)
        .map((s) => paint.yellow(`${count(s)} ${{ busy: 'left to another process', refused: 'refused', interrupted: 'interrupted' }[s]}`));
      const tally = [
        `${count('done')} trained`,
        `${count('skipped')} already done`,
        ...(count('reused') > 0 ? [`${count('reused')} reused`] : []),
        failed > 0 ? paint.red(`${failed} failed`) : '0 failed',
        ...others,
      ];
      write(`${paint.bold(benchmark)}: ${tally.join(', ')}`);
    },
    notice({ message }) {
      write(paint.yellow(message));
    },
  };
}

/** JSON lines on stdout for scripts and CI: one event object per line. */
export function jsonReporter(write: (line: string) => void): RunReporter {
  const emit = (event: Record<string, unknown>) => write(JSON.stringify(event));
  return {
    benchmarkStart({ benchmark, dir, cells, toRun, skipped, reused, refused, shard }) {
      emit({
        event: 'benchmark-start',
        benchmark,
        dir,
        cells,
        toRun,
        skipped,
        reused,
        refused,
        shard: shard ? `${shard.index}/${shard.count}` : null,
      });
    },
    cellStart({ benchmark, cell, position, toRun, etaSeconds }) {
      emit({ event: 'cell-start', benchmark, cell: cell.id, hash: cell.hash, position, toRun, etaSeconds: etaSeconds ?? null });
    },
    cellEnd(o) {
      emit({
        event: `cell-${o.status}`,
        benchmark: o.benchmark,
        cell: o.cell.id,
        dir: o.dir,
        position: o.position,
        toRun: o.toRun,
        wallSeconds: o.wallSeconds ?? null,
        test: o.metrics?.test ?? null,
        error: o.error?.message ?? null,
        ...(o.note ? { note: o.note } : {}),
      });
    },
    benchmarkEnd({ benchmark, dir, outcomes }) {
      const count = (s: string) => outcomes.filter((o) => o.status === s).length;
      emit({
        event: 'benchmark-end',
        benchmark,
        dir,
        done: count('done'),
        skipped: count('skipped'),
        reused: count('reused'),
        failed: count('failed'),
        interrupted: count('interrupted'),
        busy: count('busy'),
        refused: count('refused'),
      });
    },
    notice({ benchmark, message }) {
      emit({ event: 'notice', benchmark, message });
    },
  };
}
