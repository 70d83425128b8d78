// Fused training ops for CUDA devices, forward and backward: the GPU twins of the CPU ops in
// src/fused.rs (RMSNorm, the gated activations, RoPE, softmax) and of the row cross-entropy in
// datm-train's loss.rs. Every kernel reads its inputs in their own precision (f32, bf16 or
// f16), computes in f32, and rounds once on the way out; reductions run in f32.
//
// Row kernels take one block per row (`blockDim.x` a multiple of 32, at most 1024) and stride
// over the row; element-wise kernels stride over the whole tensor.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }

// `v` rounded to T's precision, as the composite ops round each intermediate.
template <typename T> __device__ __forceinline__ float rounded(float v) { return to_f(from_f<T>(v)); }

// The sum of `v` over the block, returned to every thread. `scratch` holds 32 floats.
__device__ float block_sum(float v, float *scratch) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();  // an earlier call may still be reading scratch
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? scratch[lane] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// The maximum of `v` over the block, returned to every thread.
__device__ float block_max(float v, float *scratch) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? scratch[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// ------------------------------------------------------------------ RMSNorm

// `sqrt(mean(x²) + eps)` of one row.
template <typename T> __device__ float row_rms(const T *x, int n, float eps, float *scratch) {
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = to_f(x[i]);
        ss += v * v;
    }
    return sqrtf(block_sum(ss, scratch) / (float)n + eps);
}

// The norm's weight as the composite op multiplies by it: rounded to T first when the
// normalised row is (LLaMA), in f32 otherwise (Gemma's `1 + w`).
template <typename T> __device__ __forceinline__ float norm_weight(const float *w, int i, int cast) {
    return cast ? rounded<T>(w[i]) : w[i];
}

template <typename T>
__device__ void rms_norm_fwd(const T *x, const float *w, T *y, int n, float eps, int cast) {
    __shared__ float scratch[32];
    const size_t at = (size_t)blockIdx.x * n;
    x += at;
    y += at;
    const float denom = row_rms(x, n, eps, scratch);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = to_f(x[i]) / denom;
        if (cast) v = rounded<T>(v);
        y[i] = from_f<T>(v * norm_weight<T>(w, i, cast));
    }
}

// ∂x = r·(g∘w) − x·r³·⟨g∘w, x⟩ / n, with r = 1 / rms(x).
template <typename T>
__device__ void rms_norm_bwd(const T *x, const T *g, const float *w, T *dx, int n, float eps,
                             int cast) {
    __shared__ float scratch[32];
    const size_t at = (size_t)blockIdx.x * n;
    x += at;
    g += at;
    dx += at;
    const float r = 1.f / row_rms(x, n, eps, scratch);
    float dot = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        dot += to_f(x[i]) * to_f(g[i]) * norm_weight<T>(w, i, cast);
    dot = block_sum(dot, scratch);
    const float c = r * r * r * dot / (float)n;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        dx[i] = from_f<T>(r * to_f(g[i]) * norm_weight<T>(w, i, cast) - to_f(x[i]) * c);
}

// ------------------------------------------------------------------ gated activations

#define SQRT_TWO_OVER_PI 0.7978845608f

// The activation (0: SiLU, 1: tanh-approximated GELU) at `x` and its derivative.
__device__ __forceinline__ float2 activation(int act, float x) {
    if (act == 0) {
        const float s = 1.f / (1.f + expf(-x));
        return make_float2(x * s, s * (1.f + x * (1.f - s)));
    }
    const float t = tanhf(SQRT_TWO_OVER_PI * x * (1.f + 0.044715f * x * x));
    const float dinner = SQRT_TWO_OVER_PI * (1.f + 3.f * 0.044715f * x * x);
    return make_float2(0.5f * x * (1.f + t), 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * dinner);
}

// y = act(g)·u, element-wise (act(g) rounded to T first, as the composite op rounds it).
template <typename T>
__device__ void gated_fwd(const T *g, const T *u, T *y, uint64_t len, int act) {
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < len;
         i += (uint64_t)gridDim.x * blockDim.x)
        y[i] = from_f<T>(rounded<T>(activation(act, to_f(g[i])).x) * to_f(u[i]));
}

// (∂g, ∂u) of gated_fwd, concatenated on the last dimension: out rows have 2n values.
template <typename T>
__device__ void gated_bwd(const T *g, const T *u, const T *d, T *out, uint64_t len, int n,
                          int act) {
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < len;
         i += (uint64_t)gridDim.x * blockDim.x) {
        const uint64_t row = i / n, col = i % n;
        const float2 a = activation(act, to_f(g[i]));
        const float di = to_f(d[i]);
        out[row * 2 * n + col] = from_f<T>(di * to_f(u[i]) * a.y);
        out[row * 2 * n + n + col] = from_f<T>(di * a.x);
    }
}

// ------------------------------------------------------------------ RoPE

// Rotate-half RoPE of x [rows, heads, q, d] with f32 half tables [rows, q, d/2]; `sign` -1
// rotates back (the backward pass). The tables are rounded to T, as the composite op casts them.
template <typename T>
__device__ void rope(const T *x, const float *cos, const float *sin, T *y, uint64_t vectors,
                     int heads, int q, int d, float sign) {
    const int half = d / 2;
    const uint64_t len = vectors * half;
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < len;
         i += (uint64_t)gridDim.x * blockDim.x) {
        const uint64_t v = i / half, j = i % half;
        const uint64_t row = v / ((uint64_t)heads * q), t = v % q;
        const uint64_t at = (row * q + t) * half + j;
        const float c = rounded<T>(cos[at]), s = sign * rounded<T>(sin[at]);
        const float lo = to_f(x[v * d + j]), hi = to_f(x[v * d + half + j]);
        y[v * d + j] = from_f<T>(lo * c - hi * s);
        y[v * d + half + j] = from_f<T>(hi * c + lo * s);
    }
}

// ------------------------------------------------------------------ softmax

template <typename T> __device__ void softmax_fwd(const T *x, T *y, int n) {
    __shared__ float scratch[32];
    const size_t at = (size_t)blockIdx.x * n;
    x += at;
    y += at;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, to_f(x[i]));
    m = block_max(m, scratch);
    float s = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += expf(to_f(x[i]) - m);
    s = block_sum(s, scratch);
    for (int i = threadIdx.x; i < n; i += blockDim.x) y[i] = from_f<T>(expf(to_f(x[i]) - m) / s);
}

// ∂x = y∘(∂y − ⟨∂y, y⟩) per row.
template <typename T> __device__ void softmax_bwd(const T *y, const T *d, T *dx, int n) {
    __shared__ float scratch[32];
    const size_t at = (size_t)blockIdx.x * n;
    y += at;
    d += at;
    dx += at;
    float dot = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) dot += to_f(y[i]) * to_f(d[i]);
    dot = block_sum(dot, scratch);
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        dx[i] = from_f<T>(to_f(y[i]) * (to_f(d[i]) - dot));
}

// ------------------------------------------------------------------ cross-entropy

// log Σ exp(z) of one row.
template <typename T> __device__ float row_logsumexp(const T *z, int n, float *scratch) {
    float m = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, to_f(z[i]));
    m = block_max(m, scratch);
    float s = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += expf(to_f(z[i]) - m);
    return m + logf(block_sum(s, scratch));
}

// loss[row] = logsumexp(z_row) − z_row[target[row]], in f32.
template <typename T>
__device__ void cross_entropy_fwd(const T *z, const uint32_t *target, float *loss, int vocab) {
    __shared__ float scratch[32];
    z += (size_t)blockIdx.x * vocab;
    const float lse = row_logsumexp(z, vocab, scratch);
    if (threadIdx.x == 0) loss[blockIdx.x] = lse - to_f(z[target[blockIdx.x]]);
}

// ∂z = (softmax(z) − onehot(target))·g[row].
template <typename T>
__device__ void cross_entropy_bwd(const T *z, const uint32_t *target, const float *g, T *dz,
                                  int vocab) {
    __shared__ float scratch[32];
    const size_t at = (size_t)blockIdx.x * vocab;
    z += at;
    dz += at;
    const float lse = row_logsumexp(z, vocab, scratch);
    const float gr = g[blockIdx.x];
    const uint32_t t = target[blockIdx.x];
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        dz[i] = from_f<T>((expf(to_f(z[i]) - lse) - (i == (int)t ? 1.f : 0.f)) * gr);
}

// ------------------------------------------------------------------ entry points

#define FUSED_OPS(T, SUFFIX)                                                                      \
    extern "C" __global__ void rms_norm_fwd_##SUFFIX(const T *x, const float *w, T *y, int n,     \
                                                     float eps, int cast) {                       \
        rms_norm_fwd<T>(x, w, y, n, eps, cast);                                                   \
    }                                                                                             \
    extern "C" __global__ void rms_norm_bwd_##SUFFIX(const T *x, const T *g, const float *w,      \
                                                     T *dx, int n, float eps, int cast) {         \
        rms_norm_bwd<T>(x, g, w, dx, n, eps, cast);                                               \
    }                                                                                             \
    extern "C" __global__ void gated_fwd_##SUFFIX(const T *g, const T *u, T *y, uint64_t len,     \
                                                  int act) {                                      \
        gated_fwd<T>(g, u, y, len, act);                                                          \
    }                                                                                             \
    extern "C" __global__ void gated_bwd_##SUFFIX(const T *g, const T *u, const T *d, T *out,     \
                                                  uint64_t len, int n, int act) {                 \
        gated_bwd<T>(g, u, d, out, len, n, act);                                                  \
    }                                                                                             \
    extern "C" __global__ void rope_##SUFFIX(const T *x, const float *cos, const float *sin,      \
                                             T *y, uint64_t vectors, int heads, int q, int d,     \
                                             float sign) {                                        \
        rope<T>(x, cos, sin, y, vectors, heads, q, d, sign);                                      \
    }                                                                                             \
    extern "C" __global__ void softmax_fwd_##SUFFIX(const T *x, T *y, int n) {                    \
        softmax_fwd<T>(x, y, n);                                                                  \
    }                                                                                             \
    extern "C" __global__ void softmax_bwd_##SUFFIX(const T *y, const T *d, T *dx, int n) {       \
        softmax_bwd<T>(y, d, dx, n);                                                              \
    }                                                                                             \
    extern "C" __global__ void cross_entropy_fwd_##SUFFIX(const T *z, const uint32_t *target,     \
                                                          float *loss, int vocab) {               \
        cross_entropy_fwd<T>(z, target, loss, vocab);                                             \
    }                                                                                             \
    extern "C" __global__ void cross_entropy_bwd_##SUFFIX(                                        \
        const T *z, const uint32_t *target, const float *g, T *dz, int vocab) {                   \
        cross_entropy_bwd<T>(z, target, g, dz, vocab);                                            \
    }

FUSED_OPS(float, f32)
FUSED_OPS(__nv_bfloat16, bf16)
FUSED_OPS(__half, f16)
