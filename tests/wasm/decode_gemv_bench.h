// What the GEMVs of one 255M decode token cost in this build, through the
// thread pool (see decode_gemv_bench.cpp); part of the kernel bench.
#pragma once

#include "kernels/kernels.h"

namespace bitmamba::kernels::bench {

void bench_decode_gemvs(const Table& table);

}  // namespace bitmamba::kernels::bench
