/**
 * The method's formulas written out in plain float64 JavaScript, one sample and one number at a
 * time, straight from method.md: the hand computation the tensor code is checked against.
 */
export const EPS = 1e-4;

function logSumExp(values: number[]): number {
  const m = Math.max(...values);
  return m + Math.log(values.reduce((a, v) => a + Math.exp(v - m), 0));
}

function logSoftmax(row: number[]): number[] {
  const lse = logSumExp(row);
  return row.map((z) => z - lse);
}

export function softmax(row: number[]): number[] {
  return logSoftmax(row).map(Math.exp);
}

/** log σ(z), stable for large |z|. */
function logSigmoid(z: number): number {
  return z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z));
}

/** BCE(σ(z), t). */
export function bce(z: number, t: number): number {
  return -(t * logSigmoid(z) + (1 - t) * logSigmoid(-z));
}

export function softCE(logits: number[], target: number[]): number {
  const ls = logSoftmax(logits);
  return -target.reduce((a, t, k) => a + t * ls[k]!, 0);
}

export function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

export interface RefBatch {
  /** Categorical logits [N][K] and labels (−1 = none). */
  zC: number[][];
  c: number[];
  /** Multi-label logits [N][M] and labels (0, 1, or null = masked). */
  zA: number[][];
  a: (number | null)[][];
}

export interface RefOptions {
  tau: number;
  variant: 'likelihood' | 'prototypical';
  scope: 'all' | 'missing';
  /** Logits the DM targets q are computed from (the same as the batch's unless the target is detached). */
  targetZC?: number[][];
  targetZA?: number[][];
}

const hasA = (row: (number | null)[]) => row.some((v) => v !== null);

export function supC(b: RefBatch): number {
  const losses = b.c.flatMap((k, n) => (k < 0 ? [] : [-logSoftmax(b.zC[n]!)[k]!]));
  return mean(losses);
}

export function supA(b: RefBatch): number {
  const losses: number[] = [];
  b.a.forEach((row, n) => row.forEach((t, i) => t !== null && losses.push(bce(b.zA[n]![i]!, t))));
  return mean(losses);
}

export function scaCA(b: RefBatch, R: number[][]): number {
  const losses = b.c.flatMap((k, n) => (k >= 0 && !hasA(b.a[n]!) ? [mean(R[k]!.map((r, i) => bce(b.zA[n]![i]!, r)))] : []));
  return mean(losses);
}

export function scaAC(b: RefBatch, R: number[][], tau: number): number {
  const losses: number[] = [];
  b.a.forEach((row, n) => {
    if (!hasA(row) || b.c[n]! >= 0) return;
    const scores = R.map(
      (Rk) => row.reduce((acc: number, t, i) => (t === null ? acc : acc + t * Math.log(Rk[i]!) + (1 - t) * Math.log(1 - Rk[i]!)), 0) / tau,
    );
    losses.push(softCE(b.zC[n]!, softmax(scores)));
  });
  return mean(losses);
}

export function dmCA(b: RefBatch, R: number[][], o: RefOptions): number {
  const source = o.targetZC ?? b.zC;
  const losses: number[] = [];
  b.zA.forEach((zA, n) => {
    if (o.scope === 'missing' && hasA(b.a[n]!)) return;
    const p = softmax(source[n]!);
    const q = zA.map((_, i) => p.reduce((acc, pk, k) => acc + pk * R[k]![i]!, 0));
    losses.push(mean(zA.map((z, i) => bce(z, q[i]!))));
  });
  return mean(losses);
}

/** The DM multi-label → categorical target in log space: Σ_i log(R p + (1−R)(1−p)) via log-sum-exp. */
function dmACScores(zA: number[], R: number[][], variant: RefOptions['variant']): number[] {
  return R.map((Rk) =>
    zA.reduce((acc, z, i) => {
      if (variant === 'prototypical') return Rk[i]! >= 0.5 ? acc + logSigmoid(z) : acc;
      return acc + logSumExp([Math.log(Rk[i]!) + logSigmoid(z), Math.log(1 - Rk[i]!) + logSigmoid(-z)]);
    }, 0),
  );
}

export function dmAC(b: RefBatch, R: number[][], o: RefOptions): number {
  const source = o.targetZA ?? b.zA;
  const losses: number[] = [];
  b.zC.forEach((zC, n) => {
    if (o.scope === 'missing' && b.c[n]! >= 0) return;
    const q = softmax(dmACScores(source[n]!, R, o.variant).map((s) => s / o.tau));
    losses.push(softCE(zC, q));
  });
  return mean(losses);
}

export function total(b: RefBatch, R: number[][], o: RefOptions, weights = { c: 1, a: 1, sca: 1, dm: 1 }): number {
  return (
    weights.c * supC(b) +
    weights.a * supA(b) +
    weights.sca * (scaCA(b, R) + scaAC(b, R, o.tau)) +
    weights.dm * (dmCA(b, R, o) + dmAC(b, R, o))
  );
}
