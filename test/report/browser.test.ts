import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { runStudy } from '../../src/cli/run_study.js';
import type { TrainCellFn } from '../../src/bench/runner.js';
import { captureIO, fakeDeps, fakeResult, fakeTrainer, tempDir, toyBenchmarkYaml, writeBenchmark } from '../bench/doubles.js';

/**
 * report.html as a browser shows it: Debian's `chromium` (installed by .ci/run), driven by
 * puppeteer-core, renders a three-seed report at a desktop and a phone width. Where no browser is
 * installed the test is skipped, except under CI=true, where it must run.
 */

function findChromium(): string | undefined {
  for (const name of [process.env.MTL_BENCH_CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome']) {
    if (!name) continue;
    const found = spawnSync('sh', ['-c', `command -v "${name}"`], { encoding: 'utf8' });
    if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
  }
  return undefined;
}

interface Layout {
  pageWidth: number;
  viewport: number;
  outside: string[];
  unscrolledTables: number;
  overlaps: string[];
  svgsTooWide: number;
  tables: number;
}

/**
 * Runs in the page (as source text: the project compiles without the DOM's types). Wide tables
 * may scroll inside their own container; nothing else may stick out of the page, and no two value
 * labels of a chart may overlap.
 */
const MEASURE_LAYOUT = `(() => {
  const viewport = document.documentElement.clientWidth;
  const outside = [...document.body.querySelectorAll('*')]
    .filter((el) => !el.closest('.scroll') && !el.closest('svg'))
    .filter((el) => el.getBoundingClientRect().right > viewport + 0.5)
    .map((el) =>
      el.tagName.toLowerCase() + (el.className ? '.' + String(el.className) : '') + ': ' + el.getBoundingClientRect().right.toFixed(0),
    );
  const unscrolledTables = [...document.querySelectorAll('table')]
    .filter((t) => getComputedStyle(t.parentElement).overflowX !== 'auto').length;
  const overlaps = [];
  for (const svg of document.querySelectorAll('svg')) {
    const labels = [...svg.querySelectorAll('text.value')].map((t) => ({ text: t.textContent, box: t.getBoundingClientRect() }));
    for (let i = 0; i < labels.length; i++) {
      for (let j = i + 1; j < labels.length; j++) {
        const a = labels[i].box;
        const b = labels[j].box;
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
          overlaps.push(labels[i].text + ' / ' + labels[j].text);
      }
    }
  }
  const svgsTooWide = [...document.querySelectorAll('svg')].filter((s) => s.getBoundingClientRect().right > viewport + 0.5).length;
  return {
    pageWidth: document.documentElement.scrollWidth,
    viewport,
    outside,
    unscrolledTables,
    overlaps,
    svgsTooWide,
    tables: document.querySelectorAll('table').length,
  };
})()`;

/**
 * Every multi-task setting a little better than stl, by almost the same amount: the Δm% bars of a
 * regime stand at nearly one height, where labels too wide for their bars would collide.
 */
const closeCallTrainer: TrainCellFn = async (config, data, options) => {
  const result = await fakeTrainer().train(config, data, options);
  const base = fakeResult({ ...config, setting: 'stl' });
  const gain = config.setting === 'stl' ? 0 : 0.02 + 0.0005 * config.seed + 0.001 * config.setting.length;
  for (const task of config.tasks) result.test[task.name]![task.primary] = base.test[task.name]![task.primary]! + gain;
  return result;
};

const chromium = findChromium();
const required = process.env.CI === 'true';

test(
  'report.html at 1280 and 390 px: no horizontal overflow of the page, no overlapping bar labels, no console error',
  { skip: !chromium && !required ? 'no chromium installed (apt-get install chromium)' : false, timeout: 180_000 },
  async () => {
    assert.ok(chromium, "CI=true: the browser test must run; .ci/run installs Debian's chromium");
    const dir = tempDir('browser');
    const file = writeBenchmark(dir, toyBenchmarkYaml());
    await runStudy(
      [file],
      { out: path.join(dir, 'runs'), seeds: ['1', '2', '3'] },
      fakeDeps({ train: closeCallTrainer, calls: [] }),
      captureIO(),
    );
    const report = path.join(dir, 'runs', 'toy-study', 'report.html');

    // --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
    const browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu'],
      timeout: 60_000,
    });
    try {
      for (const width of [1280, 390]) {
        const page = await browser.newPage();
        const problems: string[] = [];
        page.on('console', (message) => {
          if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
        });
        page.on('pageerror', (error) => problems.push(`page error: ${error instanceof Error ? error.message : String(error)}`));
        page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
        await page.setViewport({ width, height: 900 });
        await page.goto(`file://${report}`, { waitUntil: 'load' });
        const layout = (await page.evaluate(MEASURE_LAYOUT)) as Layout;
        assert.ok(layout.tables > 0);
        assert.ok(layout.pageWidth <= layout.viewport, `${width} px: the page is ${layout.pageWidth} px wide`);
        assert.deepEqual(layout.outside, [], `${width} px: elements sticking out of the page`);
        assert.equal(layout.unscrolledTables, 0, `${width} px: every table scrolls in its own container`);
        assert.equal(layout.svgsTooWide, 0, `${width} px: charts shrink to the page`);
        assert.deepEqual(layout.overlaps, [], `${width} px: overlapping bar labels`);
        assert.deepEqual(problems, [], `${width} px`);
        await page.close();
      }
    } finally {
      await browser.close();
    }
  },
);
