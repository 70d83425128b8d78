// Host stand-in for CUDA's cuda_fp16.h, for running the kernels on the CPU (emulate.cpp):
// IEEE half storage through the compiler's _Float16, which converts rounding to nearest even.
#pragma once

struct __half {
    _Float16 value;
};

inline float __half2float(__half v) { return float(v.value); }
inline __half __float2half_rn(float f) { return {_Float16(f)}; }
