/**
 * The arithmetic of the balancing methods on small host-side numbers: per-task gradients enter
 * only through their Gram matrix G[i][j] = ⟨g_i, g_j⟩ over the shared parameters, and every
 * gradient method returns coefficients c with combined gradient Σ_i c_i g_i, so the network's
 * gradients are combined once, on the device, with these numbers. Each function is written from
 * its paper; the tasks given are those present in the batch.
 */

export type Gram = readonly (readonly number[])[];

function dot(a: readonly number[], b: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

function times(gram: Gram, x: readonly number[]): number[] {
  return gram.map((row) => dot(row, x));
}

function unit(n: number, i: number): number[] {
  return Array.from({ length: n }, (_, j) => (j === i ? 1 : 0));
}

/**
 * PCGrad (Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020, Algorithm 1): each
 * task's gradient g_i, taken against the other tasks in `orders[i]` (a random order), loses its
 * component along g_j whenever it conflicts with g_j (negative inner product); the update is the
 * sum of the projected gradients. Projections are onto the original g_j, as in the paper.
 */
export function pcgradCoefficients(gram: Gram, orders: readonly (readonly number[])[]): number[] {
  const n = gram.length;
  const total = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    // g_i^PC as a combination of the original gradients.
    const projected = unit(n, i);
    for (const j of orders[i]!) {
      const along = dot(
        projected,
        gram.map((row) => row[j]!),
      );
      if (along < 0 && gram[j]![j]! > 0) projected[j]! -= along / gram[j]![j]!;
    }
    projected.forEach((c, k) => (total[k]! += c));
  }
  return total;
}

interface SimplexProblem {
  gradient(w: readonly number[]): number[];
  /** The best γ ∈ [0, 1] on the segment (1 − γ)·w + γ·vertex. */
  lineSearch(w: readonly number[], vertex: number): number;
}

/** Frank–Wolfe on the probability simplex, from the uniform point, until the duality gap is negligible. */
function frankWolfe(n: number, problem: SimplexProblem, scale: number, maxIterations = 250): number[] {
  let w = new Array<number>(n).fill(1 / n);
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    const gradient = problem.gradient(w);
    let vertex = 0;
    for (let i = 1; i < n; i++) if (gradient[i]! < gradient[vertex]!) vertex = i;
    const gap = dot(gradient, w) - gradient[vertex]!;
    if (!(gap > 1e-12 * scale)) break;
    const gamma = problem.lineSearch(w, vertex);
    if (gamma <= 0) break;
    w = w.map((x, i) => (1 - gamma) * x + (i === vertex ? gamma : 0));
  }
  return w;
}

/**
 * The min-norm point of the convex hull of the task gradients, min_{α ∈ simplex} ‖Σ α_i g_i‖²
 * (Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018,
 * Algorithm 2: Frank–Wolfe with the exact line search of their two-gradient case).
 */
export function minNormCoefficients(gram: Gram): number[] {
  const n = gram.length;
  if (n === 1) return [1];
  const scale = Math.max(...gram.map((row, i) => row[i]!), Number.MIN_VALUE);
  return frankWolfe(
    n,
    {
      gradient: (w) => times(gram, w).map((v) => 2 * v),
      lineSearch: (w, t) => {
        // ‖(1 − γ)v + γ g_t‖² is smallest at γ = ⟨v − g_t, v⟩ / ‖v − g_t‖².
        const vv = dot(w, times(gram, w));
        const vt = dot(
          w,
          gram.map((row) => row[t]!),
        );
        const tt = gram[t]![t]!;
        const denominator = vv - 2 * vt + tt;
        return denominator > 0 ? Math.min(1, Math.max(0, (vv - vt) / denominator)) : 0;
      },
    },
    scale,
  );
}

/** The minimum of a convex function on [0, 1] by golden-section search. */
function goldenSection(f: (x: number) => number, iterations = 80): number {
  const ratio = (Math.sqrt(5) - 1) / 2;
  let lo = 0;
  let hi = 1;
  let a = hi - ratio * (hi - lo);
  let b = lo + ratio * (hi - lo);
  let fa = f(a);
  let fb = f(b);
  for (let i = 0; i < iterations; i++) {
    if (fa <= fb) {
      hi = b;
      b = a;
      fb = fa;
      a = hi - ratio * (hi - lo);
      fa = f(a);
    } else {
      lo = a;
      a = b;
      fa = fb;
      b = lo + ratio * (hi - lo);
      fb = f(b);
    }
  }
  const mid = (lo + hi) / 2;
  // The ends are candidates too: a convex function may be smallest at γ = 0 or 1.
  return [0, mid, 1].reduce((best, x) => (f(x) < f(best) ? x : best), mid);
}

/**
 * CAGrad (Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021):
 * the update d maximises the worst task's improvement min_i ⟨g_i, d⟩ within ‖d − g_0‖ ≤ c‖g_0‖,
 * g_0 the mean gradient. Through its dual, d = g_0 + (√φ / ‖g_w‖) g_w with φ = c²‖g_0‖² and
 * w = argmin_{w ∈ simplex} g_wᵀg_0 + √φ ‖g_w‖. The update is divided by 1 + c², as in the
 * authors' experiments, so that its length stays that of g_0 whatever c is.
 */
export function cagradCoefficients(gram: Gram, c: number): number[] {
  const n = gram.length;
  const mean = new Array<number>(n).fill(1 / n);
  const g0TimesG = times(gram, mean);
  const g0Norm = Math.sqrt(Math.max(0, dot(mean, g0TimesG)));
  const radius = c * g0Norm;
  const normOf = (w: readonly number[]) => Math.sqrt(Math.max(0, dot(w, times(gram, w))));
  const value = (w: readonly number[]) => dot(w, g0TimesG) + radius * normOf(w);
  const scale = Math.max(...gram.map((row, i) => row[i]!), Number.MIN_VALUE);
  const w =
    n === 1
      ? [1]
      : frankWolfe(
          n,
          {
            gradient: (x) => {
              const norm = normOf(x);
              const gx = times(gram, x);
              return g0TimesG.map((v, i) => v + (norm > 0 ? (radius * gx[i]!) / norm : 0));
            },
            lineSearch: (x, t) => goldenSection((gamma) => value(x.map((xi, i) => (1 - gamma) * xi + (i === t ? gamma : 0)))),
          },
          scale,
        );
  const gwNorm = normOf(w);
  const lambda = gwNorm > 0 ? radius / gwNorm : 0;
  return mean.map((m, i) => (m + lambda * w[i]!) / (1 + c * c));
}

/**
 * Dynamic Weight Average (Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention",
 * CVPR 2019, eq. 7): w_k = K·exp(r_k / T) / Σ_i exp(r_i / T) with r_k = L_k(t−1) / L_k(t−2), the
 * ratio of the task's mean losses over the two previous epochs. Until two epochs exist, and for a
 * task without a mean in either (no labelled sample in that epoch), r = 1.
 */
export function dwaWeights(lastEpoch: readonly (number | null)[], epochBefore: readonly (number | null)[], temperature: number): number[] {
  const k = lastEpoch.length;
  const rates = lastEpoch.map((last, i) => {
    const before = epochBefore[i];
    return last !== null && before !== null && before !== undefined && before > 0 ? last / before : 1;
  });
  const top = Math.max(...rates.map((r) => r / temperature));
  const exps = rates.map((r) => Math.exp(r / temperature - top));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => (k * e) / sum);
}

/**
 * GradNorm (Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep
 * Multitask Networks", ICML 2018): the gradient of L_grad = Σ_i |G_i − Ḡ·r_i^α| with respect to
 * the task weights w_i, where G_i = w_i·‖∇_W L_i‖ on the last shared layer W, Ḡ their mean,
 * r_i = L̃_i / mean_j L̃_j the relative inverse training rate (L̃_i = L_i(t) / L_i(0)); the target
 * Ḡ·r_i^α is a constant, as in the paper. Tasks absent from the batch take no part.
 */
export function gradnormWeightGradient(input: {
  weights: readonly number[];
  norms: readonly number[];
  lossRatios: readonly number[];
  alpha: number;
  present: readonly boolean[];
}): number[] {
  const { weights, norms, lossRatios, alpha, present } = input;
  const tasks = present.flatMap((p, i) => (p ? [i] : []));
  const gradient = new Array<number>(weights.length).fill(0);
  if (tasks.length === 0) return gradient;
  const scaled = tasks.map((i) => weights[i]! * norms[i]!);
  const meanNorm = scaled.reduce((a, b) => a + b, 0) / tasks.length;
  const meanRatio = tasks.reduce((a, i) => a + lossRatios[i]!, 0) / tasks.length;
  tasks.forEach((i, k) => {
    const target = meanNorm * (lossRatios[i]! / meanRatio) ** alpha;
    gradient[i] = Math.sign(scaled[k]! - target) * norms[i]!;
  });
  return gradient;
}

/** GradNorm's renormalisation after each update: the weights stay positive and sum to the number of tasks. */
export function renormalisedWeights(weights: readonly number[]): number[] {
  const positive = weights.map((w) => Math.max(w, 1e-6));
  const sum = positive.reduce((a, b) => a + b, 0);
  return positive.map((w) => (weights.length * w) / sum);
}

/** softmax over the tasks present in the batch; absent tasks get 0. */
export function presentSoftmax(logits: readonly number[], present: readonly boolean[]): number[] {
  const top = Math.max(...logits.filter((_, i) => present[i]));
  const exps = logits.map((x, i) => (present[i] ? Math.exp(x - top) : 0));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => (sum > 0 ? e / sum : 0));
}

/**
 * FAMO (Liu et al., "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023): the gradient of
 * the task-weight logits ξ, J_z(ξ)ᵀδ with z = softmax(ξ) and δ_i = log L_i(θ_t) − log L_i(θ_{t+1})
 * the decrease of the task's log-loss over the step. Over the tasks present in the batch only: an
 * absent task's loss did not change because it was not measured, not because it did not improve.
 */
export function famoLogitGradient(logits: readonly number[], logLossDecrease: readonly number[], present: readonly boolean[]): number[] {
  const z = presentSoftmax(logits, present);
  const mean = z.reduce((a, zi, i) => a + zi * logLossDecrease[i]!, 0);
  return z.map((zi, i) => (present[i] ? zi * (logLossDecrease[i]! - mean) : 0));
}

export interface AdamState {
  step: number;
  m: number[];
  v: number[];
}

/**
 * One Adam step on a few host-side parameters, with L2 decay added to the gradient (PyTorch's
 * Adam with weight_decay), returning the new parameters; `state` is updated in place.
 */
export function adamStep(
  params: readonly number[],
  gradient: readonly number[],
  state: AdamState,
  learningRate: number,
  decay: number,
): number[] {
  const beta1 = 0.9;
  const beta2 = 0.999;
  const epsilon = 1e-8;
  state.step++;
  const t = state.step;
  return params.map((p, i) => {
    const g = gradient[i]! + decay * p;
    state.m[i] = beta1 * state.m[i]! + (1 - beta1) * g;
    state.v[i] = beta2 * state.v[i]! + (1 - beta2) * g * g;
    const mHat = state.m[i]! / (1 - beta1 ** t);
    const vHat = state.v[i]! / (1 - beta2 ** t);
    return p - (learningRate * mHat) / (Math.sqrt(vHat) + epsilon);
  });
}
