import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { downloadFile } from '../../src/datasets/fetch/download.js';
import { extractArchive } from '../../src/datasets/fetch/extract.js';
import { UserError } from '../../src/util/errors.js';
import { makeTar, makeTarGz, makeZip } from './archives.js';
import { startServer } from './server.js';
import { tempDir, write } from './helpers.js';

const dir = tempDir('download');
const server = await startServer();
after(() => server.close());

const body = randomBytes(200_000);
const sha256 = createHash('sha256').update(body).digest('hex');
const md5 = createHash('md5').update(body).digest('hex');
const fast = { retries: 3, retryDelayMs: 10, timeoutMs: 2000 };
let counter = 0;
const dest = () => path.join(dir, `file-${++counter}.bin`);
const isUserError = (pattern: RegExp) => (err: unknown) =>
  err instanceof UserError && pattern.test(err.message) && !err.message.includes('\n');
const requestsTo = (p: string) => server.log.filter((r) => r.path.startsWith(p));

test('a download is verified by size, sha256 and md5 and appears only when complete', async () => {
  server.routes.set('/plain.bin', { body });
  const file = dest();
  const result = await downloadFile({ url: server.url('/plain.bin'), dest: file, expected: { size: body.length, sha256, md5 }, ...fast });
  assert.deepEqual(fs.readFileSync(file), body);
  assert.equal(result.bytes, body.length);
  assert.equal(fs.existsSync(`${file}.part`), false);
});

test('a dropped connection is resumed with a Range request', async () => {
  server.routes.set('/drop.bin', { body, behaviour: (n) => (n === 1 ? 'drop-half' : 'normal') });
  const file = dest();
  const result = await downloadFile({ url: server.url('/drop.bin'), dest: file, expected: { sha256 }, ...fast });
  assert.deepEqual(fs.readFileSync(file), body);
  const requests = requestsTo('/drop.bin');
  assert.equal(requests.length, 2);
  assert.equal(requests[0].range, undefined);
  assert.match(requests[1].range ?? '', /^bytes=\d+-$/);
  const resumedAt = Number(/=(\d+)-/.exec(requests[1].range!)![1]);
  assert.ok(resumedAt > 0 && resumedAt < body.length);
  assert.equal(result.resumedFrom, resumedAt);
});

test('a .part file left by an earlier run is resumed, not restarted', async () => {
  server.routes.set('/partial.bin', { body });
  const file = dest();
  write(`${file}.part`, body.subarray(0, 1234));
  await downloadFile({ url: server.url('/partial.bin'), dest: file, expected: { size: body.length, sha256 }, ...fast });
  assert.deepEqual(fs.readFileSync(file), body);
  assert.equal(requestsTo('/partial.bin')[0].range, 'bytes=1234-');
});

test('a server that ignores Range makes the download start over', async () => {
  server.routes.set('/norange.bin', { body, behaviour: () => 'ignore-range' });
  const file = dest();
  write(`${file}.part`, Buffer.from('stale bytes that must not survive'));
  await downloadFile({ url: server.url('/norange.bin'), dest: file, expected: { sha256 }, ...fast });
  assert.deepEqual(fs.readFileSync(file), body);
});

test('a wrong hash or size fails with one line and leaves neither the file nor a .part', async () => {
  server.routes.set('/hash.bin', { body });
  const file = dest();
  await assert.rejects(
    downloadFile({ url: server.url('/hash.bin'), dest: file, expected: { sha256: 'f'.repeat(64) }, ...fast }),
    isUserError(/file-\d+\.bin: sha256 [0-9a-f]{64}, expected f{64}; the download was deleted/),
  );
  assert.equal(fs.existsSync(file), false);
  assert.equal(fs.existsSync(`${file}.part`), false);
  await assert.rejects(
    downloadFile({ url: server.url('/hash.bin'), dest: file, expected: { md5: '0'.repeat(32) }, ...fast }),
    isUserError(/md5 [0-9a-f]{32}, expected 0{32}/),
  );
  await assert.rejects(
    downloadFile({ url: server.url('/hash.bin'), dest: file, expected: { size: body.length + 5 }, ...fast }),
    isUserError(/size 200000 bytes, expected 200005/),
  );
  assert.equal(fs.existsSync(file), false);
});

test('a silent connection times out and is retried; 5xx is retried; 404 is not', async () => {
  server.routes.set('/stall.bin', { body, behaviour: (n) => (n === 1 ? 'stall' : 'normal') });
  const file = dest();
  await downloadFile({ url: server.url('/stall.bin'), dest: file, expected: { sha256 }, ...fast, timeoutMs: 300 });
  assert.deepEqual(fs.readFileSync(file), body);
  assert.equal(requestsTo('/stall.bin').length, 2);
  assert.equal(requestsTo('/stall.bin')[1].range, 'bytes=10-');

  server.routes.set('/busy.bin', { body, behaviour: (n) => (n <= 2 ? 'error-500' : 'normal') });
  await downloadFile({ url: server.url('/busy.bin'), dest: dest(), expected: { sha256 }, ...fast });
  assert.equal(requestsTo('/busy.bin').length, 3);

  await assert.rejects(
    downloadFile({ url: server.url('/missing.bin'), dest: dest(), expected: { sha256 }, ...fast }),
    isUserError(/HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/missing\.bin/),
  );
  assert.equal(requestsTo('/missing.bin').length, 1);

  server.routes.set('/down.bin', { body, behaviour: () => 'error-500' });
  await assert.rejects(
    downloadFile({ url: server.url('/down.bin'), dest: dest(), expected: { sha256 }, ...fast, retries: 2 }),
    isUserError(/download failed after 3 attempts \(HTTP 500\); run the same command again to resume/),
  );
});

test('Google Drive: the confirm page is followed; a quota page is one clear line', async () => {
  server.routes.set('/uc', (req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.searchParams.get('confirm') === 't' && url.searchParams.get('uuid') === 'abc-123') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'set-cookie': 'NID=xyz; Path=/' });
    res.end(`<!DOCTYPE html><html><body><p>Google Drive can't scan this file for viruses.</p>
      <form id="download-form" action="/uc" method="get"><input type="submit" value="Download anyway"/>
      <input type="hidden" name="id" value="${url.searchParams.get('id')}"><input type="hidden" name="export" value="download">
      <input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="abc-123"></form></body></html>`);
  });
  const file = dest();
  await downloadFile({ url: server.url('/uc?export=download&id=0B7EVK8r'), dest: file, expected: { sha256 }, ...fast });
  assert.deepEqual(fs.readFileSync(file), body);
  const confirmed = requestsTo('/uc').at(-1)!;
  assert.match(confirmed.path, /confirm=t/);
  assert.match(confirmed.path, /id=0B7EVK8r/);
  assert.equal(confirmed.cookie, 'NID=xyz');

  server.routes.set('/quota', (_req, res) => {
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end('<html><title>Google Drive - Quota exceeded</title><p>Too many users have viewed or downloaded this file recently.</p></html>');
  });
  await assert.rejects(
    downloadFile({ url: server.url('/quota?id=1'), dest: dest(), expected: { sha256 }, ...fast }),
    isUserError(/Google Drive refused the download \(quota exceeded/),
  );
});

test('a full disk is one clear line', async () => {
  server.routes.set('/full.bin', { body });
  const file = dest();
  fs.symlinkSync('/dev/full', `${file}.part`);
  await assert.rejects(
    downloadFile({ url: server.url('/full.bin'), dest: file, expected: { sha256 }, ...fast }),
    isUserError(/no space left on the device while writing under/),
  );
});

// ---------- extraction ----------

function freshFolder(name: string): string {
  const folder = path.join(dir, name);
  fs.mkdirSync(folder, { recursive: true });
  return folder;
}

test('tar.gz, tar and zip archives extract, links inside the folder included', async () => {
  const entries = [
    { name: 'ds/', type: 'dir' as const },
    { name: 'ds/labels.txt', content: 'a 1\nb 2\n' },
    { name: 'ds/images/a.bin', content: 'AAAA' },
    { name: 'ds/latest', type: 'symlink' as const, target: 'labels.txt' },
  ];
  const tgz = write(path.join(dir, 'ok.tgz'), makeTarGz(entries));
  const out = freshFolder('ok-tgz');
  await extractArchive(tgz, out);
  assert.equal(fs.readFileSync(path.join(out, 'ds/labels.txt'), 'utf8'), 'a 1\nb 2\n');
  assert.equal(fs.readFileSync(path.join(out, 'ds/latest'), 'utf8'), 'a 1\nb 2\n');

  const plainTar = write(path.join(dir, 'ok.tar'), makeTar(entries));
  const outTar = freshFolder('ok-tar');
  await extractArchive(plainTar, outTar);
  assert.equal(fs.readFileSync(path.join(outTar, 'ds/images/a.bin'), 'utf8'), 'AAAA');

  const zip = write(path.join(dir, 'ok.zip'), makeZip(entries, { deflate: true }));
  const outZip = freshFolder('ok-zip');
  await extractArchive(zip, outZip);
  assert.equal(fs.readFileSync(path.join(outZip, 'ds/images/a.bin'), 'utf8'), 'AAAA');
  assert.equal(fs.readlinkSync(path.join(outZip, 'ds/latest')), 'labels.txt');
});

test('zip-slip, absolute paths and links out of the folder are refused', async () => {
  const cases: [string, Buffer][] = [
    [
      'slip.zip',
      makeZip([
        { name: 'ok.txt', content: 'x' },
        { name: '../evil.txt', content: 'owned' },
      ]),
    ],
    ['link-out.zip', makeZip([{ name: 'escape', type: 'symlink', target: '../../outside' }])],
    [
      'slip.tgz',
      makeTarGz([
        { name: 'ok.txt', content: 'x' },
        { name: 'sub/../../evil.txt', content: 'owned' },
      ]),
    ],
    ['absolute.tar', makeTar([{ name: '/tmp/mtl-bench-evil.txt', content: 'owned' }])],
    ['link-out.tgz', makeTarGz([{ name: 'escape', type: 'symlink', target: '../outside' }])],
    ['link-abs.tgz', makeTarGz([{ name: 'passwd', type: 'symlink', target: '/etc/passwd' }])],
    ['hardlink.tgz', makeTarGz([{ name: 'passwd', type: 'hardlink', target: '/etc/passwd' }])],
  ];
  for (const [name, bytes] of cases) {
    const archive = write(path.join(dir, 'bad', name), bytes);
    const out = freshFolder(`bad-out/${name}/inner`);
    await assert.rejects(extractArchive(archive, out), isUserError(/refusing the archive.*outside the extraction folder/), name);
    assert.equal(fs.existsSync(path.join(out, '..', 'evil.txt')), false, name);
    assert.equal(fs.existsSync(path.join(out, 'escape')), false, name);
    assert.equal(fs.existsSync(path.join(out, 'passwd')), false, name);
  }
  assert.equal(fs.existsSync('/tmp/mtl-bench-evil.txt'), false);
});

test('a truncated or unknown archive is one clear line', async () => {
  const good = makeTarGz([{ name: 'big.bin', content: randomBytes(50_000) }]);
  const truncated = write(path.join(dir, 'truncated.tgz'), good.subarray(0, Math.floor(good.length / 2)));
  await assert.rejects(
    extractArchive(truncated, freshFolder('trunc')),
    isUserError(/truncated\.tgz: the archive is truncated \(unexpected end of file\)/),
  );
  const zip = makeZip([{ name: 'a.txt', content: 'hello' }]);
  const badZip = write(path.join(dir, 'truncated.zip'), zip.subarray(0, zip.length - 10));
  await assert.rejects(extractArchive(badZip, freshFolder('trunc-zip')), isUserError(/truncated\.zip: corrupt or truncated zip archive/));
  const text = write(path.join(dir, 'notes.txt'), 'just text');
  await assert.rejects(extractArchive(text, freshFolder('text')), isUserError(/notes\.txt: not a tar, tar\.gz or zip archive/));
});
