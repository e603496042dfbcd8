import { readIndex } from '../datasets/index_file.js';
import { ensureIndex, loadDataset } from '../datasets/load.js';
import { datasetLayout, readSourceRecord } from '../datasets/layout.js';
import { getEntry, loadManifest, priorMatrix, type DatasetEntry, type Manifest } from '../datasets/manifest.js';
import { initBackend } from '../engine/backend.js';
import { gpuNotUsedLine } from '../engine/gpu.js';
import { loadBackboneManifest, type BackboneManifest } from '../model/backbone_manifest.js';
import { fetchedBackboneFolder } from '../model/backbone_store.js';
import { BACKBONE_NAMES } from '../model/backbones.js';
import { trainCell } from '../train/trainer.js';
import { UserError } from '../util/errors.js';
import { mtlBenchHome } from '../util/paths.js';
import type { CatalogEntry, DatasetCatalog } from './catalog.js';
import type { BenchDeps } from './command.js';
import { perImageCost } from './cost.js';
import type { ImageCounts } from './estimate.js';
import type { PretrainedBackboneInfo } from './preview.js';
import { collectProvenance } from './provenance.js';
import { workerTrainer } from './worker_trainer.js';

/** Split sizes: counted in the index when the data is indexed here, else the manifest's published ones (validation carved from train). */
function imageCounts(entry: DatasetEntry, home: string): ImageCounts | undefined {
  const index = readIndex(datasetLayout(entry.id, home).indexFile);
  if (index)
    return { train: index.splits.train.ids.length, val: index.splits.val.ids.length, test: index.splits.test.ids.length, source: 'index' };
  const published = entry.samples;
  if (!published) return undefined;
  const val = published.val ?? Math.round(published.train * entry.val_fraction);
  return { train: published.val === undefined ? published.train - val : published.train, val, test: published.test, source: 'manifest' };
}

/** The catalog of the dataset manifest (datasets.yaml plus --manifest files) and this machine's cache. */
export function manifestCatalog(manifest: Manifest, home: string = mtlBenchHome()): DatasetCatalog {
  const prepared = new Set<string>();
  const counts = new Map<string, ImageCounts | undefined>();
  const describe = (id: string): CatalogEntry | undefined => {
    const entry = manifest.datasets.get(id);
    if (!entry) return undefined;
    const packaged = entry.access === 'package';
    const record = packaged ? undefined : readSourceRecord(datasetLayout(id, home));
    return {
      id,
      tasks: Object.entries(entry.tasks).map(([name, task]) => ({ name, kind: task.kind })),
      tables: entry.relatedness.map((r) => ({ from: r.from, to: r.to, source: 'prior' in r ? ('prior' as const) : ('file' as const) })),
      // A package dataset is indexed on first use; it is ready once prepare() has built its index.
      ready: packaged ? prepared.has(id) : record !== undefined,
      buildsOffline: packaged,
      fetchHint:
        entry.access === 'request'
          ? `it needs a licence (${entry.request?.url ?? entry.homepage}); then run: mtl-bench datasets fetch ${id} --from PATH`
          : `run: mtl-bench datasets fetch ${id}`,
    };
  };
  return {
    ids: () => [...manifest.datasets.keys()].sort(),
    get: describe,
    priorIds: () => [...manifest.priors.keys()].sort(),
    priorMatrix: (id, rows, columns) => {
      const prior = manifest.priors.get(id);
      if (!prior) throw new UserError(`no prior named "${id}" in the dataset manifest`);
      return priorMatrix(prior, rows, columns);
    },
    prepare: async (id) => {
      await ensureIndex(getEntry(manifest, id), { home });
      prepared.add(id);
    },
    imageCounts: (id) => {
      const entry = manifest.datasets.get(id);
      if (!entry) return undefined;
      // Reading an index of 200k samples takes a moment: once per dataset and command.
      if (!counts.has(id)) counts.set(id, imageCounts(entry, home));
      return counts.get(id);
    },
  };
}

/** The pretrained backbones of backbones.yaml as `run` sees them: a label and whether each is fetched here. */
function pretrainedInfo(manifest: BackboneManifest, name: string, home: string): PretrainedBackboneInfo | undefined {
  const entry = manifest.backbones.get(name);
  if (!entry) return undefined;
  return {
    label: entry.name,
    ready: fetchedBackboneFolder(entry.id, home) !== undefined,
    hint: `run: mtl-bench backbones fetch ${entry.id}`,
  };
}

/** The real trainer, data loader, catalog and backend. */
export function defaultBenchDeps(options: { manifestFiles?: string[] } = {}): BenchDeps {
  let manifest: Manifest | undefined;
  const getManifest = () => (manifest ??= loadManifest({ extra: options.manifestFiles }));
  let catalog: DatasetCatalog | undefined;
  const getCatalog = () => (catalog ??= manifestCatalog(getManifest()));
  const backbones = loadBackboneManifest();
  return {
    trainCell: (config, data, trainOptions) => trainCell(config, data, trainOptions),
    workerTrainer: (setup) => workerTrainer(setup, options.manifestFiles),
    loadDataset: (id, { inputSize }) => loadDataset(id, { inputSize, manifest: getManifest() }),
    provenance: collectProvenance,
    priorMatrix: (prior, rows, columns) => getCatalog().priorMatrix(prior, rows, columns),
    catalog: getCatalog,
    backbones: [...BACKBONE_NAMES, ...backbones.backbones.keys()],
    pretrainedBackbone: (name) => pretrainedInfo(backbones, name, mtlBenchHome()),
    measureCost: (request) => perImageCost(request, { manifest: backbones }),
    initBackend: async (requested) => {
      const report = await initBackend({ requested });
      const gpuWarning = report.gpu ? gpuNotUsedLine(report.gpu) : undefined;
      return { name: report.choice, gpuInUse: report.gpu?.used === true, warnings: gpuWarning ? [gpuWarning] : [] };
    },
  };
}
