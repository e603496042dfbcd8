import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../../util/errors.js';
import { IndexBuilder } from '../index_file.js';
import { adapterOptions } from '../manifest.js';
import { splitFromBucket } from '../splits.js';
import { NO_CLASS, type RelatednessTable, type Split, type TaskSpec } from '../types.js';
import type { Adapter } from './types.js';

const emojiSchema = z.object({
  hexcode: z.string().regex(/^[0-9A-F]+(-[0-9A-F]+)*$/),
  group: z.string().min(1),
  subgroups: z.string().min(1),
  tags: z.string(),
  openmoji_tags: z.string(),
  skintone: z.union([z.string(), z.number()]),
  skintone_base_hexcode: z.string(),
});
type Emoji = z.infer<typeof emojiSchema>;

const SKINTONE_LABELS = ['none', 'light', 'medium-light', 'medium', 'medium-dark', 'dark'];

function tagWords(emoji: Emoji): Set<string> {
  const words = new Set<string>();
  for (const field of [emoji.tags, emoji.openmoji_tags]) {
    for (const word of field.split(',')) {
      const w = word.trim().toLowerCase();
      if (w) words.add(w);
    }
  }
  return words;
}

/** 0 = no skin tone, 1–5 = the single tone, NO_CLASS for mixed tones ("1,3") which no one class describes. */
function skintoneClass(value: string | number, where: string): number {
  const text = String(value).trim();
  if (text === '') return 0;
  if (/^[1-5]$/.test(text)) return Number(text);
  if (/^[1-5](,[1-5])+$/.test(text)) return NO_CLASS;
  throw new UserError(`${where}: unexpected skintone "${text}"`);
}

/**
 * Top `count` words by the number of distinct base emoji of the training split carrying them; ties
 * alphabetical. Counting each base once keeps a two-person emoji with 25 skin-tone versions from
 * filling the list.
 */
function chooseTags(trainBases: Iterable<Set<string>>, count: number): string[] {
  const frequency = new Map<string, number>();
  for (const words of trainBases) for (const w of words) frequency.set(w, (frequency.get(w) ?? 0) + 1);
  return [...frequency.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, count)
    .map(([w]) => w);
}

/**
 * The taxonomy as two relatedness tables, the way the paper's expert tables are given: each
 * subgroup belongs to exactly one group (subgroup→group: probability 1 on it), and a group is
 * spread evenly over its subgroups (group→subgroup: 1/n over the n subgroups it holds). The first
 * is as crisp as a table can be, the second diffuse; both come from the data file, not from counts.
 */
export function hierarchyTables(
  emoji: readonly Pick<Emoji, 'group' | 'subgroups'>[],
  groups: readonly string[],
  subgroups: readonly string[],
  where: string,
): RelatednessTable[] {
  const groupOf = new Map<string, string>();
  for (const e of emoji) {
    const known = groupOf.get(e.subgroups);
    if (known !== undefined && known !== e.group)
      throw new UserError(
        `${where}: subgroup "${e.subgroups}" appears in groups "${known}" and "${e.group}", ` +
          'so it has no single group; hierarchy tables need a tree',
      );
    groupOf.set(e.subgroups, e.group);
  }
  const subgroupToGroup = subgroups.map((s) => groups.map((g) => (groupOf.get(s) === g ? 1 : 0)));
  const groupToSubgroup = groups.map((g) => {
    const members = subgroups.filter((s) => groupOf.get(s) === g).length;
    return subgroups.map((s) => (groupOf.get(s) === g ? 1 / members : 0));
  });
  return [
    {
      from: 'subgroup',
      to: 'group',
      source: 'file',
      matrix: subgroupToGroup,
      description: 'the taxonomy of openmoji.json: each subgroup belongs to one group (probability 1)',
    },
    {
      from: 'group',
      to: 'subgroup',
      source: 'file',
      matrix: groupToSubgroup,
      description: 'the taxonomy of openmoji.json: a group spread evenly over its subgroups',
    },
  ];
}

export const openmojiAdapter: Adapter = async ({ entry, root }) => {
  const options = adapterOptions(entry, 'openmoji');
  const dataFile = path.join(root, options.data);
  const imageRoot = path.join(root, options.images);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(dataFile, 'utf8'));
  } catch (err) {
    throw new UserError(`${dataFile}: cannot read the emoji list (${(err as Error).message})`);
  }
  if (!Array.isArray(raw)) throw new UserError(`${dataFile}: expected a JSON array of emoji`);
  const all: Emoji[] = raw.map((item, i) => {
    const parsed = emojiSchema.safeParse(item);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new UserError(`${dataFile}: [${i}].${issue.path.join('.')}: ${issue.message}`);
    }
    return parsed.data;
  });
  const byHexcode = new Map(all.map((e) => [e.hexcode, e]));
  const excluded = new Set(options.exclude_groups);
  const kept = all.filter((e) => !excluded.has(e.group));
  if (kept.length === 0) throw new UserError(`${dataFile}: no emoji left after excluding groups ${options.exclude_groups.join(', ')}`);

  const baseOf = (e: Emoji) => e.skintone_base_hexcode || e.hexcode;
  // Skin-tone variants have empty tag fields: they carry their base emoji's tags.
  const wordsOf = (e: Emoji) => tagWords(byHexcode.get(baseOf(e)) ?? e);
  const splitOf = (e: Emoji): Split => splitFromBucket(baseOf(e));

  const trainBases = new Map<string, Set<string>>();
  for (const e of kept) if (splitOf(e) === 'train' && !trainBases.has(baseOf(e))) trainBases.set(baseOf(e), wordsOf(e));
  const tagVocabulary = chooseTags(trainBases.values(), options.tag_count);

  const groups: string[] = [];
  const subgroups: string[] = [];
  for (const e of kept) {
    if (!groups.includes(e.group)) groups.push(e.group);
    if (!subgroups.includes(e.subgroups)) subgroups.push(e.subgroups);
  }
  const tasks: TaskSpec[] = [
    { name: 'group', kind: 'categorical', labels: groups },
    { name: 'subgroup', kind: 'categorical', labels: subgroups },
    { name: 'tags', kind: 'multilabel', labels: tagVocabulary },
    { name: 'skintone', kind: 'categorical', labels: SKINTONE_LABELS },
  ];
  const groupIndex = new Map(groups.map((g, i) => [g, i]));
  const subgroupIndex = new Map(subgroups.map((g, i) => [g, i]));
  const builder = new IndexBuilder(tasks, 'files', imageRoot);
  kept.forEach((e) => {
    const file = `${e.hexcode}.svg`;
    if (!fs.existsSync(path.join(imageRoot, file)))
      throw new UserError(`${dataFile}: emoji ${e.hexcode} has no image ${path.join(imageRoot, file)}`);
    const words = wordsOf(e);
    builder.add(splitOf(e), e.hexcode, file, {
      group: groupIndex.get(e.group),
      subgroup: subgroupIndex.get(e.subgroups),
      tags: Uint8Array.from(tagVocabulary, (w) => (words.has(w) ? 1 : 0)),
      skintone: skintoneClass(e.skintone, `${dataFile}: emoji ${e.hexcode}`),
    });
  });
  const wantsHierarchy = entry.relatedness.some((r) => 'generated' in r);
  return { tasks, splits: builder.build(), ...(wantsHierarchy ? { relatedness: hierarchyTables(kept, groups, subgroups, dataFile) } : {}) };
};
