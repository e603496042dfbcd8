/** Text shapes every progress line and table shares, so the same quantity reads the same everywhere. */

/** "42.0s", "3m07s", "2h05m": a duration as progress lines show it. */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds - m * 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** "03:07", "1:02:05": a remaining time in clock form, for progress bars; "--:--" when unknown. */
export function formatClock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

/** "512 B", "1.50 MB": decimal units, as download sizes are published. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : value < 10 ? 2 : 1)} ${units[unit]}`;
}

/**
 * Joins the parts with " | " into lines no wider than `width`, continuing on indented lines
 * where the next part would not fit (a part wider than the line keeps a line of its own).
 */
export function fitParts(parts: string[], width: number | undefined): string[] {
  if (!width) return [parts.join(' | ')];
  const lines: string[] = [];
  let line = '';
  for (const part of parts) {
    if (line && line.length + 3 + part.length > width) {
      lines.push(line);
      line = `  ${part}`;
    } else {
      line = line ? `${line} | ${part}` : part;
    }
  }
  lines.push(line);
  return lines;
}
