/**
 * Synchronous clean-ups (a lock file to remove, a temporary folder to delete) that must happen
 * even when the process ends early: at process.exit and, for those registered with `signals`,
 * on SIGINT and SIGTERM when no other part of the program handles that signal. After the
 * clean-ups the signal is raised again with its default action, so the exit status still says
 * which signal ended the process.
 */

interface Registered {
  run: () => void;
  signals: boolean;
}

const registered = new Set<Registered>();
const HANDLED_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
let exitHookInstalled = false;

function runAll(filter: (r: Registered) => boolean): void {
  for (const r of [...registered]) {
    if (!filter(r)) continue;
    registered.delete(r);
    try {
      r.run();
    } catch {
      // The process is ending: a clean-up that fails must not stop the others.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  // Another listener (e.g. `run`'s graceful stop) owns the signal: leave the decision to it.
  if (process.listenerCount(signal) > 1) return;
  // The process is about to end: every clean-up runs, not only those that asked for signals.
  runAll(() => true);
  uninstallSignalHandlers();
  process.kill(process.pid, signal);
}

function installSignalHandlers(): void {
  for (const signal of HANDLED_SIGNALS) if (!process.listeners(signal).includes(onSignal)) process.on(signal, onSignal);
}

function uninstallSignalHandlers(): void {
  for (const signal of HANDLED_SIGNALS) process.off(signal, onSignal);
}

/**
 * Registers `cleanup` until the returned function is called. It runs at most once: at exit, on a
 * signal (with `signals: true`), or never if unregistered first.
 */
export function cleanupOnExit(cleanup: () => void, options: { signals?: boolean } = {}): () => void {
  if (!exitHookInstalled) {
    process.on('exit', () => runAll(() => true));
    exitHookInstalled = true;
  }
  const entry: Registered = { run: cleanup, signals: Boolean(options.signals) };
  registered.add(entry);
  if (entry.signals) installSignalHandlers();
  return () => {
    registered.delete(entry);
    // No listener stays behind: with none, SIGINT keeps its default action (end at once).
    if (![...registered].some((r) => r.signals)) uninstallSignalHandlers();
  };
}
