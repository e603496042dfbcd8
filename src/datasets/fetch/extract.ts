import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import yauzl from 'yauzl';
import { UserError, errorMessage } from '../../util/errors.js';
import { homeWriteError } from '../fs_errors.js';

/**
 * Archive extraction that refuses any entry that would land outside the target folder: absolute
 * paths, ".." segments (zip-slip) and links pointing out. Callers extract into a fresh temporary
 * folder and rename it into place, so a refused or broken archive leaves nothing behind. Note that
 * a failed extraction may still have file writes under way when it rejects (tar does not wait for
 * them): callers remove the folder with retries (see fetch.ts).
 */

export type ArchiveKind = 'tar' | 'tar.gz' | 'zip';

export function archiveKind(file: string): ArchiveKind | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const read = fs.readSync(fd, head, 0, 512, 0);
    if (read >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
    if (read >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
    // An empty zip is only its end-of-central-directory record.
    if (read >= 4 && head.readUInt32LE(0) === 0x06054b50) return 'zip';
    if (read >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  } finally {
    fs.closeSync(fd);
  }
  return undefined;
}

/** Why an entry path is unsafe, or undefined when it stays inside the folder. */
function unsafeEntryPath(entryPath: string): string | undefined {
  const normalized = entryPath.replace(/\\/g, '/');
  if (normalized.startsWith('/') || /^[a-zA-Z]:/.test(normalized)) return 'absolute path';
  if (normalized.split('/').includes('..')) return '".." in the path';
  return undefined;
}

/** Why a link target is unsafe: it must resolve inside the folder (relative to the link's own folder). */
function unsafeLinkTarget(entryPath: string, target: string, relativeToRoot = false): string | undefined {
  const normalized = target.replace(/\\/g, '/');
  if (normalized.startsWith('/') || /^[a-zA-Z]:/.test(normalized)) return `link to absolute path ${target}`;
  const base = relativeToRoot ? '.' : path.posix.dirname(entryPath.replace(/\\/g, '/'));
  const resolved = path.posix.normalize(path.posix.join(base, normalized));
  if (resolved === '..' || resolved.startsWith('../')) return `link pointing outside the folder (${target})`;
  return undefined;
}

function refused(archive: string, entry: string, why: string): UserError {
  return new UserError(`${archive}: refusing the archive: entry "${entry}" would land outside the extraction folder (${why})`);
}

/** What is wrong with a tar or tar.gz archive that failed, from the error of zlib or tar. */
function describeBrokenTar(archive: string, err: unknown, gzip: boolean): UserError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const detail = errorMessage(err).replace(/^(zlib|TAR_BAD_ARCHIVE):\s*/, '');
  if (code === 'Z_BUF_ERROR' || /unexpected end of file|truncated input/i.test(detail)) {
    return new UserError(`${archive}: the archive is truncated (${detail}); download it again, or give the complete file`);
  }
  if (
    gzip &&
    (code === 'Z_DATA_ERROR' ||
      /incorrect header check|unknown compression method|invalid (block type|distance|stored block|code)/i.test(detail))
  ) {
    return new UserError(`${archive}: not valid gzip data (${detail}); the file is damaged or is not a .tar.gz`);
  }
  if (/unrecognized archive format|checksum failure/i.test(detail))
    return new UserError(`${archive}: not a tar archive${gzip ? ' inside the gzip data' : ''} (${detail})`);
  return new UserError(`${archive}: corrupt archive (${detail})`);
}

async function extractTar(archive: string, dest: string, gzip: boolean): Promise<number> {
  let problem: UserError | undefined;
  let entries = 0;
  try {
    await tar.x({
      file: archive,
      cwd: dest,
      gzip,
      strict: true,
      preserveOwner: false,
      filter: (entryPath, entry) => {
        if (problem) return false;
        const why = unsafeEntryPath(entryPath);
        const type = 'type' in entry ? entry.type : undefined;
        const linkpath = 'linkpath' in entry ? entry.linkpath : undefined;
        const linkWhy =
          type === 'SymbolicLink' && linkpath
            ? unsafeLinkTarget(entryPath, linkpath)
            : type === 'Link' && linkpath
              ? (unsafeEntryPath(linkpath) ?? unsafeLinkTarget(entryPath, linkpath, true))
              : undefined;
        if (why || linkWhy) {
          problem = refused(archive, entryPath, (why ?? linkWhy)!);
          return false;
        }
        if (type && !['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link', 'GNUDumpDir'].includes(type)) return false;
        entries++;
        return true;
      },
    });
  } catch (err) {
    const full = homeWriteError(err, dest);
    if (full !== err) throw full;
    throw describeBrokenTar(archive, err, gzip);
  }
  if (problem) throw problem;
  return entries;
}

function openZip(archive: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(archive, { lazyEntries: true, autoClose: true, decodeStrings: true, validateEntrySizes: true }, (err, zip) =>
      err ? reject(err) : resolve(zip!),
    );
  });
}

function openEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream!))));
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function extractZip(archive: string, dest: string): Promise<number> {
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(archive);
  } catch (err) {
    throw new UserError(`${archive}: corrupt or truncated zip archive (${errorMessage(err)})`);
  }
  const realDest = fs.realpathSync(dest);
  let entries = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        zip.close();
        reject(err);
      };
      zip.on('error', (err: Error) => {
        // yauzl validates names itself when decoding them; say what that means.
        if (/invalid relative path|absolute path/i.test(err.message))
          fail(new UserError(`${archive}: refusing the archive: an entry would land outside the extraction folder (${err.message})`));
        else fail(new UserError(`${archive}: corrupt or truncated zip archive (${err.message})`));
      });
      zip.on('end', () => resolve());
      zip.on('entry', (entry: yauzl.Entry) => {
        void (async () => {
          const name = entry.fileName;
          const why = unsafeEntryPath(name);
          if (why) throw refused(archive, name, why);
          const target = path.join(dest, name);
          const mode = (entry.externalFileAttributes >>> 16) & 0o170000;
          if (name.endsWith('/')) {
            await fs.promises.mkdir(target, { recursive: true });
          } else if (mode === 0o120000) {
            const linkTarget = await readAll(await openEntry(zip, entry));
            const linkWhy = unsafeLinkTarget(name, linkTarget);
            if (linkWhy) throw refused(archive, name, linkWhy);
            await fs.promises.mkdir(path.dirname(target), { recursive: true });
            await fs.promises.symlink(linkTarget, target);
          } else {
            await fs.promises.mkdir(path.dirname(target), { recursive: true });
            // A symlink created by an earlier entry must not carry this file outside the folder.
            const parent = await fs.promises.realpath(path.dirname(target));
            if (parent !== realDest && !parent.startsWith(realDest + path.sep))
              throw refused(archive, name, 'written through a link that leaves the folder');
            await pipeline(await openEntry(zip, entry), fs.createWriteStream(target, { flags: 'wx' }));
          }
          entries++;
          zip.readEntry();
        })().catch((err: unknown) => {
          if (err instanceof UserError) fail(err);
          else {
            const full = homeWriteError(err, dest);
            fail(
              full !== err && full instanceof Error
                ? full
                : new UserError(`${archive}: corrupt or truncated zip archive (${errorMessage(err)})`),
            );
          }
        });
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  return entries;
}

/** Extracts `archive` into the existing folder `dest`; returns the number of entries written. */
export async function extractArchive(archive: string, dest: string): Promise<number> {
  const kind = archiveKind(archive);
  if (!kind) throw new UserError(`${archive}: not a tar, tar.gz or zip archive`);
  await fs.promises.mkdir(dest, { recursive: true });
  if (kind === 'zip') return extractZip(archive, dest);
  return extractTar(archive, dest, kind === 'tar.gz');
}
