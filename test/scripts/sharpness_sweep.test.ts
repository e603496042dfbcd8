import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SWEEP_BETAS, SWEEP_FOLDER, sweepBenchmark, sweepFileName } from '../../scripts/sharpness-sweep.js';
import { loadBenchmarkFile } from '../../src/bench/schema.js';
import { packageRoot } from '../../src/util/paths.js';

test('the committed β-sweep files are what scripts/sharpness-sweep.ts writes, and each parses with its β', () => {
  const folder = path.join(packageRoot, SWEEP_FOLDER);
  assert.deepEqual(fs.readdirSync(folder).sort(), SWEEP_BETAS.map(sweepFileName).sort());
  for (const beta of SWEEP_BETAS) {
    const file = path.join(folder, sweepFileName(beta));
    assert.equal(fs.readFileSync(file, 'utf8'), sweepBenchmark(beta), `${sweepFileName(beta)}: rerun node dist/scripts/sharpness-sweep.js`);
    const { doc } = loadBenchmarkFile(file);
    for (const pair of doc.relatedness) assert.equal(pair.sharpnessBlend ?? 0, beta);
  }
});
