// Every kernel of every optimised table against the scalar reference, bit for
// bit, on random shapes with ragged tails. A table this CPU cannot run is
// skipped with a message.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.h"
#include "tests/common/kernel_parity_cases.h"

namespace bitmamba::kernels {
namespace {

const char* const kIsas[] = {"avx2", "avx512", "simd128", "relaxed", "relaxed-dot-add"};

class KernelParity : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    table_ = table_by_name(GetParam());
    if (table_ == nullptr) GTEST_SKIP() << "kernel table '" << GetParam() << "' is not built or this CPU lacks it";
  }
  const Table& ref() const { return table_scalar(); }
  const Table* table_ = nullptr;
  std::mt19937 rng_{12345};

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  float normal(float sigma) { return std::normal_distribution<float>(0.0f, sigma)(rng_); }
};

// Random on-disk ternary codes (0..2), packed 4 per byte, repacked.
std::vector<uint8_t> random_packed(std::mt19937& rng, int rows, int cols) {
  std::uniform_int_distribution<int> code(0, 2);
  return parity::pack_codes(rows, cols, [&](uint64_t) { return code(rng); });
}

// Quantised activations for T tokens (made by the scalar kernel).
struct Acts {
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<int32_t> qsum;
  QuantizedActs view(int T, int padded) const { return {q.data(), scale.data(), qsum.data(), T, padded}; }
};

// extreme: 0 random activations; 1 every q at -128 or 127 (random sign);
// 2 every q at -128; 3 every q at 127.
Acts random_acts(std::mt19937& rng, int T, int cols, int extreme) {
  const int padded = ternary_padded_cols(cols);
  Acts a;
  a.q.resize(static_cast<size_t>(T) * padded);
  a.scale.resize(static_cast<size_t>(T));
  a.qsum.resize(static_cast<size_t>(T));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(cols)), g(static_cast<size_t>(cols), 1.0f);
  for (int t = 0; t < T; ++t) {
    for (float& v : x) v = nd(rng);
    table_scalar().rmsnorm_quantize(x.data(), g.data(), cols, padded, &a.q[static_cast<size_t>(t) * padded],
                                    &a.scale[t], &a.qsum[t]);
  }
  if (extreme != 0)  // the int8 extremes the int16 accumulators must survive
    for (int t = 0; t < T; ++t) {
      int32_t sum = 0;
      for (int c = 0; c < cols; ++c) {
        int8_t& v = a.q[static_cast<size_t>(t) * padded + c];
        v = extreme == 2 || (extreme == 1 && v < 0) ? -128 : 127;
        sum += v;
      }
      a.qsum[t] = sum;
    }
  return a;
}

void check_matmul(const Table& ref, const Table& opt, bool gemm, std::mt19937& rng, int rows, int cols, int T,
                  int extreme, bool all_max_codes) {
  const int padded = ternary_padded_cols(cols);
  std::vector<uint8_t> packed = random_packed(rng, rows, cols);
  if (all_max_codes) packed = parity::pack_codes(rows, cols, [](uint64_t) { return 2; });  // w = +1 everywhere
  const Acts a = random_acts(rng, T, cols, extreme);
  const QuantizedActs acts = a.view(T, padded);
  const float w_scale = 0.75f + static_cast<float>(rng() % 1000) / 1000.0f;
  // A random row range, and an output stride larger than rows.
  const int begin = static_cast<int>(rng() % static_cast<unsigned>(rows));
  const int end = begin + 1 + static_cast<int>(rng() % static_cast<unsigned>(rows - begin));
  const size_t stride = static_cast<size_t>(rows) + 3;
  const std::string diff =
      parity::matmul_diff(ref, opt, gemm, {packed.data(), padded, w_scale, acts, begin, end, stride});
  ASSERT_EQ(diff, "") << (gemm ? "gemm" : "gemv") << " rows " << rows << " cols " << cols << " T " << T << " range ["
                      << begin << ", " << end << ")";
}

TEST_P(KernelParity, TernaryGemv) {
  const int shapes[][2] = {{1, 1}, {3, 127}, {5, 128}, {17, 129}, {33, 1024}, {7, 2048}, {9, 2049}, {13, 3000}};
  for (const auto& s : shapes) check_matmul(ref(), *table_, false, rng_, s[0], s[1], 1, 0, false);
  for (int iter = 0; iter < 200; ++iter)
    check_matmul(ref(), *table_, false, rng_, uniform(1, 70), uniform(1, 1100), 1, 0, false);
}

TEST_P(KernelParity, TernaryGemm) {
  for (int T = 1; T <= 70; ++T)
    check_matmul(ref(), *table_, true, rng_, uniform(1, 40), uniform(1, 700), T, 0, false);
  const int shapes[][3] = {{21, 1024, 64}, {19, 2048, 17}, {6, 4100, 9}, {3, 384, 70}};
  for (const auto& s : shapes) check_matmul(ref(), *table_, true, rng_, s[0], s[1], s[2], 0, false);
}

// Sums at the edge of the int16 accumulators: every q at -128 or 127 and
// every code 2, over long rows.
TEST_P(KernelParity, TernaryExtremes) {
  for (int cols : {128, 1024, 1152, 2048, 2176, 4096, 5000}) {
    for (int extreme = 1; extreme <= 3; ++extreme) {
      for (bool max_codes : {false, true}) {
        check_matmul(ref(), *table_, false, rng_, 9, cols, 1, extreme, max_codes);
        check_matmul(ref(), *table_, true, rng_, 9, cols, 11, extreme, max_codes);
      }
    }
  }
}

void check_quantize(const Table& ref, const Table& opt, const std::vector<float>& x, const std::vector<float>& g,
                    int n, const std::string& what) {
  const int padded = ternary_padded_cols(n) + 128;  // more padding than needed: it must be zeroed too
  ASSERT_EQ(parity::rmsnorm_quantize_diff(ref, opt, x.data(), g.data(), n, padded), "") << what << " n " << n;
}

TEST_P(KernelParity, RmsnormQuantize) {
  for (int iter = 0; iter < 300; ++iter) {
    const int n = iter < 100 ? iter + 1 : uniform(1, 5000);
    const float sigma = std::pow(10.0f, static_cast<float>(uniform(-6, 6)));
    std::vector<float> x(n), g(n);
    for (int i = 0; i < n; ++i) {
      x[i] = normal(sigma);
      g[i] = 1.0f + normal(0.3f);
    }
    if (iter % 7 == 0) std::fill(x.begin(), x.end(), 0.0f);  // max|n| below 1e-5
    check_quantize(ref(), *table_, x, g, n, "random");
  }
}

// roundf ties (x.5 exactly) must go away from zero. Element 0 fixes the
// maximum (and so the scale); the others are tuned ulp by ulp until the
// scalar formula lands exactly on k + 0.5.
TEST_P(KernelParity, RmsnormQuantizeRoundsTiesAwayFromZero) {
  const int n = 77;
  std::vector<float> x(n, 0.5f), g(n, 1.0f);
  x[0] = 40.0f;
  // inv and s as the scalar kernel computes them (sum of squares in 8 lanes).
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < n; ++i) lanes[i % 8] += x[i] * x[i];
  float total = lanes[0];
  for (int k = 1; k < 8; ++k) total += lanes[k];
  const float inv = 1.0f / std::sqrt(total / static_cast<float>(n) + 1e-6f);
  const float s = 127.0f / std::fabs((x[0] * inv) * g[0]);
  int ties = 0;
  for (int i = 1; i < n; ++i) {
    const float target = static_cast<float>(i % 40 - 20) + 0.5f;  // ..., -0.5, 0.5, 1.5, ...
    float gi = target / ((x[i] * inv) * s);
    for (int step = 0; step < 64; ++step) {
      const float v = ((x[i] * inv) * gi) * s;
      if (v == target) {
        ++ties;
        break;
      }
      gi = std::nextafter(gi, v < target ? 1e30f : -1e30f);
    }
    g[i] = gi;
  }
  ASSERT_GT(ties, n / 2) << "could not construct enough exact ties";
  check_quantize(ref(), *table_, x, g, n, "ties");
}

// An activation that overflowed to infinity normalises to NaN; every table
// quantises NaN to 127 (the scalar one without an undefined NaN -> int8 cast,
// which the sanitizer build would report). Found by the model_file fuzzer.
TEST_P(KernelParity, RmsnormQuantizeNaNIsMax) {
  const int n = 77, padded = ternary_padded_cols(n);
  std::vector<float> x(n, 1.0f), g(n, 1.0f);
  x[0] = INFINITY;
  for (const Table* t : {&ref(), table_}) {
    std::vector<int8_t> q(static_cast<size_t>(padded));
    float scale = 0;
    int32_t qsum = 0;
    t->rmsnorm_quantize(x.data(), g.data(), n, padded, q.data(), &scale, &qsum);
    EXPECT_EQ(q[0], 127) << t->isa;
  }
}

TEST_P(KernelParity, Rmsnorm) {
  for (int iter = 0; iter < 200; ++iter) {
    const int n = iter < 40 ? iter + 1 : uniform(1, 5000);
    std::vector<float> x(n), g(n);
    for (int i = 0; i < n; ++i) {
      x[i] = normal(10.0f);
      g[i] = normal(1.0f);
    }
    ASSERT_EQ(parity::rmsnorm_diff(ref(), *table_, x.data(), g.data(), n), "") << "n " << n;
  }
}

TEST_P(KernelParity, ConvSsmStep) {
  for (int iter = 0; iter < 300; ++iter) {
    const int heads = uniform(1, 9);
    const int head_dim = iter % 3 == 0 ? 8 * uniform(1, 12) : uniform(1, 40);
    const int E = heads * head_dim;
    // Mostly moderate values; some iterations push exp into its clamps.
    const float spread = iter % 5 == 0 ? 60.0f : 3.0f;
    parity::ConvSsmInputs in(heads, head_dim);
    for (float* v : {in.z.data(), in.xin.data(), in.conv_b.data()})
      for (int i = 0; i < E; ++i) v[i] = normal(spread);
    for (float& v : in.conv_w) v = normal(0.5f);
    for (float& v : in.D) v = normal(1.0f);
    for (int h = 0; h < heads; ++h) {
      in.head_B[h] = normal(1.0f);
      in.head_C[h] = normal(1.0f);
      in.head_d[h] = std::fabs(normal(1.0f));
      in.head_g[h] = static_cast<float>(rng_() % 1000) / 1000.0f;
    }
    std::vector<float> conv(3 * E), ssm(E);
    for (float& v : conv) v = normal(spread);
    for (float& v : ssm) v = normal(2.0f);
    // Several steps, so the states carry over.
    ASSERT_EQ(parity::conv_ssm_diff(ref(), *table_, in, conv, ssm, 3), "") << "E " << E << " head_dim " << head_dim;
  }
}

// Test names allow letters, digits and '_' only: relaxed-dot-add -> relaxed_dot_add.
INSTANTIATE_TEST_SUITE_P(Isa, KernelParity, ::testing::ValuesIn(kIsas),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace bitmamba::kernels
