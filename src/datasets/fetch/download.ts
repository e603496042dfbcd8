import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { UserError, errorMessage } from '../../util/errors.js';
import { homeWriteError } from '../fs_errors.js';
import { silentProgress, type ProgressFactory } from '../progress.js';
import { digestFile, mismatch, type Expected } from './verify.js';

/**
 * HTTP(S) download into `<dest>.part`, renamed to `dest` only after size and hashes check out.
 * An interrupted download resumes with a Range request; network errors are retried with
 * exponential backoff; a connection that goes silent times out. Google Drive's "can't scan this
 * file for viruses" page is followed through its confirm form.
 */

export interface DownloadOptions {
  url: string;
  dest: string;
  expected?: Expected;
  /** Name used in messages and the progress bar (default: the file name). */
  label?: string;
  progress?: ProgressFactory;
  /** Retries after the first attempt (default 5). */
  retries?: number;
  /** First backoff delay; doubles per retry, at most 30 s (default 1 s). */
  retryDelayMs?: number;
  /** A connection with no data for this long is dropped and retried (default 30 s). */
  timeoutMs?: number;
}

export interface DownloadResult {
  file: string;
  bytes: number;
  /** Bytes already in the .part file when the last successful attempt started. */
  resumedFrom: number;
  attempts: number;
}

/** A failure worth retrying (connection reset, timeout, 5xx, truncated body). */
class RetryableError extends Error {}

const MAX_REDIRECTS = 10;
const MAX_CONFIRM_PAGES = 3;
const MAX_HTML_BYTES = 2 * 1024 * 1024;

type CookieJar = Map<string, string>;

function storeCookies(jar: CookieJar, header: string[] | undefined): void {
  for (const cookie of header ?? []) {
    const [pair] = cookie.split(';');
    const eq = pair.indexOf('=');
    if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
}

interface Opened {
  response: http.IncomingMessage;
  url: string;
}

function request(url: string, headers: Record<string, string>, jar: CookieJar, timeoutMs: number, redirects = 0): Promise<Opened> {
  return new Promise((resolve, reject) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      reject(new UserError(`not a valid URL: ${url}`));
      return;
    }
    const client = parsed.protocol === 'https:' ? https : parsed.protocol === 'http:' ? http : undefined;
    if (!client) {
      reject(new UserError(`unsupported URL scheme ${parsed.protocol} in ${url}`));
      return;
    }
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const req = client.get(
      parsed,
      { headers: { 'user-agent': 'mtl-bench', accept: '*/*', ...headers, ...(cookie ? { cookie } : {}) } },
      (response) => {
        storeCookies(jar, response.headers['set-cookie']);
        const status = response.statusCode ?? 0;
        if ([301, 302, 303, 307, 308].includes(status) && response.headers.location) {
          response.resume();
          if (redirects >= MAX_REDIRECTS) {
            reject(new UserError(`too many redirects from ${url}`));
            return;
          }
          const next = new URL(response.headers.location, parsed).toString();
          request(next, headers, jar, timeoutMs, redirects + 1).then(resolve, reject);
          return;
        }
        resolve({ response, url });
      },
    );
    // The timeout covers the whole exchange: a server that stops sending mid-body is dropped too.
    req.setTimeout(timeoutMs, () => req.destroy(new RetryableError(`no data for ${Math.round(timeoutMs / 1000)} s`)));
    req.on('error', reject);
  });
}

async function readText(response: http.IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size > limit) {
      response.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function htmlDecode(text: string): string {
  return text
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
}

function attributes(tag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g))
    out.set(m[1].toLowerCase(), htmlDecode(m[2] ?? m[3] ?? ''));
  return out;
}

/**
 * Where Google Drive's confirm page says the file really is: its download form (current Drive),
 * a link carrying confirm= (older Drive), or the download_warning cookie plus confirm=.
 */
function driveConfirmUrl(html: string, pageUrl: string, jar: CookieJar): string | undefined {
  for (const form of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const formAttrs = attributes(form[1]);
    const inputs = [...form[2].matchAll(/<input\b[^>]*>/gi)]
      .map((m) => attributes(m[0]))
      .filter((a) => a.get('type')?.toLowerCase() === 'hidden' && a.has('name'));
    const names = inputs.map((a) => a.get('name'));
    if (formAttrs.get('id') !== 'download-form' && !names.includes('confirm')) continue;
    const target = new URL(formAttrs.get('action') || pageUrl, pageUrl);
    for (const input of inputs) target.searchParams.set(input.get('name')!, input.get('value') ?? '');
    return target.toString();
  }
  const link = html.match(/href\s*=\s*"([^"]*[?&](?:amp;)?confirm=[^"]*)"/i);
  if (link) return new URL(htmlDecode(link[1]), pageUrl).toString();
  const warning = [...jar].find(([name]) => name.startsWith('download_warning'));
  if (warning) {
    const target = new URL(pageUrl);
    target.searchParams.set('confirm', warning[1]);
    return target.toString();
  }
  return undefined;
}

function htmlInsteadOfFile(html: string, label: string, url: string): UserError {
  if (/quota exceeded|too many users have viewed or downloaded/i.test(html)) {
    return new UserError(
      `${label}: Google Drive refused the download (quota exceeded for now); ` +
        'try later, or download it in a browser and pass it with --from FILE',
    );
  }
  return new UserError(
    `${label}: ${url} answered with a web page instead of the file; download it in a browser and pass it with --from FILE`,
  );
}

function partSize(part: string): number {
  try {
    return fs.statSync(part).size;
  } catch {
    return 0;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isRetryable(err: unknown): boolean {
  if (err instanceof RetryableError) return true;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR'].includes(code)) return false;
  return (
    [
      'ECONNRESET',
      'ECONNREFUSED',
      'ETIMEDOUT',
      'EPIPE',
      'EAI_AGAIN',
      'ENOTFOUND',
      'ENETUNREACH',
      'EHOSTUNREACH',
      'ECONNABORTED',
      'ERR_STREAM_PREMATURE_CLOSE',
      'UND_ERR_SOCKET',
    ].includes(code) || /aborted|socket hang up|premature/i.test(errorMessage(err))
  );
}

export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const label = options.label ?? path.basename(options.dest);
  const part = `${options.dest}.part`;
  const expected = options.expected ?? {};
  const retries = options.retries ?? 5;
  const baseDelay = options.retryDelayMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const jar: CookieJar = new Map();
  await fs.promises.mkdir(path.dirname(options.dest), { recursive: true });

  let url = options.url;
  let confirmPages = 0;
  let attempts = 0;
  let resumedFrom = 0;
  let failures = 0;
  const bar = (options.progress ?? silentProgress)(label, expected.size, 'bytes');
  try {
    for (;;) {
      attempts++;
      let offset = partSize(part);
      if (expected.size !== undefined && offset > expected.size) {
        await fs.promises.truncate(part, 0);
        offset = 0;
      }
      if (expected.size !== undefined && offset === expected.size) break;
      try {
        const { response, url: finalUrl } = await request(url, offset > 0 ? { range: `bytes=${offset}-` } : {}, jar, timeoutMs);
        const status = response.statusCode ?? 0;
        if (status === 416) {
          response.resume();
          // Nothing left to send: the .part file is complete if its size is the resource's size.
          const total = Number(/\/(\d+)$/.exec(String(response.headers['content-range'] ?? ''))?.[1]);
          if (offset > 0 && (total === offset || (!Number.isFinite(total) && expected.size === undefined))) break;
          await fs.promises.truncate(part, 0);
          throw new RetryableError('the server refused the resume range');
        }
        if (status >= 400) {
          response.resume();
          if (status >= 500 || status === 429 || status === 408) throw new RetryableError(`HTTP ${status}`);
          throw new UserError(`${label}: HTTP ${status} from ${finalUrl}`);
        }
        const type = String(response.headers['content-type'] ?? '');
        if (/text\/html/i.test(type) && !/\.html?$/i.test(options.dest)) {
          const html = await readText(response, MAX_HTML_BYTES);
          const next = driveConfirmUrl(html, finalUrl, jar);
          if (next && confirmPages < MAX_CONFIRM_PAGES) {
            confirmPages++;
            url = next;
            attempts--;
            continue;
          }
          throw htmlInsteadOfFile(html, label, finalUrl);
        }
        let append = false;
        if (status === 206) {
          const start = Number(/bytes\s+(\d+)-/.exec(String(response.headers['content-range'] ?? ''))?.[1]);
          if (start !== offset) {
            response.destroy();
            await fs.promises.truncate(part, 0);
            throw new RetryableError(`the server resumed at byte ${start}, not ${offset}`);
          }
          append = true;
        }
        const startAt = append ? offset : 0;
        resumedFrom = startAt;
        const length = Number(response.headers['content-length']);
        let received = 0;
        const counter = new Transform({
          transform(chunk: Buffer, _encoding, done) {
            received += chunk.length;
            bar.update(startAt + received);
            done(null, chunk);
          },
        });
        await pipeline(response, counter, fs.createWriteStream(part, { flags: append ? 'a' : 'w' }));
        if (Number.isFinite(length) && received < length)
          throw new RetryableError(`connection closed after ${received} of ${length} bytes`);
        break;
      } catch (err) {
        if (err instanceof UserError) throw err;
        const full = homeWriteError(err, path.dirname(options.dest));
        if (full !== err) throw full;
        if (!isRetryable(err)) throw err;
        failures++;
        if (failures > retries) {
          throw new UserError(
            `${label}: download failed after ${failures} attempts (${errorMessage(err)}); run the same command again to resume`,
          );
        }
        await sleep(Math.min(30_000, baseDelay * 2 ** (failures - 1)));
      }
    }
  } finally {
    bar.stop();
  }

  const digests = await digestFile(part);
  const problem = mismatch(expected, digests);
  if (problem) {
    await fs.promises.rm(part, { force: true });
    throw new UserError(`${label}: ${problem}; the download was deleted (run again to download it afresh)`);
  }
  await fs.promises.rename(part, options.dest);
  return { file: options.dest, bytes: digests.size, resumedFrom, attempts };
}
