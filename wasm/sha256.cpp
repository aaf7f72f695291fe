// SHA-256 (FIPS 180-4) as a small standalone wasm module
// (dist/bitmamba-sha256.wasm), for checking a model download as it arrives
// (web/hash-worker.js). It exists because the browser's own SHA-256
// (WebCrypto digest) takes the whole input at once and refuses views of a
// SharedArrayBuffer, and SHA-256 in JS runs at about half the speed of this.
//
// One hash per instance. JS copies up to sha256_input_capacity() bytes into
// sha256_input() and calls sha256_update(n); sha256_final() leaves the digest
// in sha256_digest().

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

constexpr uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr size_t kInputBytes = 1 << 20;

struct State {
  uint32_t h[8];
  uint64_t length;       // bytes hashed so far
  uint32_t tail_length;  // bytes of a partial block carried between updates
  uint8_t tail[64];
};

State state;
alignas(16) uint8_t input[kInputBytes];
uint8_t digest[32];

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

inline uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// One round. The message schedule is computed on the fly in a rolling
// window of 16 words; with the rounds unrolled every index is a constant,
// so the window lives in locals rather than in memory.
#define SHA256_ROUND(a, b, c, d, e, f, g, h, k, x)                                        \
  do {                                                                                  \
    const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + (g ^ (e & (f ^ g))) + k + x; \
    d += t1;                                                                            \
    h = t1 + (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + (b ^ ((a ^ b) & (b ^ c)));      \
  } while (0)

inline uint32_t schedule(uint32_t* w, int i) {
  const uint32_t w15 = w[(i + 1) & 15], w2 = w[(i + 14) & 15];
  const uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
  const uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
  return w[i & 15] += s0 + w[(i + 9) & 15] + s1;
}

// Compresses `blocks` 64-byte blocks from `p` into the state.
void compress(const uint8_t* p, size_t blocks) {
  for (; blocks > 0; --blocks, p += 64) {
    uint32_t w[16];
    for (int i = 0; i < 16; ++i) w[i] = load_be32(p + 4 * i);
    uint32_t a = state.h[0], b = state.h[1], c = state.h[2], d = state.h[3];
    uint32_t e = state.h[4], f = state.h[5], g = state.h[6], h = state.h[7];
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i += 8) {
      SHA256_ROUND(a, b, c, d, e, f, g, h, K[i + 0], w[i + 0]);
      SHA256_ROUND(h, a, b, c, d, e, f, g, K[i + 1], w[i + 1]);
      SHA256_ROUND(g, h, a, b, c, d, e, f, K[i + 2], w[i + 2]);
      SHA256_ROUND(f, g, h, a, b, c, d, e, K[i + 3], w[i + 3]);
      SHA256_ROUND(e, f, g, h, a, b, c, d, K[i + 4], w[i + 4]);
      SHA256_ROUND(d, e, f, g, h, a, b, c, K[i + 5], w[i + 5]);
      SHA256_ROUND(c, d, e, f, g, h, a, b, K[i + 6], w[i + 6]);
      SHA256_ROUND(b, c, d, e, f, g, h, a, K[i + 7], w[i + 7]);
    }
#pragma clang loop unroll(full)
    for (int i = 16; i < 64; i += 8) {
      SHA256_ROUND(a, b, c, d, e, f, g, h, K[i + 0], schedule(w, i + 0));
      SHA256_ROUND(h, a, b, c, d, e, f, g, K[i + 1], schedule(w, i + 1));
      SHA256_ROUND(g, h, a, b, c, d, e, f, K[i + 2], schedule(w, i + 2));
      SHA256_ROUND(f, g, h, a, b, c, d, e, K[i + 3], schedule(w, i + 3));
      SHA256_ROUND(e, f, g, h, a, b, c, d, K[i + 4], schedule(w, i + 4));
      SHA256_ROUND(d, e, f, g, h, a, b, c, K[i + 5], schedule(w, i + 5));
      SHA256_ROUND(c, d, e, f, g, h, a, b, K[i + 6], schedule(w, i + 6));
      SHA256_ROUND(b, c, d, e, f, g, h, a, K[i + 7], schedule(w, i + 7));
    }
    state.h[0] += a; state.h[1] += b; state.h[2] += c; state.h[3] += d;
    state.h[4] += e; state.h[5] += f; state.h[6] += g; state.h[7] += h;
  }
}
#undef SHA256_ROUND

void absorb(const uint8_t* data, size_t n) {
  state.length += n;
  if (state.tail_length > 0) {
    const size_t take = n < 64 - state.tail_length ? n : 64 - state.tail_length;
    std::memcpy(state.tail + state.tail_length, data, take);
    state.tail_length += take;
    data += take;
    n -= take;
    if (state.tail_length < 64) return;
    compress(state.tail, 1);
    state.tail_length = 0;
  }
  compress(data, n / 64);
  std::memcpy(state.tail, data + (n & ~size_t{63}), n % 64);
  state.tail_length = n % 64;
}

}  // namespace

extern "C" {

uint8_t* sha256_input() { return input; }
size_t sha256_input_capacity() { return kInputBytes; }
uint8_t* sha256_digest() { return digest; }

void sha256_init() {
  static constexpr uint32_t kInitial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                           0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::memcpy(state.h, kInitial, sizeof kInitial);
  state.length = 0;
  state.tail_length = 0;
}

// Hashes the first n bytes of sha256_input() (n <= sha256_input_capacity()).
void sha256_update(size_t n) { absorb(input, n); }

void sha256_final() {
  const uint64_t bits = state.length * 8;
  uint8_t pad[128] = {0x80};
  const size_t pad_length = (state.tail_length < 56 ? 56 : 120) - state.tail_length;
  uint8_t length_be[8];
  for (int i = 0; i < 8; ++i) length_be[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  absorb(pad, pad_length);
  absorb(length_be, 8);
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 4; ++j) digest[4 * i + j] = static_cast<uint8_t>(state.h[i] >> (24 - 8 * j));
  }
}

}  // extern "C"
