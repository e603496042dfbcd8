import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fetchDataset } from '../../src/datasets/fetch/fetch.js';
import { datasetInfo } from '../../src/datasets/info.js';
import { buildIndex } from '../../src/datasets/indexer.js';
import { readIndex, type DatasetIndex } from '../../src/datasets/index_file.js';
import { datasetLayout } from '../../src/datasets/layout.js';
import { ensureCache, loadDataset } from '../../src/datasets/load.js';
import { getEntry, loadManifest, type Manifest } from '../../src/datasets/manifest.js';
import { MASKED, NO_CLASS, SPLITS, type LabelColumn } from '../../src/datasets/types.js';
import { UserError } from '../../src/util/errors.js';
import { runNodeSync } from '../processes.js';
import { makeTarGz, type ArchiveEntry } from './archives.js';
import { matFile, npyString } from './formats.js';
import { startServer } from './server.js';
import { tempDir, write, writeImage, writeManifest } from './helpers.js';

const dir = tempDir('adapters');
const home = path.join(dir, 'home');
const manifest = loadManifest();
const server = await startServer();
after(() => server.close());

const isUserError = (pattern: RegExp) => (err: unknown) =>
  err instanceof UserError && pattern.test(err.message) && !err.message.includes('\n');

async function indexFolder(id: string, folder: string, m: Manifest = manifest): Promise<DatasetIndex> {
  return (await fetchDataset(id, { manifest: m, home, from: [folder], sizes: [8] })).index;
}

/** All samples of an index as id → labels of one task (class index, or the row as an array). */
function byId(index: DatasetIndex, task: string): Map<string, number | number[]> {
  const out = new Map<string, number | number[]>();
  for (const split of SPLITS) {
    const data = index.splits[split];
    const column: LabelColumn = data.labels[task];
    data.ids.forEach((id, i) =>
      out.set(
        id,
        column.kind === 'categorical' ? column.values[i] : Array.from(column.values.subarray(i * column.width, (i + 1) * column.width)),
      ),
    );
  }
  return out;
}

function splitOf(index: DatasetIndex, id: string): string | undefined {
  return SPLITS.find((s) => index.splits[s].ids.includes(id));
}

/** A copy of a package entry with some keys replaced, as a user's --manifest file would hold it. */
function override(id: string, changes: Record<string, unknown>): Manifest {
  const { source: _source, ...entry } = getEntry(manifest, id);
  return loadManifest({ extra: [writeManifest(dir, [{ ...entry, ...changes }])] });
}

test('cub: downloaded as a .tgz, attributes.txt beside CUB_200_2011/, certainty 1 masked, class table /100', async () => {
  const png = async (name: string) => fs.readFileSync(await writeImage(path.join(dir, 'cub-img', name), { format: 'jpeg' }));
  const images = [
    '001.Albatross/a1.jpg',
    '001.Albatross/a2.jpg',
    '002.Auklet/b1.jpg',
    '002.Auklet/b2.jpg',
    '003.Blackbird/c1.jpg',
    '003.Blackbird/c2.jpg',
  ];
  const entries: ArchiveEntry[] = [
    {
      name: 'attributes.txt',
      content: '1 has_bill_shape::curved\n2 has_wing_color::blue\n3 has_size::small_(5_-_9_in)\n4 has_shape::perching-like\n',
    },
    { name: 'CUB_200_2011/classes.txt', content: '1 001.Albatross\n2 002.Auklet\n3 003.Blackbird\n' },
    { name: 'CUB_200_2011/images.txt', content: images.map((p, i) => `${i + 1} ${p}`).join('\n') + '\n' },
    { name: 'CUB_200_2011/image_class_labels.txt', content: '1 1\n2 1\n3 2\n4 2\n5 3\n6 3\n' },
    { name: 'CUB_200_2011/train_test_split.txt', content: '1 1\n2 0\n3 1\n4 0\n5 1\n6 0\n' },
    { name: 'CUB_200_2011/attributes/class_attribute_labels_continuous.txt', content: '0 50 100 12.5\n25 25 25 25\n100 0 0 0\n' },
  ];
  // 6 images × 4 attributes; image 2 attribute 3 is "not visible" (certainty 1); two lines carry extra tokens.
  const lines: string[] = [];
  for (let img = 1; img <= 6; img++) {
    for (let attr = 1; attr <= 4; attr++) {
      const present = (img + attr) % 2;
      const certainty = img === 2 && attr === 3 ? 1 : 3;
      lines.push(`${img} ${attr} ${present} ${certainty} 12.5${img === 4 && attr === 1 ? ' 0 extra' : ''}`);
    }
  }
  entries.push({ name: 'CUB_200_2011/attributes/image_attribute_labels.txt', content: lines.join('\n') + '\n' });
  for (const p of images) entries.push({ name: `CUB_200_2011/images/${p}`, content: await png(p) });
  const archive = makeTarGz(entries);
  server.routes.set('/CUB_200_2011.tgz', { body: archive });
  const m = override('cub', {
    files: [
      {
        url: server.url('/CUB_200_2011.tgz'),
        size: archive.length,
        sha256: createHash('sha256').update(archive).digest('hex'),
        extract: true,
      },
    ],
  });

  const result = await fetchDataset('cub', { manifest: m, home, sizes: [8] });
  const index = result.index;
  assert.deepEqual(
    index.tasks.map((t) => [t.name, t.labels.length]),
    [
      ['species', 3],
      ['attributes', 4],
    ],
  );
  assert.equal(index.tasks[1].labels[2], 'has_size::small_(5_-_9_in)');
  assert.deepEqual(index.splits.test.ids.sort(), ['001.Albatross/a2.jpg', '002.Auklet/b2.jpg', '003.Blackbird/c2.jpg']);
  assert.equal(index.splits.train.ids.length + index.splits.val.ids.length, 3);
  const species = byId(index, 'species');
  assert.equal(species.get('003.Blackbird/c1.jpg'), 2);
  const attributes = byId(index, 'attributes');
  assert.deepEqual(attributes.get('001.Albatross/a2.jpg'), [1, 0, MASKED, 0]);
  assert.deepEqual(attributes.get('002.Auklet/b2.jpg'), [1, 0, 1, 0]);
  assert.deepEqual(index.relatedness, [
    {
      from: 'species',
      to: 'attributes',
      source: 'file',
      matrix: [
        [0, 0.5, 1, 0.125],
        [0.25, 0.25, 0.25, 0.25],
        [1, 0, 0, 0],
      ],
      description: getEntry(manifest, 'cub').relatedness[0].description,
    },
  ]);
  const info = datasetInfo(getEntry(m, 'cub'), index, home);
  const testAttrs = info.splits.find((s) => s.split === 'test')!.tasks[1];
  assert.deepEqual([testAttrs.samples, testAttrs.maskedEntries], [3, 1]);

  // attributes.txt where the README puts it, and a malformed line named by file and line.
  const folder = path.join(dir, 'cub-folder');
  for (const e of entries)
    write(path.join(folder, e.name === 'attributes.txt' ? 'CUB_200_2011/attributes/attributes.txt' : e.name), e.content as string | Buffer);
  const fromFolder = await indexFolder('cub', folder);
  assert.equal(fromFolder.tasks[1].labels.length, 4);
  write(path.join(folder, 'CUB_200_2011/image_class_labels.txt'), '1 1\n2 1\n3 two\n4 2\n5 3\n6 3\n');
  await assert.rejects(indexFolder('cub', folder), isUserError(/image_class_labels\.txt:3: expected an integer class id, got "two"/));
});

test('affectnet: header detected by its first field, codes 7–10 left out, the face box cropped; the .npy layout too', async () => {
  const root = path.join(dir, 'affectnet');
  const lists = path.join(root, 'Manually_Annotated_file_lists');
  const imgs = path.join(root, 'Manually_Annotated_Images');
  // 24×20 images, white square at x 6–17, y 5–14 on red: the box 6,5,12,10 is all white.
  for (const name of ['1/a.png', '1/b.png', '2/c.png', '2/d.png', '3/e.png', '3/f.PNG'])
    await writeImage(path.join(imgs, name), { format: 'png' });
  const lm = Array.from({ length: 136 }, (_, i) => (i * 0.5).toFixed(1)).join(';');
  write(
    path.join(lists, 'training.csv'),
    [
      'subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal',
      `1/a.png,6,5,12,10,${lm},1,0.8,0.3`,
      `1/b.png,0,0,24,20,${lm},8,0,0`,
      `2/c.png,6,5,12,10,${lm},6,-0.5,0.6`,
      `2/d.png,6,5,12,10,${lm},10,-2,-2`,
    ].join('\n') + '\n',
  );
  // validation.csv without its header line.
  write(path.join(lists, 'validation.csv'), `3/e.png,6,5,12,10,${lm},0,0.0,0.0\n3/f.PNG,6,5,12,10,${lm},7,0.1,0.1\n`);
  const index = await indexFolder('affectnet', root);
  assert.deepEqual(index.tasks[0].labels, ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger']);
  assert.deepEqual(index.splits.test.ids, ['3/e.png']);
  assert.deepEqual([...byId(index, 'expression')].sort(), [
    ['1/a.png', 1],
    ['2/c.png', 6],
    ['3/e.png', 0],
  ]);
  assert.ok(
    index.notes.some((n) => /1 × code 8, 1 × code 10, 1 × code 7/.test(n)),
    index.notes.join('; '),
  );
  const view = await loadDataset('affectnet', { inputSize: 8, home, manifest });
  const face = view.splits.test.images.read([0]);
  assert.ok(
    face.every((v) => v > 240),
    'the crop keeps only the white face box',
  );

  write(path.join(lists, 'validation.csv'), `3/e.png,6,5,12,10,${lm},happy,0.0,0.0\n`);
  await assert.rejects(indexFolder('affectnet', root), isUserError(/validation\.csv:1: expected an integer expression code, got "happy"/));

  // The second layout: {train_set,val_set}/images/<n>.jpg with annotations/<n>_exp.npy.
  const alt = path.join(dir, 'affectnet-npy');
  for (const [set, n, code] of [
    ['train_set', '0', '3'],
    ['train_set', '1', '9'],
    ['val_set', '5', '6'],
  ]) {
    await writeImage(path.join(alt, set, 'images', `${n}.jpg`));
    write(path.join(alt, set, 'annotations', `${n}_exp.npy`), npyString(code));
  }
  await writeImage(path.join(alt, 'train_set', 'images', '7.jpg'));
  const npyIndex = await indexFolder('affectnet', alt);
  assert.deepEqual([...byId(npyIndex, 'expression')].sort(), [
    ['train_set/images/0.jpg', 3],
    ['val_set/images/5.jpg', 6],
  ]);
  assert.equal(splitOf(npyIndex, 'val_set/images/5.jpg'), 'test');
  assert.ok(npyIndex.notes.some((n) => /1 images without an annotations/.test(n)));
});

test('cad: MAT v5 columns (plain, compressed, byte storage), 1/2 coding, NaN masked', async () => {
  const root = path.join(dir, 'cad');
  const base = path.join(root, 'ClothingAttributeDataset');
  for (const n of ['000001', '000002', '000003', '000004', '000005']) await writeImage(path.join(base, 'images', `${n}.jpg`));
  const cad = getEntry(manifest, 'cad');
  write(path.join(base, 'labels', 'category_GT.mat'), matFile('GT', [1, 7, NaN, 3, 2], { compress: true }));
  write(path.join(base, 'labels', 'neckline_GT.mat'), matFile('GT', [1, 2, 3, 3, 1], { storage: 'uint8' }));
  write(path.join(base, 'labels', 'sleevelength_GT.mat'), matFile('GT', [3, 3, 2, 1, NaN]));
  cad.tasks.attributes.labels!.forEach((label, i) => {
    const values = i === 0 ? [1, 2, NaN, 2, 1] : [2, 1, 1, 2, 2];
    write(
      path.join(base, 'labels', `${label}_GT.mat`),
      matFile('GT', values, { compress: i % 2 === 1, storage: i === 0 ? 'double' : i % 3 === 0 ? 'uint8' : 'double' }),
    );
  });
  const index = await indexFolder('cad', root);
  assert.deepEqual(
    index.tasks.map((t) => [t.name, t.kind, t.labels.length]),
    [
      ['category', 'categorical', 7],
      ['neckline', 'categorical', 3],
      ['sleevelength', 'categorical', 3],
      ['attributes', 'multilabel', 23],
    ],
  );
  const category = byId(index, 'category');
  assert.deepEqual(
    ['000001.jpg', '000002.jpg', '000003.jpg', '000004.jpg', '000005.jpg'].map((id) => category.get(id)),
    [0, 6, NO_CLASS, 2, 1],
  );
  assert.equal(byId(index, 'neckline').get('000003.jpg'), 2);
  assert.equal(byId(index, 'sleevelength').get('000005.jpg'), NO_CLASS);
  const attrs = byId(index, 'attributes');
  assert.deepEqual((attrs.get('000003.jpg') as number[]).slice(0, 3), [MASKED, 0, 0]);
  assert.deepEqual((attrs.get('000002.jpg') as number[]).slice(0, 3), [1, 0, 0]);

  write(path.join(base, 'labels', 'black_GT.mat'), matFile('GT', [1, 2, 0, 2, 1]));
  await assert.rejects(indexFolder('cad', root), isUserError(/black_GT\.mat: row 3: value 0; binary attributes are coded 1\/2/));
  write(path.join(base, 'labels', 'black_GT.mat'), matFile('GT', [1, 2, 1]));
  await assert.rejects(indexFolder('cad', root), isUserError(/black_GT\.mat: 3 labels for 5 images/));
  write(path.join(base, 'labels', 'black_GT.mat'), Buffer.from('not a mat file at all'));
  await assert.rejects(indexFolder('cad', root), isUserError(/black_GT\.mat: not a MAT file/));
});

test('celeba: ±1 with runs of spaces, the official partition, identities', async () => {
  const root = path.join(dir, 'celeba');
  const names = ['000001.jpg', '000002.jpg', '000003.jpg', '000004.jpg', '000005.jpg', '000006.jpg'];
  for (const n of names) await writeImage(path.join(root, 'img_align_celeba', n));
  const attrs = [
    '6',
    '5_o_Clock_Shadow Arched_Eyebrows Attractive ',
    '000001.jpg -1  1  1',
    '000002.jpg -1 -1  1',
    '000003.jpg  1 -1 -1',
    '000004.jpg -1  1 -1',
    '000005.jpg  1  1  1',
    '000006.jpg -1 -1 -1',
  ];
  write(path.join(root, 'list_attr_celeba.txt'), attrs.join('\r\n') + '\r\n');
  write(path.join(root, 'list_eval_partition.txt'), names.map((n, i) => `${n} ${i < 3 ? 0 : i === 3 ? 1 : 2}`).join('\n') + '\n');
  write(path.join(root, 'identity_CelebA.txt'), names.map((n, i) => `${n} ${[2880, 2937, 2880, 10177, 2937, 4][i]}`).join('\n') + '\n');
  const index = await indexFolder('celeba', root);
  assert.deepEqual(index.tasks[0].labels, ['5_o_Clock_Shadow', 'Arched_Eyebrows', 'Attractive']);
  assert.deepEqual(index.tasks[1].labels, ['4', '2880', '2937', '10177']);
  assert.deepEqual(
    SPLITS.map((s) => index.splits[s].ids.length),
    [3, 1, 2],
  );
  assert.deepEqual(byId(index, 'attributes').get('000003.jpg'), [1, 0, 0]);
  assert.deepEqual(byId(index, 'attributes').get('000001.jpg'), [0, 1, 1]);
  assert.equal(byId(index, 'identity').get('000006.jpg'), 0);
  assert.equal(byId(index, 'identity').get('000004.jpg'), 3);

  attrs[4] = '000003.jpg  1  0 -1';
  write(path.join(root, 'list_attr_celeba.txt'), attrs.join('\n') + '\n');
  await assert.rejects(
    indexFolder('celeba', root),
    isUserError(/list_attr_celeba\.txt:5: attribute "Arched_Eyebrows" is "0", expected 1 or -1/),
  );
});

test('rafdb: split from the file name prefix, labels 1–7, aligned image names', async () => {
  const root = path.join(dir, 'rafdb');
  const rows = [
    ['train_00001.jpg', 4],
    ['train_00002.jpg', 7],
    ['train_00003.jpg', 1],
    ['test_0001.jpg', 2],
    ['test_0002.jpg', 6],
  ] as const;
  for (const [name] of rows) await writeImage(path.join(root, 'basic', 'Image', 'aligned', name.replace('.jpg', '_aligned.jpg')));
  write(path.join(root, 'basic', 'EmoLabel', 'list_patition_label.txt'), rows.map(([n, l]) => `${n} ${l}`).join('\n') + '\n');
  const index = await indexFolder('rafdb', root);
  assert.deepEqual(index.splits.test.ids.sort(), ['test_0001.jpg', 'test_0002.jpg']);
  assert.equal(byId(index, 'expression').get('train_00001.jpg'), 3);
  assert.equal(index.tasks[0].labels[3], 'happiness');
  assert.equal(index.splits.test.images.kind === 'files' && index.splits.test.images.paths.includes('test_0002_aligned.jpg'), true);
  write(path.join(root, 'basic', 'EmoLabel', 'list_patition_label.txt'), 'train_00001.jpg 4\nval_00002.jpg 3\n');
  await assert.rejects(
    indexFolder('rafdb', root),
    isUserError(/list_patition_label\.txt:2: "val_00002\.jpg" starts with neither train_ nor test_/),
  );
});

test('disfa: intensity ≥ 2 is an occurrence; frames matched by number; subjects never straddle splits', async () => {
  const root = path.join(dir, 'disfa');
  const aus = [1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26];
  for (const subject of ['SN001', 'SN002']) {
    aus.forEach((au, c) => {
      // frame f of AU column c has intensity (f + c) % 6.
      write(
        path.join(root, 'ActionUnit_Labels', subject, `${subject}_au${au}.txt`),
        [1, 2, 3].map((f) => `${f},${(f + c) % 6}`).join('\n') + '\n',
      );
    });
    for (const f of [1, 2]) await writeImage(path.join(root, 'Frames', subject, `${String(f).padStart(5, '0')}.jpg`));
  }
  const index = await indexFolder('disfa', root);
  const au = byId(index, 'au');
  assert.equal(au.size, 4);
  assert.deepEqual(
    au.get('SN001/00002.jpg'),
    aus.map((_, c) => ((2 + c) % 6 >= 2 ? 1 : 0)),
  );
  assert.equal(splitOf(index, 'SN002/00001.jpg'), splitOf(index, 'SN002/00002.jpg'));
  assert.ok(index.notes.some((n) => /2 labelled frames have no frame image/.test(n)));
  write(path.join(root, 'ActionUnit_Labels', 'SN002', 'SN002_au9.txt'), '1,0\n2,7\n');
  await assert.rejects(indexFolder('disfa', root), isUserError(/SN002_au9\.txt:2: intensity 7 outside 0–5/));
});

test('bp4d: AU columns picked from the header, 9 = unknown is masked', async () => {
  const root = path.join(dir, 'bp4d');
  const header = '0,1,2,4,5,6,7,9,10,12,14,15,17,23,24,27';
  const row = (frame: number, values: string) => `${frame},${values}`;
  write(
    path.join(root, 'AUCoding', 'AU_OCC', 'F001_T1.csv'),
    [
      header,
      row(1, '1,0,9,1,1,0,0,1,1,0,0,1,0,1,1'),
      row(2, '0,0,0,0,0,0,0,0,0,0,0,0,0,0,0'),
      row(3, '1,1,1,1,1,1,1,1,1,1,1,1,1,1,1'),
    ].join('\n') + '\n',
  );
  for (const f of [1, 2]) await writeImage(path.join(root, 'Frames', 'F001', 'T1', `${f}.jpg`));
  const index = await indexFolder('bp4d', root);
  // Manifest AUs 1,2,4,6,7,10,12,14,15,17,23,24 — AU5, AU9 and AU27 of the file are not used.
  assert.deepEqual(byId(index, 'au').get('F001/T1/1.jpg'), [1, 0, MASKED, 1, 0, 1, 1, 0, 0, 1, 0, 1]);
  assert.ok(index.notes.some((n) => /1 labelled frames have no frame image/.test(n)));
  write(path.join(root, 'AUCoding', 'AU_OCC', 'F001_T1.csv'), [header, row(1, '1,0,2,1,1,0,0,1,1,0,0,1,0,1,1')].join('\n') + '\n');
  await assert.rejects(indexFolder('bp4d', root), isUserError(/F001_T1\.csv:2: AU column "4" is "2", expected 0, 1 or 9/));
});

test('emotionet: AU columns of the CSV, 999 = not coded, images named after the URL', async () => {
  const root = path.join(dir, 'emotionet');
  await writeImage(path.join(root, 'images', 'face one.jpg'));
  // Enough images that the 70/10/20 hash split puts some in train.
  for (let i = 0; i < 9; i++) await writeImage(path.join(root, 'images', `${i}.jpg`));
  write(
    path.join(root, 'EmotioNet_FACS_aws_2020_24600.csv'),
    [
      'URL,URL orig,AU 1,AU 2,AU 4',
      'http://example.org/x/face%20one.jpg,http://orig/1,1,999,0',
      ...Array.from({ length: 9 }, (_, i) => `http://example.org/x/${i}.jpg,http://orig/2,0,0,1`),
      'http://example.org/x/gone.jpg,http://orig/3,0,0,1',
    ].join('\n') + '\n',
  );
  const index = await indexFolder('emotionet', root);
  assert.deepEqual(index.tasks[0].labels, ['AU1', 'AU2', 'AU4']);
  assert.deepEqual(byId(index, 'au').get('face one.jpg'), [1, MASKED, 0]);
  assert.ok(index.notes.some((n) => /1 images of the CSV are not in/.test(n)));
});

test('csv (S-ADD): split column, class names, 0/1 columns with empty = masked; bad values name the line', async () => {
  const root = path.join(dir, 'sadd');
  const attrs = getEntry(manifest, 'sadd').tasks.attributes.columns!;
  const rows = [
    ['shoes/1.jpg', 'train', 'boots', '1,0,,1,0,0,1,0,0,1'],
    ['shoes/2.jpg', 'val', 'clogs', '0,0,0,0,0,0,0,0,0,0'],
    ['shoes/3.jpg', 'test', 'Sneakers', '1,1,1,1,1,1,1,1,1,1'],
    ['shoes/4.jpg', 'training', '', '1,0,1,0,1,0,1,0,1,0'],
  ];
  for (const [p] of rows) await writeImage(path.join(root, 'images', p));
  const csv = (extra: string[][] = []) =>
    [['path', 'split', 'type', ...attrs].join(','), ...[...rows, ...extra].map(([p, s, t, a]) => `${p},${s},${t},${a}`)].join('\n') + '\n';
  write(path.join(root, 'labels.csv'), csv());
  const index = await indexFolder('sadd', root);
  assert.deepEqual(
    SPLITS.map((s) => index.splits[s].ids.length),
    [2, 1, 1],
  );
  assert.equal(byId(index, 'type').get('shoes/3.jpg'), 7);
  assert.equal(byId(index, 'type').get('shoes/4.jpg'), NO_CLASS);
  assert.deepEqual(byId(index, 'attributes').get('shoes/1.jpg'), [1, 0, MASKED, 1, 0, 0, 1, 0, 0, 1]);

  write(path.join(root, 'labels.csv'), csv([['shoes/5.jpg', 'train', 'sandals', '0,0,0,0,0,0,0,0,0,0']]));
  await assert.rejects(
    indexFolder('sadd', root),
    isUserError(/labels\.csv:6: "sandals" in column "type" is not one of the 10 classes of task "type"/),
  );
  write(path.join(root, 'labels.csv'), csv([['shoes/5.jpg', 'holdout', 'boots', '0,0,0,0,0,0,0,0,0,0']]));
  await assert.rejects(indexFolder('sadd', root), isUserError(/labels\.csv:6: split "holdout" is not train, val or test/));
  write(path.join(root, 'labels.csv'), csv([['shoes/5.jpg', 'train', 'boots', '0,0,0,0,0,0,0,0,2,0']]));
  await assert.rejects(indexFolder('sadd', root), isUserError(/labels\.csv:6: "2" in column "sporty" is not 0\/1/));
  write(path.join(root, 'labels.csv'), csv([['shoes/5.jpg', 'train', 'boots', '0,0,0']]));
  await assert.rejects(indexFolder('sadd', root), isUserError(/labels\.csv:6: 6 fields, the header has 13/));
});

test('undecodable images are skipped and counted up to image.max_bad_fraction, and fail past it', async () => {
  const root = path.join(dir, 'broken');
  const attrs = getEntry(manifest, 'sadd').tasks.attributes.columns!;
  const lines = [['path', 'split', 'type', ...attrs].join(',')];
  for (let i = 0; i < 8; i++) {
    const name = `s/${i}.jpg`;
    if (i === 3) write(path.join(root, 'images', name), 'this is not a JPEG');
    else await writeImage(path.join(root, 'images', name), { rgb: [10 * i, 0, 0] });
    lines.push([name, 'train', ['boots', 'clogs'][i % 2], ...attrs.map(() => String(i % 2))].join(','));
  }
  write(path.join(root, 'labels.csv'), lines.join('\n') + '\n');
  await assert.rejects(
    indexFolder('sadd', root),
    isUserError(/sadd train: 1 of 8 images do not decode \(more than the 1\.0% allowed by image\.max_bad_fraction\); first: s\/3\.jpg/),
  );

  const tolerant = override('sadd', { image: { max_bad_fraction: 0.2 } });
  await indexFolder('sadd', root, tolerant);
  const view = await loadDataset('sadd', { inputSize: 8, home, manifest: tolerant });
  const train = view.splits.train;
  assert.equal(train.count, 7);
  assert.equal(train.images.count, 7);
  assert.deepEqual(train.ids, ['s/0.jpg', 's/1.jpg', 's/2.jpg', 's/4.jpg', 's/5.jpg', 's/6.jpg', 's/7.jpg']);
  // Labels stay aligned with the images once the broken one is gone.
  const type = train.labels.type;
  assert.ok(type.kind === 'categorical');
  assert.deepEqual(Array.from(type.values), [1, 2, 1, 1, 2, 1, 2]);
  // Position 3 is s/4.jpg, whose border is rgb(40, 0, 0).
  assert.ok(Math.abs(train.images.read([3])[0] - 40) <= 12);
  const info = datasetInfo(getEntry(tolerant, 'sadd'), readIndex(datasetLayout('sadd', home).indexFile)!, home);
  assert.deepEqual(
    info.undecodable.map((u) => [u.size, u.split, u.count]),
    [[8, 'train', 1]],
  );
});

test('nothing half-written: a failed re-index keeps the previous index; a cache build resumes from its shards', async () => {
  const root = path.join(dir, 'atomic');
  const attrs = getEntry(manifest, 'sadd').tasks.attributes.columns!;
  const lines = [['path', 'split', 'type', ...attrs].join(',')];
  for (let i = 0; i < 6; i++) {
    await writeImage(path.join(root, 'images', `${i}.png`), { format: 'png', rgb: [40 * i, 100, 0] });
    lines.push([`${i}.png`, 'train', 'boots', ...attrs.map(() => '1')].join(','));
  }
  write(path.join(root, 'labels.csv'), lines.join('\n') + '\n');
  const layout = datasetLayout('sadd', home);
  const first = await indexFolder('sadd', root);
  const entry = getEntry(manifest, 'sadd');

  write(path.join(root, 'labels.csv'), lines.join('\n') + '\nbroken-line\n');
  await assert.rejects(buildIndex(entry, { home }), isUserError(/labels\.csv:8: 1 fields, the header has 13/));
  assert.equal(readIndex(layout.indexFile)!.createdAt, first.createdAt);
  assert.deepEqual(
    fs.readdirSync(layout.dir).filter((n) => n.endsWith('.tmp')),
    [],
  );
  write(path.join(root, 'labels.csv'), lines.join('\n') + '\n');

  const bytes = 12 * 12 * 3;
  const built = await ensureCache(entry, first, 12, { home, shardBytes: 2 * bytes });
  const folder = built.train.folder;
  assert.deepEqual(
    built.train.meta.shards.map((s) => s.count),
    [2, 2, 2],
  );
  const full = fs.readFileSync(path.join(folder, 'shard-00002.u8'));
  const kept = fs.statSync(path.join(folder, 'shard-00000.u8')).mtimeMs;
  // As if the build had been killed before its last shard: no meta.json, a stray temporary file.
  fs.rmSync(path.join(folder, 'meta.json'));
  fs.rmSync(path.join(folder, 'shard-00002.json'));
  fs.rmSync(path.join(folder, 'shard-00002.u8'));
  write(path.join(folder, '.shard-00002.u8.123.abcd.tmp'), 'half');
  const resumed = await ensureCache(entry, first, 12, { home, shardBytes: 2 * bytes });
  assert.equal(fs.statSync(path.join(folder, 'shard-00000.u8')).mtimeMs, kept);
  assert.deepEqual(fs.readFileSync(path.join(folder, 'shard-00002.u8')), full);
  assert.deepEqual(
    fs.readdirSync(folder).filter((n) => n.endsWith('.tmp')),
    [],
  );
  assert.equal(resumed.train.meta.decoded, 6);
  // Read from disk by offset (no memory copy) gives the same pixels as the in-memory path.
  const view = await loadDataset('sadd', { inputSize: 12, home, manifest, memoryLimitBytes: 0 });
  const all = fs.readFileSync(path.join(folder, 'shard-00001.u8'));
  assert.deepEqual(Buffer.from(view.splits.train.images.read([3])), all.subarray(bytes, 2 * bytes));
});

test('a user dataset with expressions and AUs gets the Du et al. prior in DatasetView.relatedness', async () => {
  const root = path.join(dir, 'faces');
  const lines = ['path,split,expression,AU1,AU4,AU6,AU12,AU25'];
  const expressions = ['happiness', 'sadness', 'neutral', 'surprise'];
  for (let i = 0; i < 8; i++) {
    await writeImage(path.join(root, `${i}.jpg`));
    lines.push(`${i}.jpg,${i < 6 ? 'train' : 'test'},${expressions[i % 4]},0,1,1,0,1`);
  }
  write(path.join(root, 'labels.csv'), lines.join('\n') + '\n');
  const m = loadManifest({
    extra: [
      writeManifest(dir, [
        {
          id: 'my-faces',
          name: 'My faces',
          homepage: 'https://example.org/faces',
          license: 'mine',
          access: 'request',
          request: { instructions: 'it is mine' },
          format: 'csv',
          options: { file: 'labels.csv' },
          tasks: {
            expression: { kind: 'categorical', labels: ['neutral', 'happiness', 'sadness', 'surprise'] },
            au: { kind: 'multilabel', columns: ['AU1', 'AU4', 'AU6', 'AU12', 'AU25'] },
          },
          relatedness: [{ from: 'expression', to: 'au', prior: 'du2014' }],
        },
      ]),
    ],
  });
  await fetchDataset('my-faces', { manifest: m, home, from: [root], sizes: [8] });
  const view = await loadDataset('my-faces', { inputSize: 8, home, manifest: m });
  assert.equal(view.relatedness.length, 1);
  const table = view.relatedness[0];
  assert.deepEqual([table.from, table.to, table.source], ['expression', 'au', 'prior']);
  assert.deepEqual(table.matrix, [
    [0, 0, 0, 0, 0],
    [0, 0, 0.51, 1, 1],
    [0.6, 1, 0.5, 0, 0],
    [1, 0, 0, 0, 1],
  ]);
  assert.match(table.description ?? '', /Du, Tao & Martinez/);
});

/**
 * `waiting` (a caller polling for `lock`) must finish within `ms`. If it does not, the lock is
 * removed so the caller stops polling and the test process can exit, and the test fails: a test
 * timeout alone would leave the poll running and the suite waiting for this file forever.
 */
async function finishesWithin<T>(ms: number, lock: string, what: string, waiting: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      fs.rmSync(lock, { recursive: true, force: true });
      reject(new Error(`${what} still waited for ${lock} after ${ms / 1000} s`));
    }, ms);
  });
  try {
    return await Promise.race([waiting, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

test('processes building the same cache take turns; a lock left by a dead process is taken over', { timeout: 120_000 }, async () => {
  const root = path.join(dir, 'locked');
  const attrs = getEntry(manifest, 'sadd').tasks.attributes.columns!;
  const lines = [['path', 'split', 'type', ...attrs].join(',')];
  for (let i = 0; i < 4; i++) {
    await writeImage(path.join(root, 'images', `${i}.jpg`));
    lines.push([`${i}.jpg`, 'train', 'boots', ...attrs.map(() => '0')].join(','));
  }
  write(path.join(root, 'labels.csv'), lines.join('\n') + '\n');
  const index = await indexFolder('sadd', root);
  const entry = getEntry(manifest, 'sadd');
  // Two callers at once: one builds, the other reuses that build (whichever order they meet in).
  const [a, b] = await Promise.all([ensureCache(entry, index, 10, { home }), ensureCache(entry, index, 10, { home })]);
  assert.equal(a.train.meta.builtAt, b.train.meta.builtAt, 'the second caller reuses the first one’s build');

  // A live process holds the lock: the caller says whom it waits for, and builds once it is free.
  const held = a.train.folder.replace(/10px-/, '12px-');
  write(path.join(`${held}.lock`, 'pid'), String(process.pid));
  const waits: string[] = [];
  const afterWait = await finishesWithin(
    30_000,
    `${held}.lock`,
    'the caller of a lock its owner releases',
    ensureCache(entry, index, 12, {
      home,
      onWait: (m) => {
        waits.push(m);
        setTimeout(() => fs.rmSync(`${held}.lock`, { recursive: true, force: true }), 50);
      },
    }),
  );
  assert.match(waits[0] ?? '', new RegExp(`waiting for process ${process.pid}, which is building the 12px cache of sadd train`));
  assert.equal(waits.length, 1, 'said once');
  assert.equal(afterWait.train.meta.decoded, 4);

  const dead = runNodeSync(['-e', 'process.stdout.write(String(process.pid))'], { timeoutMs: 30_000 }).stdout;
  const folder = a.train.folder.replace(/10px-/, '11px-');
  write(path.join(`${folder}.lock`, 'pid'), dead);
  const rebuilt = await finishesWithin(
    30_000,
    `${folder}.lock`,
    "the caller of a dead process's lock",
    ensureCache(entry, index, 11, { home }),
  );
  assert.equal(rebuilt.train.meta.decoded, 4);
  assert.equal(fs.existsSync(`${folder}.lock`), false);
});
