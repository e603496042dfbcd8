import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { packageRoot } from '../util/paths.js';
import { formatKeyPath, loadYamlFile } from '../util/yaml_file.js';

/**
 * backbones.yaml: pretrained tfjs Layers models a benchmark can name as its backbone
 * (`backbone: { name: mobilenet_v1_1.0_224 }`). Each entry says where model.json is (its weight
 * shards are named inside it, next to it), how to verify the files (size and sha256 where the
 * publisher gives them; otherwise the first download pins them, see backbone_store.ts), which
 * layer's output is the feature map, and what input the weights were trained on.
 */

const idPattern = /^[a-z0-9][a-z0-9._-]*$/;
const sha256 = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hexadecimal digits')
  .transform((s) => s.toLowerCase());

const fileCheckSchema = z.strictObject({
  size: z.number().int().positive().optional(),
  sha256: sha256.optional(),
});

const entrySchema = z.strictObject({
  id: z.string().regex(idPattern, 'lower-case letters, digits, ".", "_" or "-"'),
  name: z.string().min(1),
  description: z.string().optional(),
  homepage: z.url(),
  license: z.string().min(1),
  citation: z.string().optional(),
  /** The model.json of a tfjs Layers model; its weight shards are fetched from beside it. */
  model: z.url({ protocol: /^https?$/ }),
  /** Published size and sha256 per file (model.json and each shard, by file name); files not listed are pinned at first download. */
  files: z.record(z.string().min(1), fileCheckSchema).default({}),
  /** The layer whose output is the feature map (the classifier after it is dropped). */
  features: z.string().min(1),
  input: z.strictObject({
    /** The size the weights were trained at; the convolutions also take other sizes. */
    size: z.number().int().positive(),
    /** Smallest input the network still reduces to at least one pixel. */
    min_size: z.number().int().positive().default(32),
    channels: z.literal(3).default(3),
    /** Pixel range the weights expect; mtl-bench's images are in [0, 1] and are rescaled to it. */
    range: z
      .tuple([z.number(), z.number()])
      .refine(([lo, hi]) => lo < hi, 'expected [low, high] with low < high')
      .default([0, 1]),
  }),
  /** Forward multiply-accumulates per image at `input.size` (for time estimates before the model is here). */
  macs: z.number().positive().optional(),
  notes: z.array(z.string()).default([]),
});

export type BackboneEntry = z.infer<typeof entrySchema> & { source: string };

const manifestSchema = z.strictObject({
  version: z.literal(1),
  backbones: z.array(z.unknown()).default([]),
});

export interface BackboneManifest {
  files: string[];
  backbones: Map<string, BackboneEntry>;
}

const DEFAULT_BACKBONE_MANIFEST = path.join(packageRoot, 'backbones.yaml');

function parseFile(file: string): BackboneEntry[] {
  const raw = loadYamlFile(file, 'backbone manifest');
  const top = manifestSchema.safeParse(raw);
  if (!top.success) {
    const issue = top.error.issues[0]!;
    throw new UserError(`${file}: ${formatKeyPath(issue.path) || '(top level)'}: ${issue.message}`);
  }
  const seen = new Set<string>();
  return top.data.backbones.map((rawEntry, index) => {
    const id = (rawEntry as { id?: unknown } | null)?.id;
    const label = typeof id === 'string' ? `backbone "${id}"` : `backbone #${index + 1}`;
    const parsed = entrySchema.safeParse(rawEntry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new UserError(`${file}: ${label}: ${formatKeyPath(issue.path) || '(top level)'}: ${issue.message}`);
    }
    if (seen.has(parsed.data.id)) throw new UserError(`${file}: ${label}: id: "${parsed.data.id}" appears twice in this file`);
    seen.add(parsed.data.id);
    if (parsed.data.input.min_size > parsed.data.input.size)
      throw new UserError(`${file}: ${label}: input.min_size: larger than input.size`);
    return { ...parsed.data, source: file };
  });
}

/**
 * The package's backbones.yaml (or `base`, in tests), then each file of MTL_BENCH_BACKBONES
 * (separated like PATH), adding entries or overriding those with the same id: a cluster without
 * internet points `model:` at its own mirror this way.
 */
export function loadBackboneManifest(options: { base?: string; env?: NodeJS.ProcessEnv } = {}): BackboneManifest {
  const extra = ((options.env ?? process.env).MTL_BENCH_BACKBONES ?? '').split(path.delimiter).filter((f) => f.trim() !== '');
  const files = [options.base ?? DEFAULT_BACKBONE_MANIFEST, ...extra.map((f) => path.resolve(f))];
  const backbones = new Map<string, BackboneEntry>();
  for (const file of files) for (const entry of parseFile(file)) backbones.set(entry.id, entry);
  return { files, backbones };
}

export function getBackboneEntry(manifest: BackboneManifest, id: string): BackboneEntry {
  const entry = manifest.backbones.get(id);
  if (!entry) {
    const known = [...manifest.backbones.keys()].sort().join(', ') || 'none';
    throw new UserError(`unknown pretrained backbone "${id}"; known: ${known} (or give your own model with pretrained: PATH)`);
  }
  return entry;
}
