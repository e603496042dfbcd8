import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { IndexBuilder, type Box } from '../index_file.js';
import { adapterOptions } from '../manifest.js';
import { trainOrVal } from '../splits.js';
import type { Split, TaskSpec } from '../types.js';
import { readNpyScalar } from './npy.js';
import { forEachLine, lineError, parseInteger, parseNumber, splitCsv } from './text.js';
import { declaredLabels, type Adapter } from './types.js';

const COLUMNS = [
  'subDirectory_filePath',
  'face_x',
  'face_y',
  'face_width',
  'face_height',
  'facial_landmarks',
  'expression',
  'valence',
  'arousal',
];

/** The folder holding Manually_Annotated_file_lists/, at the root or one level down. */
function findListsBase(root: string): string | undefined {
  const candidates = [
    root,
    ...fs
      .readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => path.join(root, d.name)),
  ];
  return candidates.find((c) => fs.existsSync(path.join(c, 'Manually_Annotated_file_lists')));
}

function imagesFolder(base: string, root: string): string {
  const candidates = [
    path.join(base, 'Manually_Annotated_Images'),
    path.join(base, 'Manually_Annotated', 'Manually_Annotated_Images'),
    path.join(root, 'Manually_Annotated_Images'),
  ];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new UserError(`missing AffectNet image folder; looked in: ${candidates.join(', ')}`);
  return found;
}

/**
 * AffectNet: the manually annotated CSVs (training.csv → train/val, validation.csv → test). Codes
 * at or above `classes` (7: contempt, none, uncertain, non-face) are left out; each image is
 * cropped to its face box. Also reads the {train_set,val_set}/images + annotations/<n>_exp.npy layout.
 */
export const affectnetAdapter: Adapter = async ({ entry, root, warn }) => {
  const options = adapterOptions(entry, 'affectnet');
  const labels = declaredLabels(entry, 'expression');
  if (labels.length !== options.classes) {
    throw new UserError(
      `${entry.source}: entry "${entry.id}": tasks.expression.labels: ${labels.length} names for options.classes ${options.classes}`,
    );
  }
  const tasks: TaskSpec[] = [{ name: 'expression', kind: 'categorical', labels }];
  const base = findListsBase(root);
  if (base) {
    const builder = new IndexBuilder(tasks, 'files', imagesFolder(base, root));
    const excluded = new Map<number, number>();
    for (const [name, isTest] of [
      ['training.csv', false],
      ['validation.csv', true],
    ] as const) {
      const file = path.join(base, 'Manually_Annotated_file_lists', name);
      let positions = COLUMNS.map((_, i) => i);
      await forEachLine(file, (line) => {
        const cells = splitCsv(line, file);
        // validation.csv may come without the header: recognise it by its first field.
        if (line.number === 1 && cells[0].toLowerCase() === 'subdirectory_filepath') {
          positions = COLUMNS.map((c) => {
            const at = cells.findIndex((h) => h.toLowerCase() === c.toLowerCase());
            if (at < 0 && c !== 'facial_landmarks' && c !== 'valence' && c !== 'arousal')
              throw lineError(file, line.number, `header lacks column "${c}"`);
            return at;
          });
          return;
        }
        const get = (column: number) => (positions[column] >= 0 ? cells[positions[column]] : undefined);
        const image = get(0);
        if (!image) throw lineError(file, line.number, 'empty image path');
        const code = parseInteger(get(6), file, line.number, 'expression code');
        if (code < 0 || code > 10) throw lineError(file, line.number, `expression code ${code} outside 0–10`);
        if (code >= options.classes) {
          excluded.set(code, (excluded.get(code) ?? 0) + 1);
          return;
        }
        const box: Box = [1, 2, 3, 4].map((c) => parseNumber(get(c), file, line.number, COLUMNS[c])) as Box;
        const split: Split = isTest ? 'test' : trainOrVal(image, entry.val_fraction);
        builder.add(split, image, image, { expression: code }, box[2] > 0 && box[3] > 0 ? box : null);
      });
    }
    if (excluded.size > 0)
      warn(`left out ${[...excluded].map(([code, n]) => `${n} × code ${code}`).join(', ')} (not among the ${options.classes} classes)`);
    return { tasks, splits: builder.build() };
  }

  const setFolders = [path.join(root, 'train_set'), path.join(root, 'val_set')];
  if (setFolders.every((f) => fs.existsSync(path.join(f, 'images')))) {
    const builder = new IndexBuilder(tasks, 'files', root);
    let missing = 0;
    let excluded = 0;
    for (const folder of setFolders) {
      const isTest = folder.endsWith('val_set');
      const names = fs
        .readdirSync(path.join(folder, 'images'))
        .filter((n) => /\.(jpe?g|png)$/i.test(n))
        .sort();
      for (const name of names) {
        const stem = name.replace(/\.[^.]+$/, '');
        const labelFile = path.join(folder, 'annotations', `${stem}_exp.npy`);
        if (!fs.existsSync(labelFile)) {
          missing++;
          continue;
        }
        const raw = readNpyScalar(labelFile);
        const code = typeof raw === 'number' ? raw : Number(raw.trim());
        if (!Number.isInteger(code) || code < 0 || code > 10) throw new UserError(`${labelFile}: expression "${raw}" is not a code 0–10`);
        if (code >= options.classes) {
          excluded++;
          continue;
        }
        const rel = path.join(path.basename(folder), 'images', name);
        builder.add(isTest ? 'test' : trainOrVal(rel, entry.val_fraction), rel, rel, { expression: code });
      }
    }
    if (missing > 0) warn(`${missing} images without an annotations/<n>_exp.npy file were left out`);
    if (excluded > 0) warn(`left out ${excluded} images with codes outside the ${options.classes} classes`);
    return { tasks, splits: builder.build() };
  }
  throw new UserError(
    `${root}: not an AffectNet folder: expected Manually_Annotated_file_lists/ (with Manually_Annotated_Images/) ` +
      'or train_set/ and val_set/ with images/ and annotations/',
  );
};
