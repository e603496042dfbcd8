import fs from 'node:fs';

/**
 * Frame images of one video folder by frame number: the last run of digits in each file name
 * ("00042.jpg", "frame_42.png" → 42), since extraction tools name frames in different ways.
 */
export function framesByNumber(folder: string): Map<number, string> {
  const out = new Map<number, string>();
  if (!fs.existsSync(folder)) return out;
  for (const name of fs.readdirSync(folder)) {
    if (!/\.(jpe?g|png|bmp)$/i.test(name)) continue;
    const digits = /(\d+)(?!.*\d)/.exec(name.replace(/\.[^.]+$/, ''));
    if (digits) out.set(Number(digits[1]), name);
  }
  return out;
}

/** AU number of a label or header name: "AU1", "AU 01", "au12", "12". */
export function auNumber(name: string): number | undefined {
  const m = /^\s*(?:au\s*)?0*(\d+)\s*$/i.exec(name);
  return m ? Number(m[1]) : undefined;
}
