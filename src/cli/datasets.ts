import type { Command } from 'commander';
import { fetchDataset } from '../datasets/fetch/fetch.js';
import { formatFetchResult, formatInfo, formatStatusTable } from '../datasets/format.js';
import { datasetInfo, datasetStatuses } from '../datasets/info.js';
import { ensureCache, ensureIndex } from '../datasets/load.js';
import { getEntry, loadManifest } from '../datasets/manifest.js';
import { terminalProgress } from '../datasets/progress.js';
import { paintErr } from './output.js';
import { positiveInt } from './parse.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const collectSizes = (value: string, previous: number[] = []) => [...previous, positiveInt(value)];

interface CommonOptions {
  manifest?: string[];
}

const log = (line: string) => process.stderr.write(`${paintErr.dim(line)}\n`);

export function registerDatasetsCommands(program: Command): void {
  const datasets = program.command('datasets').description('list, fetch, index and inspect the datasets described in datasets.yaml');
  const withManifest = (cmd: Command) => cmd.option('--manifest <file>', 'extra manifest file adding or overriding entries (repeatable)', collect);

  withManifest(datasets.command('list'))
    .description('every dataset of the manifests: access, size, and whether it is fetched and indexed here')
    .option('--json', 'print JSON instead of a table')
    .action((opts: CommonOptions & { json?: boolean }) => {
      const statuses = datasetStatuses(loadManifest({ extra: opts.manifest }));
      process.stdout.write(opts.json ? `${JSON.stringify(statuses)}\n` : `${formatStatusTable(statuses)}\n`);
    });

  withManifest(datasets.command('fetch <id>'))
    .description('download (or take from --from), verify, extract, index and cache a dataset')
    .option('--from <path|url>', 'your archive, file, extracted folder or URL (repeatable; required for request datasets)', collect)
    .option('--force', 'download, extract, index and decode the images again even if a good copy is here')
    .option('--size <pixels>', 'input size to prepare the image cache for (repeatable; default: the manifest\'s image.default_size)', collectSizes)
    .action(async (id: string, opts: CommonOptions & { from?: string[]; force?: boolean; size?: number[] }) => {
      const result = await fetchDataset(id, { manifest: loadManifest({ extra: opts.manifest }), from: opts.from, force: opts.force, sizes: opts.size, progress: terminalProgress(), log });
      process.stdout.write(`${formatFetchResult(result)}\n`);
    });

  withManifest(datasets.command('index <id>'))
    .description('rebuild the normalized index of a fetched dataset and its image cache')
    .option('--size <pixels>', 'input size to prepare the image cache for (repeatable)', collectSizes)
    .option('--force', 'also decode every image again instead of reusing the cached ones that are unchanged')
    .action(async (id: string, opts: CommonOptions & { size?: number[]; force?: boolean }) => {
      const entry = getEntry(loadManifest({ extra: opts.manifest }), id);
      const index = await ensureIndex(entry, { force: true, onWarning: (m) => log(`warning: ${m}`) });
      const caches = [];
      for (const size of opts.size ?? [entry.image.default_size]) {
        const built = await ensureCache(entry, index, size, { progress: terminalProgress(), force: opts.force, onWait: log });
        caches.push({ size, splits: { train: built.train.meta, val: built.val.meta, test: built.test.meta } });
      }
      process.stdout.write(`${formatFetchResult({ id, root: index.root, index, caches, downloaded: [] })}\n`);
    });

  withManifest(datasets.command('info <id>'))
    .description('per split and task: samples, classes, label coverage and masked entries')
    .option('--json', 'print JSON instead of text')
    .action(async (id: string, opts: CommonOptions & { json?: boolean }) => {
      const entry = getEntry(loadManifest({ extra: opts.manifest }), id);
      const index = await ensureIndex(entry, { onWarning: (m) => log(`warning: ${m}`) });
      const info = datasetInfo(entry, index);
      process.stdout.write(opts.json ? `${JSON.stringify(info)}\n` : `${formatInfo(info)}\n`);
    });
}
