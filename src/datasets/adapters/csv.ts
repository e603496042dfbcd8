import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { IndexBuilder } from '../index_file.js';
import { adapterOptions } from '../manifest.js';
import { splitFromBucket } from '../splits.js';
import { MASKED, NO_CLASS, type Split, type TaskSpec } from '../types.js';
import { lineError, readLines, splitCsv, type Line } from './text.js';
import type { Adapter } from './types.js';

const SPLIT_NAMES: Record<string, Split> = {
  train: 'train',
  training: 'train',
  val: 'val',
  valid: 'val',
  validation: 'val',
  dev: 'val',
  test: 'test',
  testing: 'test',
};

/** 0/1 in the usual spellings; -1 counts as 0 (the ±1 coding of CelebA-style files). */
function binary(value: string): 0 | 1 | undefined {
  const v = value.toLowerCase();
  if (v === '1' || v === 'true' || v === 'yes') return 1;
  if (v === '0' || v === '-1' || v === 'false' || v === 'no') return 0;
  return undefined;
}

/**
 * A folder of images plus one CSV: a path column, an optional split column (train/val/test; rows
 * without one are split 70/10/20 by hashing the path), and per task either one column (a class
 * name, or a list of label names joined by list_separator) or one 0/1 column per label. Serves
 * S-ADD and any dataset a user describes in their own manifest.
 */
export const csvAdapter: Adapter = async ({ entry, root, warn }) => {
  const options = adapterOptions(entry, 'csv');
  const file = path.join(root, options.file);
  const lines = readLines(file);
  if (lines.length === 0) throw new UserError(`${file}: empty file (a header line is needed)`);
  const header = splitCsv(lines[0], file, options.separator);
  const column = (name: string, what: string): number => {
    const at = header.indexOf(name);
    if (at < 0) throw lineError(file, lines[0].number, `no column "${name}" (${what}); the header has: ${header.join(', ')}`);
    return at;
  };
  const pathAt = column(options.path_column, 'options.path_column');
  const splitAt = options.split_column === null ? -1 : header.indexOf(options.split_column);
  if (options.split_column !== null && splitAt < 0)
    warn(`${file}: no "${options.split_column}" column: samples are split 70/10/20% by hashing their path`);
  const missing = new Set(options.missing_values);
  const rows = lines.slice(1).map((line) => ({ line, cells: splitCsv(line, file, options.separator) }));
  for (const { line, cells } of rows) {
    if (cells.length !== header.length) throw lineError(file, line.number, `${cells.length} fields, the header has ${header.length}`);
  }

  interface Reader {
    task: TaskSpec;
    read: (cells: string[], line: Line) => number | Uint8Array | undefined;
  }
  const readers: Reader[] = Object.entries(entry.tasks).map(([name, spec]): Reader => {
    if (spec.kind === 'categorical') {
      const at = column(spec.column ?? name, `tasks.${name}.column`);
      const labels = spec.labels ?? [...new Set(rows.map((r) => r.cells[at]).filter((v) => !missing.has(v)))].sort();
      const lookup = new Map(labels.map((l, i) => [l.toLowerCase(), i]));
      return {
        task: { name, kind: 'categorical', labels },
        read: (cells, line) => {
          const value = cells[at];
          if (missing.has(value)) return NO_CLASS;
          const cls = lookup.get(value.toLowerCase());
          if (cls === undefined)
            throw lineError(
              file,
              line.number,
              `"${value}" in column "${header[at]}" is not one of the ${labels.length} classes of task "${name}"`,
            );
          return cls;
        },
      };
    }
    if (spec.columns) {
      const ats = spec.columns.map((c) => column(c, `tasks.${name}.columns`));
      const labels = spec.labels ?? spec.columns;
      if (labels.length !== ats.length)
        throw new UserError(`${entry.source}: entry "${entry.id}": tasks.${name}: ${labels.length} labels for ${ats.length} columns`);
      return {
        task: { name, kind: 'multilabel', labels },
        read: (cells, line) =>
          Uint8Array.from(ats, (at) => {
            const value = cells[at];
            if (missing.has(value)) return MASKED;
            const bit = binary(value);
            if (bit === undefined)
              throw lineError(
                file,
                line.number,
                `"${value}" in column "${header[at]}" is not 0/1 (nor a missing value: ${[...missing].map((m) => `"${m}"`).join(', ')})`,
              );
            return bit;
          }),
      };
    }
    const at = column(spec.column ?? name, `tasks.${name}.column`);
    const split = (value: string) =>
      value
        .split(options.list_separator)
        .map((v) => v.trim())
        .filter(Boolean);
    const labels = spec.labels ?? [...new Set(rows.flatMap((r) => (missing.has(r.cells[at]) ? [] : split(r.cells[at]))))].sort();
    const lookup = new Map(labels.map((l, i) => [l.toLowerCase(), i]));
    return {
      task: { name, kind: 'multilabel', labels },
      read: (cells, line) => {
        const value = cells[at];
        if (missing.has(value)) return undefined;
        const row = new Uint8Array(labels.length);
        for (const label of split(value)) {
          const i = lookup.get(label.toLowerCase());
          if (i === undefined)
            throw lineError(file, line.number, `"${label}" in column "${header[at]}" is not one of the labels of task "${name}"`);
          row[i] = 1;
        }
        return row;
      },
    };
  });

  const builder = new IndexBuilder(
    readers.map((r) => r.task),
    'files',
    path.join(root, options.images),
  );
  const seen = new Set<string>();
  for (const { line, cells } of rows) {
    const imagePath = cells[pathAt];
    if (!imagePath) throw lineError(file, line.number, `empty "${options.path_column}"`);
    if (path.isAbsolute(imagePath) || imagePath.split(/[\\/]/).includes('..'))
      throw lineError(file, line.number, `image path "${imagePath}" must be relative to the images folder`);
    if (seen.has(imagePath)) throw lineError(file, line.number, `image "${imagePath}" appears twice`);
    seen.add(imagePath);
    let split: Split;
    const splitValue = splitAt >= 0 ? cells[splitAt] : '';
    if (splitValue === '') split = splitFromBucket(imagePath);
    else {
      const named = SPLIT_NAMES[splitValue.toLowerCase()];
      if (!named) throw lineError(file, line.number, `split "${splitValue}" is not train, val or test`);
      split = named;
    }
    builder.add(split, imagePath, imagePath, Object.fromEntries(readers.map((r) => [r.task.name, r.read(cells, line)])));
  }
  return { tasks: readers.map((r) => r.task), splits: builder.build() };
};
