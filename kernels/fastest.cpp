// Times candidate kernel tables against each other (see kernels.h).
#include <chrono>
#include <cstdint>
#include <vector>

#include "kernels/kernels.h"

namespace bitmamba::kernels {

namespace {

// 192 rows of 1024 columns (the commonest row length of the published
// models, and the kernels' short-row path): 48 KiB of codes, a few
// microseconds per product, small enough to stay in cache so the time is
// the kernel's, not memory's.
constexpr int kRows = 192;
constexpr int kCols = 1024;
constexpr int kCallsPerTrial = 100;
// Trials alternate between the tables. A browser first runs wasm on its
// baseline compiler and swaps in optimised code only after a function has
// run for a while (Chromium here: after 2-4 trials), so enough trials are
// made for every table to be timed well after that; each table's best trial
// counts.
constexpr int kTrials = 20;
// A table later in the list must beat the best earlier one by this much,
// so that noise does not flip a close call to the table listed later. It
// was 15%, to favour dot-add, which then gained the most once weights
// streamed from memory; since its GEMV keeps a chain per field it is ahead
// in cache too where the engine has VNNI (Chromium: 1.2x the int16 table),
// while in Firefox the int16 table was faster in cache (1.06-1.24x) and
// ran decode 7-19% and prefill 32-45% faster, but lost the pick to the 15%.
constexpr double kMargin = 1.03;

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

const Table& fastest_table(const Table* const* tables) {
  int n = 0;
  while (tables[n] != nullptr) ++n;
  if (n == 1) return *tables[0];

  // Codes and activations from a fixed linear congruential sequence.
  std::vector<uint8_t> codes(static_cast<size_t>(kRows) * ternary_row_bytes(kCols));
  std::vector<int8_t> q(kCols);
  uint32_t state = 12345;
  auto next = [&state] { return state = state * 1664525u + 1013904223u; };
  for (uint8_t& byte : codes) {
    byte = 0;
    for (int field = 0; field < 4; ++field) byte |= static_cast<uint8_t>((next() >> 16) % 3 << (2 * field));
  }
  for (int8_t& v : q) v = static_cast<int8_t>(next() >> 24);
  const float scale = 1.0f;
  const int32_t qsum = 0;
  const QuantizedActs acts{q.data(), &scale, &qsum, 1, kCols};
  std::vector<float> out(kRows);

  std::vector<double> best(static_cast<size_t>(n), 1e30);
  for (int trial = 0; trial < kTrials; ++trial) {
    for (int i = 0; i < n; ++i) {
      const double start = seconds_now();
      for (int call = 0; call < kCallsPerTrial; ++call)
        tables[i]->ternary_gemv(codes.data(), kCols, 1.0f, acts, 0, kRows, out.data(), 1);
      const double elapsed = seconds_now() - start;
      if (elapsed < best[i]) best[i] = elapsed;
    }
  }
  int fastest = 0;
  for (int i = 1; i < n; ++i)
    if (best[i] * kMargin < best[fastest]) fastest = i;
  return *tables[fastest];
}

}  // namespace bitmamba::kernels
