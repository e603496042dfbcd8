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
 * BP4D: AUCoding/AU_OCC/<subject>_<task>.csv, a header of AU numbers after the frame column,
 * then 0/1 per AU with 9 = unknown (masked). Frames: <frames>/<subject>/<task>/<…number…>.jpg.
 * Subjects are split 70/10/20 by hash.
 */
export const bp4dAdapter: Adapter = async ({ entry, root, warn }) => {
  const options = adapterOptions(entry, 'bp4d');
  const labels = declaredLabels(entry, 'au');
  const aus = labels.map((l) => {
    const n = auNumber(l);
    if (n === undefined) throw new UserError(`${entry.source}: entry "${entry.id}": tasks.au.labels: "${l}" is not an AU name like AU12`);
    return n;
  });
  const occRoot = findFirst(
    [path.join(root, 'AUCoding', 'AU_OCC'), path.join(root, 'BP4D', 'AUCoding', 'AU_OCC')],
    'BP4D AUCoding/AU_OCC/ folder',
  );
  const base = path.dirname(path.dirname(occRoot));
  const framesRoot = path.join(base, options.frames);
  if (!fs.existsSync(framesRoot))
    throw new UserError(`missing BP4D frame folder ${framesRoot}: extract frames to ${options.frames}/<subject>/<task>/<frame>.jpg`);
  const files = fs
    .readdirSync(occRoot)
    .filter((n) => /\.csv$/i.test(n))
    .sort();
  if (files.length === 0) throw new UserError(`${occRoot}: no AU occurrence .csv files`);
  const tasks: TaskSpec[] = [{ name: 'au', kind: 'multilabel', labels }];
  const builder = new IndexBuilder(tasks, 'files', framesRoot);
  let unmatched = 0;
  const noFrames: string[] = [];
  for (const name of files) {
    const m = /^([^_]+)_([^.]+)\.csv$/i.exec(name);
    if (!m) throw new UserError(`${path.join(occRoot, name)}: expected a name like F001_T1.csv`);
    const [, subject, session] = m;
    const file = path.join(occRoot, name);
    const lines = readLines(file);
    if (lines.length === 0) throw new UserError(`${file}: empty file`);
    const header = splitCsv(lines[0], file);
    const columns = aus.map((au) => {
      const at = header.findIndex((h, i) => i > 0 && auNumber(h) === au);
      if (at < 0) throw lineError(file, lines[0].number, `no column for AU${au} in the header`);
      return at;
    });
    const frames = framesByNumber(path.join(framesRoot, subject, session));
    if (frames.size === 0) {
      noFrames.push(`${subject}/${session}`);
      continue;
    }
    const split = splitFromBucket(subject);
    for (const line of lines.slice(1)) {
      const cells = splitCsv(line, file);
      const frame = parseInteger(cells[0], file, line.number, 'frame');
      const row = Uint8Array.from(columns, (at) => {
        const value = cells[at];
        if (value === undefined || value === '' || value === '9') return MASKED;
        if (value === '0' || value === '1') return Number(value);
        throw lineError(file, line.number, `AU column "${header[at]}" is "${value}", expected 0, 1 or 9 (unknown)`);
      });
      const image = frames.get(frame);
      if (!image) {
        unmatched++;
        continue;
      }
      const rel = `${subject}/${session}/${image}`;
      builder.add(split, rel, rel, { au: row });
    }
  }
  if (noFrames.length > 0)
    warn(`no frames found for ${noFrames.length} session(s): ${noFrames.slice(0, 5).join(', ')}${noFrames.length > 5 ? ', …' : ''}`);
  if (unmatched > 0) warn(`${unmatched} labelled frames have no frame image and were left out`);
  return { base, tasks, splits: builder.build() };
};
