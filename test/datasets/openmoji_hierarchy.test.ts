import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { hierarchyTables, openmojiAdapter } from '../../src/datasets/adapters/openmoji.js';
import { getEntry, loadManifest } from '../../src/datasets/manifest.js';
import { buildIndex } from '../../src/datasets/indexer.js';
import { tempDir } from './helpers.js';

const EXCLUDED = ['extras-openmoji', 'extras-unicode', 'component', 'flags'];

/** group of each subgroup, read from openmoji.json here, independently of the adapter. */
function taxonomy(): Map<string, string> {
  const require = createRequire(import.meta.url);
  const file = path.join(path.dirname(require.resolve('openmoji/package.json')), 'data', 'openmoji.json');
  const all = JSON.parse(fs.readFileSync(file, 'utf8')) as { group: string; subgroups: string }[];
  const groupOf = new Map<string, string>();
  for (const e of all) if (!EXCLUDED.includes(e.group)) groupOf.set(e.subgroups, e.group);
  return groupOf;
}

test('the taxonomy tables of openmoji: every subgroup maps to exactly one group, its own; rows sum to 1', async () => {
  const manifest = loadManifest();
  const entry = getEntry(manifest, 'openmoji');
  const require = createRequire(import.meta.url);
  const root = path.dirname(require.resolve('openmoji/package.json'));
  const output = await openmojiAdapter({ entry, root, warn: () => {} });
  const groups = output.tasks.find((t) => t.name === 'group')!.labels;
  const subgroups = output.tasks.find((t) => t.name === 'subgroup')!.labels;
  const groupOf = taxonomy();
  assert.equal(groups.length, 8);
  assert.equal(subgroups.length, groupOf.size);

  const crisp = output.relatedness!.find((t) => t.from === 'subgroup' && t.to === 'group')!;
  assert.equal(crisp.source, 'file');
  assert.equal(crisp.matrix.length, subgroups.length);
  crisp.matrix.forEach((row, s) => {
    assert.equal(row.length, groups.length);
    assert.deepEqual(
      row.filter((v) => v !== 0),
      [1],
      `subgroup ${subgroups[s]} must map to exactly one group`,
    );
    assert.equal(groups[row.indexOf(1)], groupOf.get(subgroups[s]!), `subgroup ${subgroups[s]} maps to the wrong group`);
  });

  const diffuse = output.relatedness!.find((t) => t.from === 'group' && t.to === 'subgroup')!;
  assert.equal(diffuse.matrix.length, groups.length);
  diffuse.matrix.forEach((row, g) => {
    assert.equal(row.length, subgroups.length);
    const sum = row.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `row of ${groups[g]} sums to ${sum}`);
    const members = subgroups.filter((s) => groupOf.get(s) === groups[g]);
    row.forEach((v, s) => assert.equal(v, members.includes(subgroups[s]!) ? 1 / members.length : 0));
  });
});

test('hierarchy tables refuse a subgroup that lies in two groups', () => {
  assert.throws(
    () =>
      hierarchyTables(
        [
          { group: 'a', subgroups: 'x' },
          { group: 'b', subgroups: 'x' },
        ],
        ['a', 'b'],
        ['x'],
        'openmoji.json',
      ),
    /subgroup "x" appears in groups "a" and "b"/,
  );
});

test('the index keeps the generated tables the manifest declares, with their descriptions', async () => {
  const entry = getEntry(loadManifest(), 'openmoji');
  const index = await buildIndex(entry, { home: tempDir('openmoji-hierarchy') });
  assert.deepEqual(
    index.relatedness.map((t) => [t.from, t.to, t.source]),
    [
      ['subgroup', 'group', 'file'],
      ['group', 'subgroup', 'file'],
    ],
  );
  assert.match(index.relatedness[0]!.description!, /crisp/);
});
