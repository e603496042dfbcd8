import { type Command, Option } from 'commander';
import { fetchDataset, reindexDataset } from '../datasets/fetch/fetch.js';
import { formatFetchResult, formatInfo, formatStatusTable } from '../datasets/format.js';
import { datasetStatuses, describeDataset } from '../datasets/info.js';
import { loadManifest, type Manifest } from '../datasets/manifest.js';
import { terminalProgress } from '../datasets/progress.js';
import { jsonOption, manifestOption } from './options.js';
import { paintErr } from './output.js';
import { positiveInt, repeatable } from './parse.js';

interface ManifestOptions {
  manifest?: string[];
}

const manifestOf = (opts: ManifestOptions): Manifest => loadManifest({ extra: opts.manifest });

const log = (line: string) => process.stderr.write(`${paintErr.dim(line)}\n`);
const warn = (message: string) => log(`warning: ${message}`);

const cacheSizeOption = (): Option =>
  new Option(
    '--size <pixels>',
    "input size to prepare the image cache for (repeatable; default: the manifest's image.default_size)",
  ).argParser(repeatable(positiveInt));

export function registerDatasetsCommands(program: Command): void {
  const datasets = program.command('datasets').description('list, fetch, index and inspect the datasets described in datasets.yaml');
  const withManifest = (cmd: Command) => cmd.addOption(manifestOption());

  withManifest(datasets.command('list'))
    .description('every dataset of the manifests: access, size, and whether it is fetched and indexed here')
    .addOption(jsonOption('print JSON instead of a table'))
    .action((opts: ManifestOptions & { json?: boolean }) => {
      const statuses = datasetStatuses(manifestOf(opts));
      process.stdout.write(opts.json ? `${JSON.stringify(statuses)}\n` : `${formatStatusTable(statuses)}\n`);
    });

  withManifest(datasets.command('fetch <id>'))
    .description('download (or take from --from), verify, extract, index and cache a dataset')
    .option(
      '--from <path|url>',
      'your archive, file, extracted folder or URL (repeatable; required for request datasets)',
      repeatable((value) => value),
    )
    .option('--force', 'download, extract, index and decode the images again even if a good copy is here')
    .addOption(cacheSizeOption())
    .action(async (id: string, opts: ManifestOptions & { from?: string[]; force?: boolean; size?: number[] }) => {
      const result = await fetchDataset(id, {
        manifest: manifestOf(opts),
        from: opts.from,
        force: opts.force,
        sizes: opts.size,
        progress: terminalProgress(),
        log,
      });
      process.stdout.write(`${formatFetchResult(result)}\n`);
    });

  withManifest(datasets.command('index <id>'))
    .description('rebuild the normalized index of a fetched dataset and its image cache')
    .addOption(cacheSizeOption())
    .option('--force', 'also decode every image again instead of reusing the cached ones that are unchanged')
    .action(async (id: string, opts: ManifestOptions & { size?: number[]; force?: boolean }) => {
      const result = await reindexDataset(id, {
        manifest: manifestOf(opts),
        sizes: opts.size,
        progress: terminalProgress(),
        onWarning: warn,
        force: opts.force,
        onWait: log,
      });
      process.stdout.write(`${formatFetchResult(result)}\n`);
    });

  withManifest(datasets.command('info <id>'))
    .description('per split and task: samples, classes, label coverage and masked entries')
    .addOption(jsonOption('print JSON instead of text'))
    .action(async (id: string, opts: ManifestOptions & { json?: boolean }) => {
      const info = await describeDataset(id, { manifest: manifestOf(opts), onWarning: warn });
      process.stdout.write(opts.json ? `${JSON.stringify(info)}\n` : `${formatInfo(info)}\n`);
    });
}
