/**
 * Module resolution hooks (see broken_backends.ts): both tfjs-node packages resolve, as when they
 * are installed, to modules that throw on load, as when their native addon cannot load.
 */
const BROKEN: Record<string, string> = {
  '@tensorflow/tfjs-node-gpu': 'libcudnn.so.8: cannot open shared object file: No such file or directory',
  // Two lines: doctor must keep only the first.
  '@tensorflow/tfjs-node': 'The tfjs_binding.node native addon failed to load\n    (a second line doctor must not print)',
};

type NextResolve = (specifier: string, context: unknown) => Promise<{ url: string }>;

export async function resolve(
  specifier: string,
  context: unknown,
  nextResolve: NextResolve,
): Promise<{ url: string; shortCircuit?: boolean }> {
  const message = BROKEN[specifier];
  if (message === undefined) return nextResolve(specifier, context);
  const source = `throw new Error(${JSON.stringify(message)});`;
  return { url: `data:text/javascript,${encodeURIComponent(source)}`, shortCircuit: true };
}
