import type { Command } from 'commander';
import { formatBytes } from '../util/format.js';
import { loadBackboneManifest } from '../model/backbone_manifest.js';
import type { BackboneFetchResult, BackboneStatus } from '../model/backbone_store.js';
import { jsonOption } from './options.js';
import { paintErr } from './output.js';

const log = (line: string) => process.stderr.write(`${paintErr.dim(line)}\n`);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n');
}

function formatBackboneTable(statuses: BackboneStatus[]): string {
  const rows = [['id', 'input', 'fetched', 'checksums', 'licence', 'name']];
  for (const s of statuses) {
    rows.push([
      s.id,
      `${s.inputSize}×${s.inputSize}`,
      s.fetched ? `yes (${formatBytes(s.bytes ?? 0)})` : 'no',
      s.published > 0 ? 'published' : 'pinned at first download',
      s.license,
      s.name,
    ]);
  }
  return table(rows);
}

function formatBackboneFetch(result: BackboneFetchResult): string {
  const lines = [`${result.id}: ${result.downloaded ? 'fetched' : 'already here'}, ${result.folder}`];
  for (const file of result.files) lines.push(`  ${file.name}  ${formatBytes(file.bytes)}  sha256 ${file.sha256} (${file.verification})`);
  return lines.join('\n');
}

export function registerBackbonesCommands(program: Command): void {
  const backbones = program.command('backbones').description('list and fetch the pretrained backbones of backbones.yaml');

  backbones
    .command('list')
    .description('every pretrained backbone: input size, whether it is fetched here, how its files are verified')
    .addOption(jsonOption('print JSON instead of a table'))
    .action(async (opts: { json?: boolean }) => {
      const { backboneStatuses } = await import('../model/backbone_store.js');
      const statuses = backboneStatuses(loadBackboneManifest());
      process.stdout.write(opts.json ? `${JSON.stringify(statuses)}\n` : `${formatBackboneTable(statuses)}\n`);
    });

  backbones
    .command('fetch <id>')
    .description('download model.json and its weight shards, verify them (or pin their sha256 at the first download)')
    .option('--force', 'download again, still checked against the published or pinned checksums')
    .action(async (id: string, opts: { force?: boolean }) => {
      const [{ fetchBackbone }, { terminalProgress }] = await Promise.all([
        import('../model/backbone_store.js'),
        import('../datasets/progress.js'),
      ]);
      const result = await fetchBackbone(id, { manifest: loadBackboneManifest(), force: opts.force, progress: terminalProgress(), log });
      process.stdout.write(`${formatBackboneFetch(result)}\n`);
    });
}
