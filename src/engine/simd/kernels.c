/*
 * mtl-bench's own WebAssembly SIMD kernels (written for this project; nothing copied).
 *
 * They run on the tfjs wasm backend's heap: the module imports that instance's memory, so
 * pointers are the byte offsets of tensors the backend already holds and nothing is copied.
 * Every function works on a part of its output ([begin, end) of some unit), so the main thread
 * and helper threads (src/engine/heap_workers.ts) can each take a disjoint part of one call.
 *
 * The module owns no memory of its own: no data, no globals, and no shadow stack (everything
 * lives in wasm locals). scripts/build-simd.sh checks that, since a stack or data segment would
 * be placed at an address of the imported memory that the backend uses for its own data.
 *
 * Tensors are float32 and channels-last (NHWC), as tfjs lays them out.
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------------------------------------
 * Filter gradient of a 2-D convolution:
 *   dw[ky,kx,ci,co] = sum over n, oy, ox of x[n, oy*sh + ky - pt, ox*sw + kx - pl, ci] * dy[n, oy, ox, co]
 * (positions outside x contribute zero). dw is [FH, FW, Cin, Cout], tfjs's filter layout.
 *
 * The work is cut into tiles of dw: one tap (ky, kx), up to 4 input channels and up to 8 output
 * channels (Cout must be a multiple of 4), accumulated in 8 SIMD registers while the loop walks
 * the positions: per position, 4 broadcast x values times 2 vectors of dy. Positions are visited
 * in bands of output rows of one image, and every tile of the caller's range is updated per band,
 * so the band's dy rows and x rows stay in cache while all tiles reuse them.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
  int n, h, w, cin, oh, ow, cout, fh, fw, sh, sw, pt, pl;
} conv_dims;

INLINE void filter_tile(const int NCI, const int NCOV, const float *x_image, const float *dy_image, float *dw_tile,
                        const conv_dims *d, int oy_begin, int oy_end, int ky, int kx, int ox_begin, int ox_end) {
  v128_t acc[4][2];
  for (int i = 0; i < NCI; i++)
    for (int j = 0; j < NCOV; j++) acc[i][j] = wasm_v128_load(dw_tile + i * d->cout + 4 * j);
  const int x_step = d->sw * d->cin;
  for (int oy = oy_begin; oy < oy_end; oy++) {
    const int iy = oy * d->sh + ky - d->pt;
    if (iy < 0 || iy >= d->h) continue;
    const float *xp = x_image + (iy * d->w + ox_begin * d->sw + kx - d->pl) * d->cin;
    const float *dp = dy_image + (oy * d->ow + ox_begin) * d->cout;
    for (int ox = ox_begin; ox < ox_end; ox++, xp += x_step, dp += d->cout) {
      v128_t g[2];
      for (int j = 0; j < NCOV; j++) g[j] = wasm_v128_load(dp + 4 * j);
      for (int i = 0; i < NCI; i++) {
        const v128_t v = wasm_v128_load32_splat(xp + i);
        for (int j = 0; j < NCOV; j++) acc[i][j] = wasm_f32x4_add(acc[i][j], wasm_f32x4_mul(v, g[j]));
      }
    }
  }
  for (int i = 0; i < NCI; i++)
    for (int j = 0; j < NCOV; j++) wasm_v128_store(dw_tile + i * d->cout + 4 * j, acc[i][j]);
}

/* Tiles of the filter gradient for these dimensions; a caller splits [0, tiles) between threads. */
EXPORT(filter_grad_tiles)
int filter_grad_tiles(int cin, int cout, int fh, int fw) { return fh * fw * ((cin + 3) / 4) * ((cout + 7) / 8); }

EXPORT(filter_grad)
void filter_grad(const float *x, const float *dy, float *dw, int n, int h, int w, int cin, int oh, int ow, int cout, int fh,
                 int fw, int sh, int sw, int pt, int pl, int tile_begin, int tile_end) {
  const conv_dims d = {n, h, w, cin, oh, ow, cout, fh, fw, sh, sw, pt, pl};
  const int ci_blocks = (cin + 3) / 4;
  const int co_blocks = (cout + 7) / 8;
  for (int t = tile_begin; t < tile_end; t++) {
    const int tap = t / (ci_blocks * co_blocks);
    const int ci0 = (t / co_blocks % ci_blocks) * 4;
    const int co0 = (t % co_blocks) * 8;
    const int nci = cin - ci0 < 4 ? cin - ci0 : 4;
    const int nco = cout - co0 < 8 ? cout - co0 : 8;
    for (int i = 0; i < nci; i++)
      for (int j = 0; j < nco; j++) dw[(tap * cin + ci0 + i) * cout + co0 + j] = 0.0f;
  }
  /* Bands of at least 64 positions, so a tile's register loads and stores are amortised. */
  const int band = ow >= 64 ? 1 : (64 + ow - 1) / ow;
  for (int b = 0; b < n; b++) {
    const float *x_image = x + b * h * w * cin;
    const float *dy_image = dy + b * oh * ow * cout;
    for (int oy0 = 0; oy0 < oh; oy0 += band) {
      const int oy1 = oy0 + band < oh ? oy0 + band : oh;
      for (int t = tile_begin; t < tile_end; t++) {
        const int tap = t / (ci_blocks * co_blocks);
        const int ky = tap / fw;
        const int kx = tap % fw;
        const int ci0 = (t / co_blocks % ci_blocks) * 4;
        const int co0 = (t % co_blocks) * 8;
        /* Output columns whose input column ox*sw + kx - pl lies inside x. */
        const int lead = d.pl - kx;
        const int ox_begin = lead > 0 ? (lead + sw - 1) / sw : 0;
        const int last = w - 1 + lead;
        int ox_end = last < 0 ? 0 : last / sw + 1;
        if (ox_end > ow) ox_end = ow;
        if (ox_begin >= ox_end) continue;
        float *tile = dw + (tap * cin + ci0) * cout + co0;
        const float *xi = x_image + ci0;
        const float *di = dy_image + co0;
        const int nci = cin - ci0 < 4 ? cin - ci0 : 4;
        const int ncov = cout - co0 < 8 ? 1 : 2;
        switch (nci * 2 + ncov - 1) {
          case 2: filter_tile(1, 1, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 3: filter_tile(1, 2, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 4: filter_tile(2, 1, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 5: filter_tile(2, 2, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 6: filter_tile(3, 1, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 7: filter_tile(3, 2, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          case 8: filter_tile(4, 1, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
          default: filter_tile(4, 2, xi, di, tile, &d, oy0, oy1, ky, kx, ox_begin, ox_end); break;
        }
      }
    }
  }
}

/* ---------------------------------------------------------------------------------------------
 * Training batch normalisation over the channels of [M, C] data (M = N*H*W positions; C a
 * multiple of 4), the closed form of src/model/training_batch_norm.ts:
 *   forward:  mean = sum(x)/M, var = sum((x-mean)^2)/M, y = (x-mean)*factor + offset
 *   backward: sum_dy = sum(dy), sum_dyc = sum(dy*(x-mean)),
 *             dx = dy*factor + (x-mean)*coef + shift   (coef, shift per channel, from the sums)
 * Sums are split by blocks of 16 channels (one 64-byte line of a position), so that each part
 * reads its own lines; within a block they add 64 positions at a time into a partial that is
 * then added to the total, which keeps float32 rounding close to a pairwise sum. Element-wise
 * passes are split by positions.
 * ------------------------------------------------------------------------------------------- */

#define CHUNK 64

/* Channel blocks of 16 that the sums split into. */
EXPORT(channel_blocks)
int channel_blocks(int c) { return (c + 15) / 16; }

INLINE void sum_block(const int NV, const float *x, const float *mean, float *out, int m, int c, int c0) {
  v128_t total[4], mu[4];
  for (int j = 0; j < NV; j++) {
    total[j] = wasm_f32x4_splat(0.0f);
    mu[j] = mean ? wasm_v128_load(mean + c0 + 4 * j) : wasm_f32x4_splat(0.0f);
  }
  for (int p0 = 0; p0 < m; p0 += CHUNK) {
    const int p1 = p0 + CHUNK < m ? p0 + CHUNK : m;
    v128_t part[4];
    for (int j = 0; j < NV; j++) part[j] = wasm_f32x4_splat(0.0f);
    const float *xp = x + p0 * c + c0;
    for (int p = p0; p < p1; p++, xp += c) {
      for (int j = 0; j < NV; j++) {
        v128_t v = wasm_v128_load(xp + 4 * j);
        if (mean) {
          v = wasm_f32x4_sub(v, mu[j]);
          v = wasm_f32x4_mul(v, v);
        }
        part[j] = wasm_f32x4_add(part[j], v);
      }
    }
    for (int j = 0; j < NV; j++) total[j] = wasm_f32x4_add(total[j], part[j]);
  }
  for (int j = 0; j < NV; j++) wasm_v128_store(out + c0 + 4 * j, total[j]);
}

/* out[c] = sum over positions of x (mean == 0) or of (x - mean[c])^2, for channel blocks [begin, end). */
EXPORT(channel_sums)
void channel_sums(const float *x, const float *mean, float *out, int m, int c, int block_begin, int block_end) {
  for (int b = block_begin; b < block_end; b++) {
    const int c0 = 16 * b;
    const int nv = (c - c0) / 4 < 4 ? (c - c0) / 4 : 4;
    switch (nv) {
      case 1: sum_block(1, x, mean, out, m, c, c0); break;
      case 2: sum_block(2, x, mean, out, m, c, c0); break;
      case 3: sum_block(3, x, mean, out, m, c, c0); break;
      default: sum_block(4, x, mean, out, m, c, c0); break;
    }
  }
}

INLINE void grad_sum_block(const int NV, const float *dy, const float *x, const float *mean, float *sum_dy, float *sum_dyc, int m,
                           int c, int c0) {
  v128_t total_dy[4], total_dyc[4], mu[4];
  for (int j = 0; j < NV; j++) {
    total_dy[j] = wasm_f32x4_splat(0.0f);
    total_dyc[j] = wasm_f32x4_splat(0.0f);
    mu[j] = wasm_v128_load(mean + c0 + 4 * j);
  }
  for (int p0 = 0; p0 < m; p0 += CHUNK) {
    const int p1 = p0 + CHUNK < m ? p0 + CHUNK : m;
    v128_t part_dy[4], part_dyc[4];
    for (int j = 0; j < NV; j++) part_dy[j] = part_dyc[j] = wasm_f32x4_splat(0.0f);
    const float *xp = x + p0 * c + c0;
    const float *gp = dy + p0 * c + c0;
    for (int p = p0; p < p1; p++, xp += c, gp += c) {
      for (int j = 0; j < NV; j++) {
        const v128_t g = wasm_v128_load(gp + 4 * j);
        const v128_t centered = wasm_f32x4_sub(wasm_v128_load(xp + 4 * j), mu[j]);
        part_dy[j] = wasm_f32x4_add(part_dy[j], g);
        part_dyc[j] = wasm_f32x4_add(part_dyc[j], wasm_f32x4_mul(g, centered));
      }
    }
    for (int j = 0; j < NV; j++) {
      total_dy[j] = wasm_f32x4_add(total_dy[j], part_dy[j]);
      total_dyc[j] = wasm_f32x4_add(total_dyc[j], part_dyc[j]);
    }
  }
  for (int j = 0; j < NV; j++) {
    wasm_v128_store(sum_dy + c0 + 4 * j, total_dy[j]);
    wasm_v128_store(sum_dyc + c0 + 4 * j, total_dyc[j]);
  }
}

/* sum_dy[c] = sum of dy, sum_dyc[c] = sum of dy*(x - mean[c]), for channel blocks [begin, end). */
EXPORT(batch_norm_grad_sums)
void batch_norm_grad_sums(const float *dy, const float *x, const float *mean, float *sum_dy, float *sum_dyc, int m, int c,
                          int block_begin, int block_end) {
  for (int b = block_begin; b < block_end; b++) {
    const int c0 = 16 * b;
    const int nv = (c - c0) / 4 < 4 ? (c - c0) / 4 : 4;
    switch (nv) {
      case 1: grad_sum_block(1, dy, x, mean, sum_dy, sum_dyc, m, c, c0); break;
      case 2: grad_sum_block(2, dy, x, mean, sum_dy, sum_dyc, m, c, c0); break;
      case 3: grad_sum_block(3, dy, x, mean, sum_dy, sum_dyc, m, c, c0); break;
      default: grad_sum_block(4, dy, x, mean, sum_dy, sum_dyc, m, c, c0); break;
    }
  }
}

/* y = (x - mean)*factor + offset for positions [begin, end). */
EXPORT(batch_norm_apply)
void batch_norm_apply(const float *x, const float *mean, const float *factor, const float *offset, float *y, int c, int begin,
                      int end) {
  for (int p = begin; p < end; p++) {
    const float *xp = x + p * c;
    float *yp = y + p * c;
    for (int k = 0; k < c; k += 4) {
      const v128_t centered = wasm_f32x4_sub(wasm_v128_load(xp + k), wasm_v128_load(mean + k));
      wasm_v128_store(yp + k, wasm_f32x4_add(wasm_f32x4_mul(centered, wasm_v128_load(factor + k)), wasm_v128_load(offset + k)));
    }
  }
}

/* dx = dy*factor + (x - mean)*coef + shift for positions [begin, end). */
EXPORT(batch_norm_grad_input)
void batch_norm_grad_input(const float *dy, const float *x, const float *mean, const float *factor, const float *coef,
                           const float *shift, float *dx, int c, int begin, int end) {
  for (int p = begin; p < end; p++) {
    const float *gp = dy + p * c;
    const float *xp = x + p * c;
    float *out = dx + p * c;
    for (int k = 0; k < c; k += 4) {
      const v128_t centered = wasm_f32x4_sub(wasm_v128_load(xp + k), wasm_v128_load(mean + k));
      const v128_t scaled = wasm_f32x4_mul(wasm_v128_load(gp + k), wasm_v128_load(factor + k));
      const v128_t value = wasm_f32x4_add(wasm_f32x4_add(scaled, wasm_f32x4_mul(centered, wasm_v128_load(coef + k))), wasm_v128_load(shift + k));
      wasm_v128_store(out + k, value);
    }
  }
}

/* ReLU's gradient: dx = dy where x > 0, else 0 (also where x is NaN), for elements [begin, end). */
EXPORT(relu_grad)
void relu_grad(const float *dy, const float *x, float *dx, int begin, int end) {
  int i = begin;
  for (; i < end && (i & 3) != 0; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (; i + 4 <= end; i += 4) {
    const v128_t positive = wasm_f32x4_gt(wasm_v128_load(x + i), zero);
    wasm_v128_store(dx + i, wasm_v128_and(wasm_v128_load(dy + i), positive));
  }
  for (; i < end; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

/* ---------------------------------------------------------------------------------------------
 * Max-pool gradient for 2x2 windows with stride 2 and no padding over [N, H, W, C] (C a multiple
 * of 4), images [begin, end): each window's dy goes to its first maximum in scan order (00, 01,
 * 10, 11; a strictly greater value wins, NaN never does), the tie rule of tfjs's cpu backend.
 * Positions no window covers (an odd last row or column) get 0.
 * ------------------------------------------------------------------------------------------- */

EXPORT(max_pool_grad_2x2)
void max_pool_grad_2x2(const float *x, const float *dy, float *dx, int h, int w, int c, int oh, int ow, int begin, int end) {
  const v128_t lowest = wasm_f32x4_splat(-__builtin_inff());
  const int row = w * c;
  for (int b = begin; b < end; b++) {
    const float *xi = x + b * h * row;
    float *di = dx + b * h * row;
    const float *g = dy + b * oh * ow * c;
    for (int y = 2 * oh; y < h; y++)
      for (int k = 0; k < row; k++) di[y * row + k] = 0.0f;
    if (2 * ow < w)
      for (int y = 0; y < 2 * oh; y++)
        for (int k = 2 * ow * c; k < row; k++) di[y * row + k] = 0.0f;
    for (int oy = 0; oy < oh; oy++) {
      for (int ox = 0; ox < ow; ox++, g += c) {
        const int p00 = 2 * oy * row + 2 * ox * c;
        const int p01 = p00 + c, p10 = p00 + row, p11 = p10 + c;
        for (int k = 0; k < c; k += 4) {
          const v128_t v00 = wasm_v128_load(xi + p00 + k), v01 = wasm_v128_load(xi + p01 + k);
          const v128_t v10 = wasm_v128_load(xi + p10 + k), v11 = wasm_v128_load(xi + p11 + k);
          const v128_t s0 = wasm_f32x4_gt(v00, lowest);
          v128_t best = wasm_v128_bitselect(v00, lowest, s0);
          const v128_t s1 = wasm_f32x4_gt(v01, best);
          best = wasm_v128_bitselect(v01, best, s1);
          const v128_t s2 = wasm_f32x4_gt(v10, best);
          best = wasm_v128_bitselect(v10, best, s2);
          const v128_t s3 = wasm_f32x4_gt(v11, best);
          const v128_t later2 = s3, later1 = wasm_v128_or(s2, s3), later0 = wasm_v128_or(s1, later1);
          const v128_t grad = wasm_v128_load(g + k);
          wasm_v128_store(di + p00 + k, wasm_v128_and(grad, wasm_v128_andnot(s0, later0)));
          wasm_v128_store(di + p01 + k, wasm_v128_and(grad, wasm_v128_andnot(s1, later1)));
          wasm_v128_store(di + p10 + k, wasm_v128_and(grad, wasm_v128_andnot(s2, later2)));
          wasm_v128_store(di + p11 + k, wasm_v128_and(grad, s3));
        }
      }
    }
  }
}
