import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { packageRoot } from '../util/paths.js';
import { formatKeyPath, loadYamlFile } from '../util/yaml_file.js';

/**
 * datasets.yaml: one entry per dataset (where its files come from, how to verify them, which
 * adapter reads them, which tasks it yields) plus named relatedness priors. Users add or override
 * entries with their own files (`--manifest FILE`), validated by the same schema.
 */

export const ADAPTER_FORMATS = [
  'openmoji',
  'cub',
  'affectnet',
  'csv',
  'cad',
  'celeba',
  'rafdb',
  'disfa',
  'bp4d',
  'emotionet',
  'idx',
] as const;
export type AdapterFormat = (typeof ADAPTER_FORMATS)[number];

const idPattern = /^[a-z0-9][a-z0-9._-]*$/;
const hex = (digits: number) =>
  z
    .string()
    .regex(new RegExp(`^[0-9a-fA-F]{${digits}}$`), `expected ${digits} hexadecimal digits`)
    .transform((s) => s.toLowerCase());
const relativePath = z
  .string()
  .min(1)
  .refine((p) => !path.isAbsolute(p) && !p.split(/[\\/]/).includes('..'), 'must be a relative path inside the dataset folder');

const fileSchema = z
  .strictObject({
    /** Local file name under downloads/ (defaults to the last segment of the url or package path). */
    name: z
      .string()
      .regex(/^[^/\\]+$/, 'must be a plain file name')
      .optional(),
    url: z.url({ protocol: /^https?$/ }).optional(),
    package: z.string().min(1).optional(),
    path: relativePath.optional(),
    size: z.number().int().positive().optional(),
    sha256: hex(64).optional(),
    md5: hex(32).optional(),
    extract: z.boolean().default(false),
  })
  .superRefine((file, ctx) => {
    if ((file.url === undefined) === (file.package === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of "url" or "package"' });
    }
    if (file.package !== undefined && file.path === undefined)
      ctx.addIssue({ code: 'custom', path: ['path'], message: 'a package file needs "path" (its path inside the package)' });
    if (file.url !== undefined && file.sha256 === undefined && file.md5 === undefined && file.size === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a downloaded file needs at least one of "sha256", "md5" or "size" so it can be verified' });
    }
  });

const taskSchema = z.strictObject({
  kind: z.enum(['categorical', 'multilabel']),
  description: z.string().optional(),
  /** Class or label names in index order, where the format does not carry them itself. */
  labels: z.array(z.string().min(1)).min(1).optional(),
  /** Where the format finds the names (documentation for `datasets info`; the adapter knows the file). */
  labels_from: z.string().optional(),
  /** csv adapter: the column holding a categorical label or a separator-joined multi-label list. */
  column: z.string().min(1).optional(),
  /** csv adapter: one 0/1 column per multi-label entry. */
  columns: z.array(z.string().min(1)).min(1).optional(),
});

const relatednessSchema = z.union([
  z.strictObject({ from: z.string(), to: z.string(), prior: z.string().min(1), description: z.string().optional() }),
  z.strictObject({
    from: z.string(),
    to: z.string(),
    file: relativePath,
    scale: z.number().positive().default(1),
    description: z.string().optional(),
  }),
  // A table the format's adapter derives from the dataset's own files (e.g. openmoji's taxonomy); like `file`, it is the data's own table.
  z.strictObject({ from: z.string(), to: z.string(), generated: z.literal(true), description: z.string().optional() }),
]);

const imageSchema = z.strictObject({
  channels: z.union([z.literal(1), z.literal(3)]).default(3),
  /** How a non-square image becomes square: squash (fill), centre-crop (cover) or pad (contain). */
  fit: z.enum(['fill', 'cover', 'contain']).default('fill'),
  background: z
    .string()
    .regex(/^#[0-9a-fA-F]{6}$/, 'expected a colour like #ffffff')
    .default('#ffffff'),
  /** Fraction of a split's images that may fail to decode (skipped and reported) before indexing fails. */
  max_bad_fraction: z.number().min(0).max(1).default(0.01),
  /** The input size `datasets fetch` and `datasets index` prepare a cache for. */
  default_size: z.number().int().min(4).max(1024).default(32),
});

/** Adapter options, checked per format so that a typo in datasets.yaml is caught when it is read. */
export const ADAPTER_OPTION_SCHEMAS = {
  openmoji: z.strictObject({
    package: z.string().default('openmoji'),
    data: relativePath.default('data/openmoji.json'),
    images: relativePath.default('color/svg'),
    exclude_groups: z.array(z.string()).default(['extras-openmoji', 'extras-unicode', 'component', 'flags']),
    tag_count: z.number().int().positive().default(32),
  }),
  cub: z.strictObject({}),
  affectnet: z.strictObject({ classes: z.union([z.literal(7), z.literal(8)]).default(7) }),
  csv: z.strictObject({
    file: relativePath,
    images: relativePath.default('.'),
    path_column: z.string().default('path'),
    split_column: z.string().nullable().default('split'),
    separator: z.string().length(1).default(','),
    list_separator: z.string().min(1).default(';'),
    missing_values: z.array(z.string()).default(['', 'NA', 'nan', 'NaN', '?']),
  }),
  cad: z.strictObject({}),
  celeba: z.strictObject({ partition: z.enum(['official', 'within-identity']).default('official') }),
  rafdb: z.strictObject({}),
  disfa: z.strictObject({ frames: relativePath.default('Frames'), threshold: z.number().int().min(1).max(5).default(2) }),
  bp4d: z.strictObject({ frames: relativePath.default('Frames') }),
  emotionet: z.strictObject({ file: relativePath.default('EmotioNet_FACS_aws_2020_24600.csv'), images: relativePath.default('images') }),
  idx: z.strictObject({
    train_images: relativePath.default('train-images-idx3-ubyte.gz'),
    train_labels: relativePath.default('train-labels-idx1-ubyte.gz'),
    test_images: relativePath.default('t10k-images-idx3-ubyte.gz'),
    test_labels: relativePath.default('t10k-labels-idx1-ubyte.gz'),
    task: z.string().default('category'),
  }),
} satisfies Record<AdapterFormat, z.ZodType>;

export type AdapterOptions<F extends AdapterFormat> = z.output<(typeof ADAPTER_OPTION_SCHEMAS)[F]>;

const entrySchema = z
  .strictObject({
    id: z.string().regex(idPattern, 'lower-case letters, digits, ".", "_" or "-"'),
    name: z.string().min(1),
    description: z.string().optional(),
    homepage: z.url(),
    license: z.string().min(1),
    citation: z.string().optional(),
    access: z.enum(['public', 'request', 'package']),
    request: z.strictObject({ url: z.url().optional(), instructions: z.string().min(1) }).optional(),
    files: z.array(fileSchema).default([]),
    format: z.enum(ADAPTER_FORMATS),
    options: z.record(z.string(), z.unknown()).default({}),
    image: imageSchema.default({ channels: 3, fit: 'fill', background: '#ffffff', max_bad_fraction: 0.01, default_size: 32 }),
    /** Share of the training split held out for validation when the dataset has no validation split of its own. */
    val_fraction: z.number().min(0).max(0.5).default(0.1),
    /**
     * Published split sizes (no val: it is carved from train by val_fraction), so `run` can estimate
     * a study's time before the data is here.
     */
    samples: z
      .strictObject({ train: z.number().int().positive(), val: z.number().int().positive().optional(), test: z.number().int().positive() })
      .optional(),
    tasks: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'task names are letters, digits, "_" or "-"'), taskSchema),
    relatedness: z.array(relatednessSchema).default([]),
    notes: z.array(z.string()).default([]),
  })
  .superRefine((entry, ctx) => {
    if (entry.access === 'request' && !entry.request)
      ctx.addIssue({ code: 'custom', path: ['request'], message: 'a "request" dataset needs request.instructions (where to ask for it)' });
    if (entry.access === 'public' && !entry.files.some((f) => f.url))
      ctx.addIssue({ code: 'custom', path: ['files'], message: 'a "public" dataset needs at least one file with a url' });
    if (entry.access === 'package' && !entry.files.some((f) => f.package))
      ctx.addIssue({ code: 'custom', path: ['files'], message: 'a "package" dataset needs at least one file with a package' });
    if (Object.keys(entry.tasks).length === 0) ctx.addIssue({ code: 'custom', path: ['tasks'], message: 'at least one task is needed' });
    const optionSchema = ADAPTER_OPTION_SCHEMAS[entry.format];
    const parsed = optionSchema.safeParse(entry.options);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        ctx.addIssue({ code: 'custom', path: ['options', ...issue.path.map(String)], message: issue.message });
    }
    entry.relatedness.forEach((rel, i) => {
      for (const side of ['from', 'to'] as const) {
        if (!entry.tasks[rel[side]])
          ctx.addIssue({ code: 'custom', path: ['relatedness', i, side], message: `no task named "${rel[side]}" in this entry` });
      }
      if (entry.tasks[rel.from] && entry.tasks[rel.from].kind !== 'categorical') {
        ctx.addIssue({
          code: 'custom',
          path: ['relatedness', i, 'from'],
          message: `relatedness rows come from a categorical task; "${rel.from}" is multilabel`,
        });
      }
    });
  });

export type ManifestFile = z.infer<typeof fileSchema>;
type ParsedEntry = z.infer<typeof entrySchema>;

export interface DatasetEntry extends Omit<ParsedEntry, 'options'> {
  options: Record<string, unknown>;
  /** The manifest file this entry came from, for error messages. */
  source: string;
}

/** A relatedness prior: rows are class names, each mapping label names to p(label | class); absent labels are 0. */
const priorSchema = z.strictObject({
  description: z.string().min(1),
  citation: z.string().optional(),
  rows: z.record(z.string(), z.record(z.string(), z.number().min(0).max(1))),
});
export type RelatednessPrior = z.infer<typeof priorSchema> & { id: string; source: string };

const manifestSchema = z.strictObject({
  version: z.literal(1),
  priors: z.record(z.string().regex(idPattern), priorSchema).default({}),
  datasets: z.array(z.unknown()).default([]),
});

export interface Manifest {
  /** Files read, the package's own first; later files override earlier entries with the same id. */
  files: string[];
  datasets: Map<string, DatasetEntry>;
  priors: Map<string, RelatednessPrior>;
}

export const DEFAULT_MANIFEST = path.join(packageRoot, 'datasets.yaml');

function firstIssue(error: z.ZodError): { path: string; message: string } {
  const issue = error.issues[0];
  // Unions report "invalid input" at the top; the most specific branch message is more useful.
  if (issue.code === 'invalid_union' && 'errors' in issue && Array.isArray(issue.errors)) {
    const branches = issue.errors as z.core.$ZodIssue[][];
    const best = branches
      .map((issues) => issues[0])
      .filter(Boolean)
      .sort((a, b) => b.path.length - a.path.length)[0];
    if (best) return { path: formatKeyPath([...issue.path, ...best.path]) || '(top level)', message: best.message };
  }
  return { path: formatKeyPath(issue.path) || '(top level)', message: issue.message };
}

/** Parses one manifest file; every error names the file, the entry id and the key path. */
function parseManifestFile(file: string, text?: string): { datasets: DatasetEntry[]; priors: RelatednessPrior[] } {
  const raw = loadYamlFile(file, 'manifest file', text);
  const top = manifestSchema.safeParse(raw);
  if (!top.success) {
    const { path: where, message } = firstIssue(top.error);
    throw new UserError(`${file}: ${where}: ${message}`);
  }
  const priors = Object.entries(top.data.priors).map(([id, prior]) => ({ ...prior, source: file, id }));
  const datasets: DatasetEntry[] = [];
  const seen = new Set<string>();
  top.data.datasets.forEach((rawEntry, index) => {
    const label =
      typeof rawEntry === 'object' && rawEntry && typeof (rawEntry as { id?: unknown }).id === 'string'
        ? `entry "${(rawEntry as { id: string }).id}"`
        : `entry #${index + 1}`;
    const parsed = entrySchema.safeParse(rawEntry);
    if (!parsed.success) {
      const { path: where, message } = firstIssue(parsed.error);
      throw new UserError(`${file}: ${label}: ${where}: ${message}`);
    }
    if (seen.has(parsed.data.id)) throw new UserError(`${file}: ${label}: id: "${parsed.data.id}" appears twice in this file`);
    seen.add(parsed.data.id);
    datasets.push({ ...parsed.data, source: file });
  });
  return { datasets, priors };
}

export interface LoadManifestOptions {
  /** Extra manifest files (`--manifest FILE`), applied in order after the package's own. */
  extra?: string[];
  /** Replaces the package's datasets.yaml (tests). */
  base?: string;
}

export function loadManifest(options: LoadManifestOptions = {}): Manifest {
  const files = [options.base ?? DEFAULT_MANIFEST, ...(options.extra ?? []).map((f) => path.resolve(f))];
  const manifest: Manifest = { files, datasets: new Map(), priors: new Map() };
  for (const file of files) {
    const { datasets, priors } = parseManifestFile(file);
    for (const prior of priors) manifest.priors.set(prior.id, prior);
    for (const entry of datasets) manifest.datasets.set(entry.id, entry);
  }
  for (const entry of manifest.datasets.values()) {
    entry.relatedness.forEach((rel, i) => {
      if ('prior' in rel && !manifest.priors.has(rel.prior)) {
        throw new UserError(
          `${entry.source}: entry "${entry.id}": relatedness[${i}].prior: no prior named "${rel.prior}" ` +
            `(known: ${[...manifest.priors.keys()].join(', ') || 'none'})`,
        );
      }
    });
  }
  return manifest;
}

export function getEntry(manifest: Manifest, id: string): DatasetEntry {
  const entry = manifest.datasets.get(id);
  if (!entry) {
    throw new UserError(
      `unknown dataset "${id}"; known: ${[...manifest.datasets.keys()].sort().join(', ')} (add your own with --manifest FILE)`,
    );
  }
  return entry;
}

/** The adapter options of an entry with defaults filled in (already validated when the manifest was read). */
export function adapterOptions<F extends AdapterFormat>(entry: DatasetEntry, format: F): AdapterOptions<F> {
  return ADAPTER_OPTION_SCHEMAS[format].parse(entry.options) as AdapterOptions<F>;
}

/** The local name of a manifest file under downloads/. */
export function fileName(file: ManifestFile): string {
  if (file.name) return file.name;
  const source = file.url ? new URL(file.url).pathname : (file.path ?? '');
  const base = path.posix.basename(source);
  if (!base) throw new UserError(`cannot derive a file name from "${file.url ?? file.path}"; give "name"`);
  return base;
}

/** Sum of the declared sizes, or undefined when a file has none. */
export function declaredSize(entry: DatasetEntry): number | undefined {
  let total = 0;
  for (const file of entry.files) {
    if (file.size === undefined) return undefined;
    total += file.size;
  }
  return entry.files.length > 0 ? total : undefined;
}

function normalizeName(name: string): string {
  // "AU 1", "AU01" and "au1" name the same action unit; case and spacing never matter.
  return name
    .toLowerCase()
    .replace(/[\s_-]+/g, '')
    .replace(/(\D)0+(\d)/g, '$1$2');
}

/**
 * Lays a prior out as a matrix for the given class and label names. Rows the prior does not know
 * raise an error (a silently zero row would claim "no labels" for a class it never described);
 * labels it does not mention are 0, as in the source tables.
 */
export function priorMatrix(prior: RelatednessPrior, rowNames: string[], columnNames: string[]): number[][] {
  const rows = new Map(
    Object.entries(prior.rows).map(([k, v]) => [normalizeName(k), new Map(Object.entries(v).map(([l, p]) => [normalizeName(l), p]))]),
  );
  return rowNames.map((rowName) => {
    const cells = rows.get(normalizeName(rowName));
    if (!cells)
      throw new UserError(
        `${prior.source}: prior "${prior.id}" has no row for class "${rowName}" (rows: ${Object.keys(prior.rows).join(', ')})`,
      );
    return columnNames.map((col) => cells.get(normalizeName(col)) ?? 0);
  });
}
