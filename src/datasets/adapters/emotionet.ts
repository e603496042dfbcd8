import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { IndexBuilder } from '../index_file.js';
import { adapterOptions } from '../manifest.js';
import { splitFromBucket } from '../splits.js';
import { MASKED, type TaskSpec } from '../types.js';
import { auNumber } from './frames.js';
import { lineError, readLines, splitCsv } from './text.js';
import type { Adapter } from './types.js';

/**
 * EmotioNet's FACS-coded CSV: URL, URL orig, then one 'AU n' column per AU with 0/1 and 999 =
 * not coded (masked). Images come from a local folder, named as the last segment of the URL.
 */
export const emotionetAdapter: Adapter = async ({ entry, root, warn }) => {
  const options = adapterOptions(entry, 'emotionet');
  const file = path.join(root, options.file);
  const imageRoot = path.join(root, options.images);
  if (!fs.existsSync(imageRoot))
    throw new UserError(`missing EmotioNet image folder ${imageRoot}: download the images listed in the CSV there`);
  const lines = readLines(file);
  if (lines.length === 0) throw new UserError(`${file}: empty file`);
  const header = splitCsv(lines[0], file);
  const urlAt = header.findIndex((h) => h.toLowerCase() === 'url');
  if (urlAt < 0) throw lineError(file, lines[0].number, `no "URL" column; the header has: ${header.join(', ')}`);
  const auColumns = header
    .map((h, i) => ({ i, au: /^au\s*\d+$/i.test(h) ? auNumber(h.replace(/^au/i, '')) : undefined }))
    .filter((c) => c.au !== undefined);
  const declared = entry.tasks.au?.labels;
  const chosen = declared
    ? declared.map((label) => {
        const au = auNumber(label);
        const column = auColumns.find((c) => c.au === au);
        if (!column) throw lineError(file, lines[0].number, `no column for ${label} (task au of the manifest)`);
        return column;
      })
    : auColumns;
  if (chosen.length === 0) throw lineError(file, lines[0].number, `no 'AU n' columns in the header`);
  const labels = declared ?? chosen.map((c) => `AU${c.au}`);
  const tasks: TaskSpec[] = [{ name: 'au', kind: 'multilabel', labels }];
  const builder = new IndexBuilder(tasks, 'files', imageRoot);
  const available = new Set(fs.readdirSync(imageRoot));
  let missing = 0;
  const seen = new Set<string>();
  for (const line of lines.slice(1)) {
    const cells = splitCsv(line, file);
    if (cells.length !== header.length) throw lineError(file, line.number, `${cells.length} fields, the header has ${header.length}`);
    let name: string;
    try {
      name = decodeURIComponent(path.posix.basename(new URL(cells[urlAt]).pathname));
    } catch {
      throw lineError(file, line.number, `"${cells[urlAt]}" is not a URL`);
    }
    if (!available.has(name) || seen.has(name)) {
      if (!available.has(name)) missing++;
      continue;
    }
    seen.add(name);
    const row = Uint8Array.from(chosen, ({ i }) => {
      const value = cells[i];
      if (value === '999') return MASKED;
      if (value === '0' || value === '1') return Number(value);
      throw lineError(file, line.number, `column "${header[i]}" is "${value}", expected 0, 1 or 999 (not coded)`);
    });
    builder.add(splitFromBucket(name), name, name, { au: row });
  }
  if (missing > 0) warn(`${missing} images of the CSV are not in ${imageRoot} and were left out`);
  return { tasks, splits: builder.build() };
};
