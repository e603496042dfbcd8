/** Module resolution hooks that answer `@tensorflow/tfjs-node-gpu` with the stand-in beside this file. */
const STAND_IN = new URL('./gpu_package.js', import.meta.url).href;

type Resolve = (specifier: string, context: unknown) => Promise<{ url: string; shortCircuit?: boolean }>;

export async function resolve(specifier: string, context: unknown, nextResolve: Resolve): Promise<{ url: string; shortCircuit?: boolean }> {
  if (specifier === '@tensorflow/tfjs-node-gpu') return { url: STAND_IN, shortCircuit: true };
  return nextResolve(specifier, context);
}
