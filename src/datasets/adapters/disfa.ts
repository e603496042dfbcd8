import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { IndexBuilder } from '../index_file.js';
import { adapterOptions } from '../manifest.js';
import { splitFromBucket } from '../splits.js';
import { MASKED, type TaskSpec } from '../types.js';
import { auNumber, framesByNumber } from './frames.js';
import { findFirst, lineError, parseInteger, readLines, splitCsv } from './text.js';
import { declaredLabels, type Adapter } from './types.js';

/**
 * DISFA: ActionUnit_Labels/<subject>/<subject>_au<N>.txt with "frame,intensity" lines (0–5);
 * an AU occurs when its intensity reaches the threshold (2). Frames come from the user's
 * extraction: <frames>/<subject>/<…number…>.jpg. Subjects are split 70/10/20 by hash.
 */
export const disfaAdapter: Adapter = async ({ entry, root, warn }) => {
  const options = adapterOptions(entry, 'disfa');
  const labels = declaredLabels(entry, 'au');
  const aus = labels.map((l) => {
    const n = auNumber(l);
    if (n === undefined) throw new UserError(`${entry.source}: entry "${entry.id}": tasks.au.labels: "${l}" is not an AU name like AU12`);
    return n;
  });
  const labelRoot = findFirst(
    [path.join(root, 'ActionUnit_Labels'), path.join(root, 'DISFA', 'ActionUnit_Labels')],
    'DISFA ActionUnit_Labels/ folder',
  );
  const base = path.dirname(labelRoot);
  const framesRoot = path.join(base, options.frames);
  if (!fs.existsSync(framesRoot))
    throw new UserError(`missing DISFA frame folder ${framesRoot}: extract the video frames to ${options.frames}/<subject>/<frame>.jpg`);
  const tasks: TaskSpec[] = [{ name: 'au', kind: 'multilabel', labels }];
  const builder = new IndexBuilder(tasks, 'files', framesRoot);
  const subjects = fs
    .readdirSync(labelRoot, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  if (subjects.length === 0) throw new UserError(`${labelRoot}: no subject folders`);
  let unmatched = 0;
  const noFrames: string[] = [];
  for (const subject of subjects) {
    const perFrame = new Map<number, Uint8Array>();
    aus.forEach((au, c) => {
      const file = path.join(labelRoot, subject, `${subject}_au${au}.txt`);
      if (!fs.existsSync(file)) throw new UserError(`missing DISFA label file: ${file}`);
      for (const line of readLines(file)) {
        const [frameText, intensityText] = splitCsv(line, file);
        const frame = parseInteger(frameText, file, line.number, 'frame');
        const intensity = parseInteger(intensityText, file, line.number, 'intensity');
        if (intensity < 0 || intensity > 5) throw lineError(file, line.number, `intensity ${intensity} outside 0–5`);
        let row = perFrame.get(frame);
        if (!row) perFrame.set(frame, (row = new Uint8Array(aus.length).fill(MASKED)));
        row[c] = intensity >= options.threshold ? 1 : 0;
      }
    });
    const frames = framesByNumber(path.join(framesRoot, subject));
    if (frames.size === 0) {
      noFrames.push(subject);
      continue;
    }
    const split = splitFromBucket(subject);
    for (const [frame, row] of [...perFrame].sort((a, b) => a[0] - b[0])) {
      const file = frames.get(frame);
      if (!file) {
        unmatched++;
        continue;
      }
      const rel = `${subject}/${file}`;
      builder.add(split, rel, rel, { au: row });
    }
  }
  if (noFrames.length > 0) warn(`no frames found for ${noFrames.length} subject(s): ${noFrames.join(', ')}`);
  if (unmatched > 0) warn(`${unmatched} labelled frames have no frame image and were left out`);
  return { base, tasks, splits: builder.build() };
};
