/**
 * The container images and CI workflows cannot be built or run on the development machines (no
 * base images, no GitHub); `npm run lint` checks their syntax, and these tests check what they
 * promise: pinned versions that fit the GPU package, the entrypoint, and the commands they run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import yaml from 'js-yaml';
import { packageRoot } from '../src/util/paths.js';

const read = (file: string) => fs.readFileSync(path.join(packageRoot, file), 'utf8');

/** Instructions of a Dockerfile with continuation lines joined and comments dropped. */
function instructions(file: string): { keyword: string; args: string }[] {
  const joined = read(file)
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
    });
}

const of = (file: string, keyword: string) => instructions(file).filter((i) => i.keyword === keyword);
const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; optionalDependencies: Record<string, string> };

describe('Dockerfiles', () => {
  const NODE_IMAGE = /^node:(\d+)\.\d+\.\d+-[a-z]+-slim$/;

  it('the CPU image: a pinned Node 20 slim base, npm ci, entrypoint mtl-bench', () => {
    const from = of('Dockerfile', 'FROM');
    assert.equal(from.length, 1);
    const match = NODE_IMAGE.exec(from[0]!.args);
    assert.ok(match, `pinned to a full Node version: ${from[0]!.args}`);
    assert.equal(match[1], '20');
    assert.ok(of('Dockerfile', 'RUN').some((r) => /\bnpm ci\b/.test(r.args)));
    assert.deepEqual(
      of('Dockerfile', 'ENTRYPOINT').map((e) => JSON.parse(e.args)),
      [['mtl-bench']],
    );
  });

  it('the GPU image: CUDA 11.2 + cuDNN 8 runtime for tfjs-node-gpu 4.22, the same Node, the GPU package loaded at build time', () => {
    // libtensorflow 2.9.1 inside tfjs-node-gpu 4.22.0 needs exactly CUDA 11.2 and cuDNN 8: a new
    // version of the package must come with a new look at this pin.
    assert.equal(pkg.optionalDependencies['@tensorflow/tfjs-node-gpu'], '4.22.0');
    const from = of('Dockerfile.gpu', 'FROM').map((f) => f.args);
    assert.equal(from.length, 2);
    assert.equal(from[0], `${of('Dockerfile', 'FROM')[0]!.args} AS node`, "Node comes from the CPU image's pinned Node image");
    assert.match(from[1]!, /^nvidia\/cuda:11\.2\.\d+-cudnn8-runtime-ubuntu\d+\.\d+$/);
    const runs = of('Dockerfile.gpu', 'RUN').map((r) => r.args);
    assert.ok(runs.some((r) => /\bnpm ci\b/.test(r)));
    assert.ok(
      runs.some((r) => /npm rebuild @tensorflow\/tfjs-node-gpu/.test(r) && /require\('@tensorflow\/tfjs-node-gpu'\)/.test(r)),
      'a failed GPU install fails the build',
    );
    assert.ok(
      of('Dockerfile.gpu', 'ENV').some((e) => /MTL_BENCH_BACKEND=tensorflow-gpu/.test(e.args)),
      'no silent fall-back to wasm',
    );
    assert.deepEqual(
      of('Dockerfile.gpu', 'ENTRYPOINT').map((e) => JSON.parse(e.args)),
      [['mtl-bench']],
    );
  });

  it('both put the executable bin/mtl-bench.js on the PATH and leave local files out of the build context', () => {
    for (const file of ['Dockerfile', 'Dockerfile.gpu']) {
      assert.ok(
        of(file, 'RUN').some((r) => r.args.includes('ln -s /opt/mtl-bench/bin/mtl-bench.js /usr/local/bin/mtl-bench')),
        file,
      );
      assert.ok(of(file, 'USER').length === 1, `${file} runs as an unprivileged user`);
    }
    assert.ok((fs.statSync(path.join(packageRoot, 'bin', 'mtl-bench.js')).mode & 0o111) !== 0, 'bin/mtl-bench.js is executable');
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['node_modules/', 'dist/', 'runs/', '.git/']) assert.ok(ignored.includes(entry), entry);
  });
});

interface Workflow {
  on: Record<string, unknown>;
  env?: Record<string, string | number>;
  jobs: Record<
    string,
    { strategy?: { matrix?: Record<string, unknown[]> }; steps: { run?: string; uses?: string; with?: Record<string, string> }[] }
  >;
}

const workflow = (name: string) => yaml.load(read(`.github/workflows/${name}`)) as Workflow;
const runs = (w: Workflow) => Object.values(w.jobs).flatMap((job) => job.steps.map((s) => s.run ?? ''));

describe('GitHub workflows', () => {
  it('ci.yml: on every push, the README commands and the reproducibility check', () => {
    const ci = workflow('ci.yml');
    assert.ok('push' in ci.on);
    const commands = runs(ci).join('\n');
    for (const command of ['npm test', 'npm run lint', 'npx mtl-bench run --out', 'npx mtl-bench run benchmarks/ci.yaml --check'])
      assert.ok(commands.includes(command), command);
  });

  it('openmoji-study.yml: started by hand, one job per shard, merged by mtl-bench report, report.html and CSVs uploaded', () => {
    const study = workflow('openmoji-study.yml');
    assert.ok('workflow_dispatch' in study.on);
    const shards = study.jobs.study!.strategy!.matrix!.shard!;
    assert.deepEqual(
      shards,
      Array.from({ length: Number(study.env!.SHARDS) }, (_, i) => i + 1),
      'the matrix covers shards 1…SHARDS',
    );
    assert.ok(runs(study).some((r) => r.includes('mtl-bench run benchmarks/openmoji.yaml --shard')));
    assert.ok(runs(study).some((r) => /mtl-bench report .*--out report/.test(r)));
    const uploaded = study.jobs.report!.steps.filter((s) => s.uses?.startsWith('actions/upload-artifact')).map((s) => s.with?.path ?? '');
    assert.match(uploaded.join('\n'), /report\/report\.html[\s\S]*report\/\*\.csv/);
  });
});
