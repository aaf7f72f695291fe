// Fills the kernel table: the scalar reference first, then what this CPU
// (native) or this build (wasm) supports. Adding an ISA is one file here and
// one line below.
#include <cstring>

#include "kernels/kernels.h"

namespace bitmamba::kernels {

#if defined(BITMAMBA_HAVE_AVX2)
const Table& table_avx2();
bool cpu_has_avx2();
#endif
#if defined(BITMAMBA_HAVE_AVX512)
const Table& table_avx512();  // AVX-512 BW/VL + VNNI products, AVX2 for the rest
bool cpu_has_avx512vnni();
#endif
#if defined(BITMAMBA_HAVE_WASM_SIMD)
// The build's tables (simd128, or the two relaxed ones; null-terminated) and
// the fastest of them here.
const Table* const* wasm_tables();
const Table& table_wasm_best();
#endif

const Table* table_by_name(const char* isa) {
  if (isa == nullptr) return &table_best();
  if (std::strcmp(isa, "scalar") == 0) return &table_scalar();
#if defined(BITMAMBA_HAVE_AVX2)
  if (std::strcmp(isa, "avx2") == 0) return cpu_has_avx2() ? &table_avx2() : nullptr;
#endif
#if defined(BITMAMBA_HAVE_AVX512)
  if (std::strcmp(isa, "avx512") == 0) return cpu_has_avx512vnni() ? &table_avx512() : nullptr;
#endif
#if defined(BITMAMBA_HAVE_WASM_SIMD)
  for (const Table* const* t = wasm_tables(); *t != nullptr; ++t)
    if (std::strcmp(isa, (*t)->isa) == 0) return *t;
#endif
  return nullptr;
}

const Table& table_best() {
#if defined(BITMAMBA_HAVE_AVX512)
  if (cpu_has_avx512vnni()) return table_avx512();
#endif
#if defined(BITMAMBA_HAVE_AVX2)
  if (cpu_has_avx2()) return table_avx2();
#endif
#if defined(BITMAMBA_HAVE_WASM_SIMD)
  return table_wasm_best();
#endif
  return table_scalar();
}

}  // namespace bitmamba::kernels
