import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { loadDataset } from '../../src/datasets/load.js';
import { datasetLayout } from '../../src/datasets/layout.js';
import { readIndex } from '../../src/datasets/index_file.js';
import { NO_CLASS, SPLITS } from '../../src/datasets/types.js';
import { runCli } from './cli.js';
import { tempDir } from './helpers.js';

const home = tempDir('openmoji');
const SIZE = 16;

interface Emoji {
  hexcode: string;
  group: string;
  subgroups: string;
  tags: string;
  openmoji_tags: string;
  skintone: string | number;
  skintone_base_hexcode: string;
}

/** The rules, computed here independently of the adapter. */
function expected() {
  const require = createRequire(import.meta.url);
  const file = path.join(path.dirname(require.resolve('openmoji/package.json')), 'data', 'openmoji.json');
  const all = JSON.parse(fs.readFileSync(file, 'utf8')) as Emoji[];
  const byHex = new Map(all.map((e) => [e.hexcode, e]));
  const kept = all.filter((e) => !['extras-openmoji', 'extras-unicode', 'component', 'flags'].includes(e.group));
  const base = (e: Emoji) => e.skintone_base_hexcode || e.hexcode;
  const split = (e: Emoji) => {
    const b = createHash('sha1').update(base(e)).digest()[0] % 10;
    return b <= 6 ? 'train' : b === 7 ? 'val' : 'test';
  };
  const words = (e: Emoji) => {
    const src = byHex.get(base(e))!;
    return new Set(
      `${src.tags},${src.openmoji_tags}`
        .split(',')
        .map((w) => w.trim().toLowerCase())
        .filter(Boolean),
    );
  };
  const counts = new Map<string, number>();
  const seen = new Set<string>();
  for (const e of kept) {
    if (split(e) !== 'train' || seen.has(base(e))) continue;
    seen.add(base(e));
    for (const w of words(e)) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  const tags = [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0], 'en'))
    .slice(0, 32)
    .map(([w]) => w);
  return { kept, split, words, tags, base };
}

test('openmoji end to end: fetch indexes and caches it; loadDataset gives the splits and tasks issue 3 describes', async () => {
  const want = expected();
  const fetched = await runCli(['datasets', 'fetch', 'openmoji', '--size', String(SIZE)], { MTL_BENCH_HOME: home });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.match(
    fetched.stdout,
    new RegExp(`openmoji: train \\d+, val \\d+, test \\d+; tasks group \\(8\\), subgroup \\(\\d+\\), tags \\(32\\), skintone \\(6\\)`),
  );
  assert.match(fetched.stdout, new RegExp(`cache ${SIZE}×${SIZE}: ${want.kept.length} images`));
  const layout = datasetLayout('openmoji', home);
  const index = readIndex(layout.indexFile)!;
  assert.equal(
    SPLITS.reduce((n, s) => n + index.splits[s].ids.length, 0),
    want.kept.length,
  );
  const metaFile = path.join(layout.cacheDir, `${SIZE}px-3c-contain-ffffff`, 'train', 'meta.json');
  const indexTime = fs.statSync(layout.indexFile).mtimeMs;
  const metaTime = fs.statSync(metaFile).mtimeMs;

  const view = await loadDataset('openmoji', { inputSize: SIZE, home });
  // loadDataset reuses what fetch prepared: nothing is rebuilt.
  assert.equal(fs.statSync(layout.indexFile).mtimeMs, indexTime);
  assert.equal(fs.statSync(metaFile).mtimeMs, metaTime);
  assert.deepEqual(
    view.tasks.map((t) => [t.name, t.kind]),
    [
      ['group', 'categorical'],
      ['subgroup', 'categorical'],
      ['tags', 'multilabel'],
      ['skintone', 'categorical'],
    ],
  );
  assert.equal(view.tasks[0].labels.length, 8);
  assert.equal(view.tasks[1].labels.length, new Set(want.kept.map((e) => e.subgroups)).size);
  assert.deepEqual(view.tasks[2].labels, want.tags);
  assert.deepEqual(view.tasks[3].labels, ['none', 'light', 'medium-light', 'medium', 'medium-dark', 'dark']);
  // The taxonomy tables the manifest declares (their contents: openmoji_hierarchy.test.ts).
  assert.deepEqual(
    view.relatedness.map((t) => [t.from, t.to, t.source]),
    [
      ['subgroup', 'group', 'file'],
      ['group', 'subgroup', 'file'],
    ],
  );

  const total = SPLITS.reduce((n, s) => n + view.splits[s].count, 0);
  assert.equal(total, want.kept.length);
  const byHex = new Map(want.kept.map((e) => [e.hexcode, e]));
  const baseSplit = new Map<string, string>();
  for (const s of SPLITS) {
    const data = view.splits[s];
    assert.equal(data.images.count, data.count);
    assert.equal(data.images.size, SIZE);
    assert.equal(data.images.channels, 3);
    const tags = data.labels.tags;
    const tone = data.labels.skintone;
    const group = data.labels.group;
    assert.equal(tags.kind, 'multilabel');
    assert.equal(tone.kind, 'categorical');
    assert.equal(group.kind, 'categorical');
    data.ids.forEach((id, i) => {
      const e = byHex.get(id)!;
      assert.equal(want.split(e), s, id);
      // Variants never straddle splits.
      assert.equal(baseSplit.get(want.base(e)) ?? s, s);
      baseSplit.set(want.base(e), s);
      const words = want.words(e);
      const row = Array.from(tags.values.subarray(i * 32, (i + 1) * 32));
      assert.deepEqual(
        row,
        want.tags.map((w) => (words.has(w) ? 1 : 0)),
        id,
      );
      const t = String(e.skintone);
      assert.equal(tone.values[i], t === '' ? 0 : t.includes(',') ? NO_CLASS : Number(t), id);
      assert.equal(view.tasks[0].labels[group.values[i]], e.group);
    });
  }
  // A skin-tone variant has empty tag fields in openmoji.json yet carries its base's tags.
  const variant = view.splits.train.ids.findIndex(
    (id) => byHex.get(id)!.skintone_base_hexcode && byHex.get(id)!.skintone_base_hexcode !== id,
  );
  assert.ok(variant >= 0);
  const tags = view.splits.train.labels.tags;
  assert.ok(tags.kind === 'multilabel' && tags.values.subarray(variant * 32, (variant + 1) * 32).some((v) => v === 1));

  // Pixels: white background, something drawn, every image decoded.
  const pixels = view.splits.val.images.read([0, 1, 2]);
  assert.equal(pixels.length, 3 * SIZE * SIZE * 3);
  assert.equal(pixels[0], 255);
  assert.ok(pixels.some((v) => v < 128));

  const again = await loadDataset('openmoji', { inputSize: SIZE, home });
  assert.deepEqual(again.splits.test.images.read([5]), view.splits.test.images.read([5]));
  assert.equal(fs.statSync(metaFile).mtimeMs, metaTime);
});
