import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { barFormat, createProgress } from '../../src/train/progress.js';
import { fitParts } from '../../src/util/format.js';
import type { EpochRecord } from '../../src/train/types.js';

const RECORD: EpochRecord = {
  epoch: 3,
  loss: 1.23456,
  terms: { 'sup:group': 0.5, 'sup:tags': 0.25, 'dm:group->tags': 0.125, dm: 0.125 },
  val: { group: { accuracy: 0.78125, macro_f1: 0.4 }, tags: { macro_f1: 0.1125 } },
  valPrimaryMean: 0.446875,
  seconds: 12.5,
  imagesPerSecond: 345.6,
};

/** The bar line at its widest: every placeholder replaced by the longest text it can get. */
function widest(format: string, barsize: number, steps: number): string {
  return format
    .replace('{bar}', '#'.repeat(barsize))
    .replace('{value}', String(steps))
    .replace('{total}', String(steps))
    .replace('{loss}', '123.4567')
    .replace('{speed}', '99999')
    .replace('{eta_formatted}', '99h59m');
}

test('the bar fits the terminal: at 120 and 80 columns every part stays, narrower the speed goes before the ETA', () => {
  const info = { unit: 'mtl', epoch: 12, epochs: 30, steps: 1406 };
  for (const columns of [200, 120, 80, 60, 50, 40]) {
    const { format, barsize } = barFormat(info, columns);
    const line = widest(format, barsize, info.steps);
    assert.ok(line.length < columns, `${columns} columns: ${line.length} characters: ${line}`);
    assert.match(line, /ETA 99h59m$/, `${columns} columns: the ETA is never cut`);
    if (columns >= 80) assert.match(format, /\[\{bar\}\].*img\/s/, `${columns} columns: bar and speed`);
  }
  assert.equal(barFormat(info, 200).barsize, 24, 'no wider than before on a wide terminal');
  assert.doesNotMatch(barFormat(info, 50).format, /img\/s/);
});

test('fitParts continues on an indented line instead of wrapping', () => {
  assert.deepEqual(fitParts(['aaaa', 'bbbb', 'cccc'], undefined), ['aaaa | bbbb | cccc']);
  assert.deepEqual(fitParts(['aaaa', 'bbbb', 'cccc'], 12), ['aaaa | bbbb', '  cccc']);
});

test("'lines' mode: one plain line per epoch with terms, validation in percent, speed and time; a line per checkpoint", () => {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const progress = createProgress('lines', stream, { label: '[full.mtl+dm.seed1]' });
  progress.startEpoch({ unit: 'mtl', epoch: 3, epochs: 4, steps: 10 });
  progress.step(10, 1.2, 300);
  progress.endEpoch('mtl', RECORD);
  progress.checkpoint('mtl', '/runs/q/full.mtl+dm.seed1/checkpoint.bin', 3);
  const lines = text.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(
    lines[0]!,
    new RegExp(
      '^\\[full\\.mtl\\+dm\\.seed1\\] mtl epoch 3\\/4: loss 1\\.2346 \\(sup:group 0\\.5000, sup:tags 0\\.2500, dm:group->tags 0\\.1250\\)' +
        ' \\| val group accuracy 78\\.13% macro_f1 40\\.00% \\| tags macro_f1 11\\.25%' +
        ' \\| 346 img\\/s \\| epoch 12\\.5s, elapsed \\d+\\.\\ds$',
    ),
  );
  assert.equal(lines[1], '[full.mtl+dm.seed1] mtl: checkpoint after epoch 3 written to /runs/q/full.mtl+dm.seed1/checkpoint.bin');
  assert.doesNotMatch(text, /\u001b/, 'no control characters in a log');
});

test("'jsonl' mode is unchanged: no line for a checkpoint", () => {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const progress = createProgress('jsonl', stream);
  progress.endEpoch('mtl', RECORD);
  progress.checkpoint('mtl', 'x.bin', 3);
  assert.deepEqual(
    text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).event),
    ['epoch'],
  );
});
