// Runs the kernels of crates/model/cuda/fused.cu on the CPU, for tools/check_cuda_kernels_emulated.py:
// each block's threads are host threads; `__syncthreads` is a barrier over them, and
// `__shfl_xor_sync` exchanges through a block-wide buffer between two barriers (the kernels
// call both from every thread of a block alike, as CUDA requires). Blocks run one after the
// other, so `__shared__` arrays are function-local statics. What this cannot show is the
// GPU's own behaviour (warp scheduling, memory model): `datm check-kernels --device cuda`
// checks the PTX on a GPU.
//
//   c++ -std=c++20 -O1 -shared -fPIC -pthread -I tools/cuda_emulation \
//       tools/cuda_emulation/emulate.cpp -o emulated_kernels.so
//
// Entry point: `int emu_launch(const char *kernel, unsigned grid, unsigned block, void **args)`,
// `args` as cuLaunchKernel takes them (one pointer to each argument's value); it returns -1 for
// an unknown kernel or a block that is not a multiple of 32 up to 1024.
#include <barrier>
#include <cmath>
#include <map>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

struct dim3 {
    unsigned x, y, z;
};
struct float2 {
    float x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }

static thread_local dim3 threadIdx;
static dim3 blockIdx, blockDim, gridDim;
static std::barrier<> *block_barrier;
static float shuffle_buffer[1024];

inline void __syncthreads() { block_barrier->arrive_and_wait(); }

inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
    shuffle_buffer[threadIdx.x] = v;
    __syncthreads();
    const float other = shuffle_buffer[threadIdx.x ^ unsigned(lane_mask)];
    __syncthreads();
    return other;
}

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

#include "../../crates/model/cuda/fused.cu"

template <typename... A, size_t... I>
static void call(void (*kernel)(A...), void **args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_reference_t<A> *>(args[I])...);
}

template <typename... A>
static void run(void (*kernel)(A...), unsigned grid, unsigned block, void **args) {
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    for (unsigned b = 0; b < grid; ++b) {
        blockIdx = {b, 0, 0};
        std::barrier<> barrier(block);
        block_barrier = &barrier;
        std::vector<std::thread> threads;
        threads.reserve(block);
        for (unsigned t = 0; t < block; ++t)
            threads.emplace_back([=] {
                threadIdx = {t, 0, 0};
                call(kernel, args, std::index_sequence_for<A...>{});
            });
        for (auto &thread : threads) thread.join();
    }
}

#define ENTRY(name) {#name, [](unsigned g, unsigned b, void **a) { run(name, g, b, a); }}
#define ENTRIES(S)                                                                               \
    ENTRY(rms_norm_fwd_##S), ENTRY(rms_norm_bwd_##S), ENTRY(gated_fwd_##S),                      \
        ENTRY(gated_bwd_##S), ENTRY(rope_##S), ENTRY(softmax_fwd_##S), ENTRY(softmax_bwd_##S),   \
        ENTRY(cross_entropy_fwd_##S), ENTRY(cross_entropy_bwd_##S)

static const std::map<std::string, void (*)(unsigned, unsigned, void **)> KERNELS = {
    ENTRIES(f32), ENTRIES(bf16), ENTRIES(f16)};

extern "C" int emu_launch(const char *kernel, unsigned grid, unsigned block, void **args) {
    const auto found = KERNELS.find(kernel);
    if (found == KERNELS.end() || block == 0 || block % 32 != 0 || block > 1024) return -1;
    found->second(grid, block, args);
    return 0;
}
