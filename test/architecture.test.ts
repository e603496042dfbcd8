import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../src/util/paths.js';

/**
 * The layers of src/, highest first. A module may import from its own folder and from folders of
 * a lower layer; folders that share a layer (bench and report, model and method, datasets and
 * engine) never import each other. README "Architecture" explains each layer.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['cli'],
  ['bench', 'report'],
  ['runs'],
  ['train'],
  ['model', 'method'],
  ['config'],
  ['datasets', 'engine'],
  ['util'],
];

const rankOf = new Map(LAYERS.flatMap((folders, i) => folders.map((folder) => [folder, LAYERS.length - i] as const)));
const SRC = path.join(packageRoot, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every relative module specifier of a file: static imports, re-exports and dynamic import(). */
function relativeImports(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)) found.push(match[1]!);
  return found;
}

/** Wrong imports of a tree laid out like src/, as "file → target (why)", sorted. */
function layerViolations(root: string): string[] {
  const problems: string[] = [];
  const folderOf = (file: string) => path.relative(root, file).split(path.sep)[0]!;
  for (const file of sourceFiles(root)) {
    const name = path.relative(root, file);
    const from = folderOf(file);
    const fromRank = rankOf.get(from);
    if (fromRank === undefined) {
      problems.push(`${name}: folder "${from}" is in no layer`);
      continue;
    }
    for (const specifier of relativeImports(fs.readFileSync(file, 'utf8'))) {
      const target = path.resolve(path.dirname(file), specifier).replace(/\.js$/, '.ts');
      const targetName = path.relative(root, target);
      if (targetName.startsWith('..')) {
        problems.push(`${name} → ${specifier} (outside the tree)`);
        continue;
      }
      const to = folderOf(target);
      if (to === from) continue;
      const toRank = rankOf.get(to);
      if (toRank === undefined || toRank >= fromRank) problems.push(`${name} → ${targetName} (${from} may not import ${to})`);
    }
  }
  return problems.sort();
}

test('every folder of src/ is a layer, and imports run only downward', () => {
  const folders = fs
    .readdirSync(SRC, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  assert.deepEqual(folders, [...rankOf.keys()].sort(), 'the layer table names exactly the folders of src/');
  assert.deepEqual(layerViolations(SRC), []);
});

test('the import check finds upward and sideways imports, static and dynamic', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtl-bench-layers-'));
  try {
    const write = (file: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      fs.writeFileSync(path.join(root, file), text);
    };
    write('train/a.ts', "import { x } from '../report/b.js';\n");
    write('report/b.ts', "export const x = 1;\nconst later = () => import('../bench/c.js');\n");
    write('bench/c.ts', "import type { y } from '../util/d.js';\n");
    write('util/d.ts', 'export type y = number;\n');
    const problems = layerViolations(root);
    assert.deepEqual(problems, [
      'report/b.ts → bench/c.ts (report may not import bench)',
      'train/a.ts → report/b.ts (train may not import report)',
    ]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
