import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { livePanel } from '../../src/bench/live_panel.js';
import type { RunReporter } from '../../src/bench/runner.js';
import type { EpochRecord } from '../../src/train/types.js';

/** A terminal of `columns` columns that keeps what was written, with the cursor movements removed. */
function fakeTerminal(columns: number) {
  let written = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: true, columns, rows: 40 });
  const text = () => written.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
  return { stream, text };
}

function recordingReporter(calls: string[]): RunReporter {
  return {
    benchmarkStart: () => calls.push('benchmarkStart'),
    cellStart: () => calls.push('cellStart'),
    cellEnd: () => calls.push('cellEnd'),
    benchmarkEnd: () => calls.push('benchmarkEnd'),
    notice: () => calls.push('notice'),
  };
}

const cell = { id: 'full.mtl.seed1' } as Parameters<RunReporter['cellStart']>[0]['cell'];

test('the live panel draws a line per job under the study line, prints epoch summaries above them, and passes events on', () => {
  const { stream, text } = fakeTerminal(200);
  const panel = livePanel(stream, 2);
  const calls: string[] = [];
  const reporter = panel.track(recordingReporter(calls));
  reporter.benchmarkStart({ benchmark: 'b', dir: 'd', cells: 3, toRun: 3, skipped: 0, reused: 0, refused: 0 });
  reporter.cellStart({ benchmark: 'b', cell, position: 1, toRun: 3, etaSeconds: 90 });
  const first = panel.cellProgress(0, '[full.mtl.seed1]');
  const second = panel.cellProgress(1, '[full.mtl.seed2]');
  first.startEpoch({ unit: 'mtl', epoch: 1, epochs: 2, steps: 8 });
  first.step(4, 0.5, 120);
  second.startEpoch({ unit: 'mtl', epoch: 2, epochs: 2, steps: 8 });
  first.endEpoch('mtl', { epoch: 1, loss: 0.25, val: { group: { accuracy: 0.75 } } } as unknown as EpochRecord);
  reporter.cellEnd({ benchmark: 'b', position: 1, toRun: 3 } as Parameters<RunReporter['cellEnd']>[0]);
  panel.stop();

  const shown = text();
  // Bars redraw on a timer, so a synchronous test sees the final frame (drawn by stop) and the logged lines.
  assert.match(shown, /study: 1\/3 cells done, 2 jobs, about 1m30s left/);
  assert.match(shown, /\[full\.mtl\.seed1\] mtl epoch 1\/2 \[█{8}░{8}\] 4\/8 \| loss 0\.5000 \| 120 img\/s/);
  assert.match(shown, /\[full\.mtl\.seed2\] mtl epoch 2\/2 0\/8/);
  assert.match(shown, /\[full\.mtl\.seed1\] mtl epoch 1: loss 0\.2500, val group accuracy 75\.00%/);
  assert.deepEqual(calls, ['benchmarkStart', 'cellStart', 'cellEnd']);
});

test('a live line longer than the terminal is cut to its width less one column', () => {
  const { stream, text } = fakeTerminal(40);
  const panel = livePanel(stream, 1);
  const progress = panel.cellProgress(0, '[a-rather-long-regime-name.mtl+sca+dm.seed1]');
  progress.startEpoch({ unit: 'mtl', epoch: 1, epochs: 15, steps: 42 });
  panel.stop();
  const lines = text()
    .split(/[\r\n]/)
    .filter((line) => line.includes('[a-rather'));
  assert.ok(lines.length > 0);
  for (const line of lines) assert.ok(line.length <= 39, `"${line}" has ${line.length} columns`);
  assert.ok(lines.some((line) => line.endsWith('…')));
});
