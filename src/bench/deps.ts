import { ensureIndex, loadDataset } from '../datasets/load.js';
import { datasetLayout, readSourceRecord } from '../datasets/layout.js';
import { getEntry, loadManifest, priorMatrix, type Manifest } from '../datasets/manifest.js';
import { initBackend } from '../engine/backend.js';
import { gpuNotUsedLine } from '../engine/gpu.js';
import { BACKBONE_NAMES } from '../model/backbones.js';
import { trainCell } from '../train/trainer.js';
import { UserError } from '../util/errors.js';
import { mtlBenchHome } from '../util/paths.js';
import type { CatalogEntry, DatasetCatalog } from './catalog.js';
import type { BenchDeps } from './command.js';
import { collectProvenance } from './provenance.js';

/** The catalog of the dataset manifest (datasets.yaml plus --manifest files) and this machine's cache. */
export function manifestCatalog(manifest: Manifest, home: string = mtlBenchHome()): DatasetCatalog {
  const prepared = new Set<string>();
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
  };
}

/** The real trainer, data loader, catalog and backend. */
export function defaultBenchDeps(options: { manifestFiles?: string[] } = {}): BenchDeps {
  let manifest: Manifest | undefined;
  const getManifest = () => (manifest ??= loadManifest({ extra: options.manifestFiles }));
  let catalog: DatasetCatalog | undefined;
  const getCatalog = () => (catalog ??= manifestCatalog(getManifest()));
  return {
    trainCell: (config, data, trainOptions) => trainCell(config, data, trainOptions),
    loadDataset: (id, { inputSize }) => loadDataset(id, { inputSize, manifest: getManifest() }),
    provenance: collectProvenance,
    priorMatrix: (prior, rows, columns) => getCatalog().priorMatrix(prior, rows, columns),
    catalog: getCatalog,
    backbones: BACKBONE_NAMES,
    initBackend: async (requested) => {
      const report = await initBackend({ requested });
      const gpuWarning = report.gpu ? gpuNotUsedLine(report.gpu) : undefined;
      return { name: report.choice, warnings: gpuWarning ? [gpuWarning] : [] };
    },
  };
}
