#include "core/tokenizer.h"

#include <algorithm>
#include <cstring>

#include "core/tokenizer_data.h"
#include "core/unicode_tables.h"

namespace bitmamba {

namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
constexpr size_t kHeaderBytes = 24;
constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kMaxTokens = 65535;  // u16 ids; 0xFFFFFFFF stays free as the empty pair key

uint32_t read_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

uint32_t read_u16(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8; }

Status data_error(size_t offset, const std::string& what) {
  return make_error(ErrorCode::kBadText, "tokenizer data: " + what + " at byte " + std::to_string(offset));
}

// Strict UTF-8 (RFC 3629): returns the offset of the first byte that does not
// start or continue a valid sequence, or n if all is valid.
size_t utf8_first_invalid(const uint8_t* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t b = s[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;  // overlong
      if (b == 0xED) hi = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;  // overlong
      if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    for (size_t k = 1; k < len; ++k) {
      if (i + k >= n) return i;
      uint8_t c = s[i + k];
      if (c < lo || c > hi) return i;
      lo = 0x80;
      hi = 0xBF;
    }
    i += len;
  }
  return n;
}

struct AsciiClasses {
  CharClass cls[128];
  AsciiClasses() {
    for (uint32_t c = 0; c < 128; ++c) cls[c] = unicode_char_class(c);
  }
};

// The GPT-2 pre-tokenisation pattern, matched by hand at the start of each
// piece; the input is valid UTF-8.
//   /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/u
// Every code point is in one class, so the pieces tile the text.
class PieceScanner {
 public:
  PieceScanner(const uint8_t* s, size_t n, const CharClass* ascii) : s_(s), n_(n), ascii_(ascii) {}

  // The end of the piece that starts at i < n.
  size_t piece_end(size_t i) const {
    const uint8_t b = s_[i];
    if (b == '\'' && i + 1 < n_) {
      const uint8_t b1 = s_[i + 1];
      if (b1 == 's' || b1 == 't' || b1 == 'm' || b1 == 'd') return i + 2;
      if (i + 2 < n_) {
        const uint8_t b2 = s_[i + 2];
        if ((b1 == 'r' && b2 == 'e') || (b1 == 'v' && b2 == 'e') || (b1 == 'l' && b2 == 'l')) return i + 3;
      }
    }
    size_t len;
    const CharClass c = class_at(i, &len);
    if (b == ' ' && i + 1 < n_) {  // " ?" then a run of one class
      size_t len1;
      const CharClass c1 = class_at(i + 1, &len1);
      if (c1 != CharClass::kSpace) return run_end(i + 1 + len1, c1);
    }
    if (c != CharClass::kSpace) return run_end(i + len, c);
    // \s+(?!\S): a run of whitespace, less its last character when a
    // non-space follows (that character then leads the next piece);
    // \s+: a single whitespace character before a non-space.
    size_t j = i + len;
    size_t last = i;
    while (j < n_) {
      size_t l;
      if (class_at(j, &l) != CharClass::kSpace) break;
      last = j;
      j += l;
    }
    return (j == n_ || last == i) ? j : last;
  }

 private:
  CharClass class_at(size_t i, size_t* len) const {
    const uint8_t b = s_[i];
    if (b < 0x80) {
      *len = 1;
      return ascii_[b];
    }
    uint32_t cp;
    if (b < 0xE0) {
      *len = 2;
      cp = (b & 0x1Fu) << 6 | (s_[i + 1] & 0x3Fu);
    } else if (b < 0xF0) {
      *len = 3;
      cp = (b & 0x0Fu) << 12 | (s_[i + 1] & 0x3Fu) << 6 | (s_[i + 2] & 0x3Fu);
    } else {
      *len = 4;
      cp = (b & 0x07u) << 18 | (s_[i + 1] & 0x3Fu) << 12 | (s_[i + 2] & 0x3Fu) << 6 | (s_[i + 3] & 0x3Fu);
    }
    return unicode_char_class(cp);
  }

  size_t run_end(size_t i, CharClass c) const {
    while (i < n_) {
      size_t l;
      if (class_at(i, &l) != c) break;
      i += l;
    }
    return i;
  }

  const uint8_t* s_;
  size_t n_;
  const CharClass* ascii_;
};

uint64_t hash_bytes(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h | 1;  // 0 marks an empty cache slot
}

}  // namespace

// Bounded cache word bytes -> token ids, open addressing over two arenas.
// When any bound is reached it is cleared and refilled: simple, and at most
// about 2.5 MiB however long the text (it also lives in wasm memory).
struct Tokenizer::WordCache {
  static constexpr size_t kSlots = 1 << 16;
  static constexpr size_t kMaxEntries = kSlots / 2;
  static constexpr size_t kMaxKeyBytes = 1 << 20;
  static constexpr size_t kMaxIds = 1 << 18;
  static constexpr size_t kMaxWordBytes = 128;  // longer words are not cached

  struct Slot {
    uint64_t hash = 0;
    uint32_t key_offset = 0;
    uint32_t ids_offset = 0;
    uint16_t key_len = 0;
    uint16_t n_ids = 0;
  };

  std::vector<Slot> slots;
  std::vector<uint8_t> keys;
  std::vector<int32_t> ids;
  size_t entries = 0;

  // Appends the cached ids of word to *out; false if absent.
  bool find(uint64_t hash, const uint8_t* word, size_t len, std::vector<int32_t>* out) const {
    if (slots.empty()) return false;
    for (size_t i = hash & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      const Slot& s = slots[i];
      if (s.hash == 0) return false;
      if (s.hash == hash && s.key_len == len && std::memcmp(&keys[s.key_offset], word, len) == 0) {
        out->insert(out->end(), ids.begin() + s.ids_offset, ids.begin() + s.ids_offset + s.n_ids);
        return true;
      }
    }
  }

  void insert(uint64_t hash, const uint8_t* word, size_t len, const int32_t* word_ids, size_t n) {
    if (slots.empty()) slots.resize(kSlots);
    if (entries + 1 > kMaxEntries || keys.size() + len > kMaxKeyBytes || ids.size() + n > kMaxIds) {
      std::fill(slots.begin(), slots.end(), Slot{});
      keys.clear();
      ids.clear();
      entries = 0;
    }
    size_t i = hash & (kSlots - 1);
    while (slots[i].hash != 0) {
      if (slots[i].hash == hash && slots[i].key_len == len && std::memcmp(&keys[slots[i].key_offset], word, len) == 0) {
        return;  // another thread cached it meanwhile
      }
      i = (i + 1) & (kSlots - 1);
    }
    Slot& s = slots[i];
    s.hash = hash;
    s.key_offset = static_cast<uint32_t>(keys.size());
    s.key_len = static_cast<uint16_t>(len);
    s.ids_offset = static_cast<uint32_t>(ids.size());
    s.n_ids = static_cast<uint16_t>(n);
    keys.insert(keys.end(), word, word + len);
    ids.insert(ids.end(), word_ids, word_ids + n);
    ++entries;
  }
};

Tokenizer::Tokenizer() : cache_(new WordCache) {}
Tokenizer::~Tokenizer() = default;

const Tokenizer& Tokenizer::gpt2() {
  // Never destroyed: other static destructors or detached threads may still use it.
  static const Tokenizer* instance = [] {
    std::unique_ptr<Tokenizer> t;
    Status st = parse(kGpt2TokenizerData, kGpt2TokenizerDataSize, &t);
    if (!st.ok()) {
      t.reset(new Tokenizer);
      t->load_error_ = st;
    }
    return t.release();
  }();
  return *instance;
}

Status Tokenizer::parse(const uint8_t* data, size_t size, std::unique_ptr<Tokenizer>* out) {
  out->reset();
  if (data == nullptr || size < kHeaderBytes) return data_error(0, "truncated header");
  if (std::memcmp(data, "BMTK", 4) != 0) return data_error(0, "bad magic (want \"BMTK\")");
  const uint32_t version = read_u32(data + 4);
  const uint32_t n_tokens = read_u32(data + 8);
  const uint32_t n_base = read_u32(data + 12);
  const uint32_t n_merges = read_u32(data + 16);
  const uint32_t eot = read_u32(data + 20);
  if (version != kFormatVersion) return data_error(4, "unsupported version " + std::to_string(version));
  if (n_tokens > kMaxTokens) return data_error(8, "too many tokens (" + std::to_string(n_tokens) + ")");
  if (n_base != 256) return data_error(12, "n_base must be 256");
  if (uint64_t(n_base) + n_merges > n_tokens) return data_error(16, "more merges than tokens");
  if (eot >= n_tokens) return data_error(20, "eot_id outside the vocabulary");

  uint64_t pos = kHeaderBytes;
  if (size - pos < n_tokens) return data_error(pos, "truncated token lengths");
  const uint8_t* lengths = data + pos;
  pos += n_tokens;
  uint64_t total = 0;
  for (uint32_t i = 0; i < n_tokens; ++i) {
    if (lengths[i] == 0) return data_error(kHeaderBytes + i, "empty token " + std::to_string(i));
    total += lengths[i];
  }
  if (size - pos < total) return data_error(pos, "truncated token bytes");
  const uint64_t bytes_at = pos;
  pos += total;
  if (size - pos != uint64_t(n_merges) * 4) {
    return data_error(pos, "merge table holds " + std::to_string(size - pos) + " bytes, want " +
                               std::to_string(uint64_t(n_merges) * 4));
  }

  std::unique_ptr<Tokenizer> t(new Tokenizer);
  t->token_bytes_.assign(data + bytes_at, data + bytes_at + total);
  t->token_offset_.resize(n_tokens + 1);
  t->token_offset_[0] = 0;
  for (uint32_t i = 0; i < n_tokens; ++i) t->token_offset_[i + 1] = t->token_offset_[i] + lengths[i];
  t->n_base_ = static_cast<int32_t>(n_base);
  t->eot_id_ = static_cast<int32_t>(eot);

  std::fill(std::begin(t->byte_id_), std::end(t->byte_id_), -1);
  for (uint32_t id = 0; id < n_base; ++id) {
    if (lengths[id] != 1) return data_error(kHeaderBytes + id, "base token " + std::to_string(id) + " is not one byte");
    const uint8_t b = t->token_bytes_[t->token_offset_[id]];
    if (t->byte_id_[b] != -1) return data_error(bytes_at + id, "byte " + std::to_string(b) + " appears twice");
    t->byte_id_[b] = static_cast<int32_t>(id);
  }

  uint32_t bits = 1;
  while ((1u << bits) < 2 * n_merges + 2) ++bits;
  t->pair_key_.assign(size_t(1) << bits, 0xFFFFFFFFu);
  t->pair_rank_.assign(size_t(1) << bits, -1);
  t->pair_mask_ = (1u << bits) - 1;
  const uint8_t* merges = data + pos;
  for (uint32_t r = 0; r < n_merges; ++r) {
    const uint64_t at = pos + uint64_t(r) * 4;
    const uint32_t left = read_u16(merges + 4 * r);
    const uint32_t right = read_u16(merges + 4 * r + 2);
    const uint32_t made = n_base + r;
    // Parts made before the merge: the heap BPE in bpe() relies on it to
    // match GPT-2's "merge every occurrence of the best pair" loop.
    if (left >= made || right >= made) return data_error(at, "merge " + std::to_string(r) + " uses a later token");
    const std::string_view l = t->token_bytes(left), rt = t->token_bytes(right), m = t->token_bytes(made);
    if (m.size() != l.size() + rt.size() || m.substr(0, l.size()) != l || m.substr(l.size()) != rt) {
      return data_error(at, "merge " + std::to_string(r) + " does not spell token " + std::to_string(made));
    }
    const uint32_t key = left << 16 | right;
    uint32_t i = (key * 0x9E3779B1u) & t->pair_mask_;
    while (t->pair_key_[i] != 0xFFFFFFFFu) {
      if (t->pair_key_[i] == key) return data_error(at, "merge " + std::to_string(r) + " repeats an earlier pair");
      i = (i + 1) & t->pair_mask_;
    }
    t->pair_key_[i] = key;
    t->pair_rank_[i] = static_cast<int32_t>(r);
  }
  *out = std::move(t);
  return Status::Ok();
}

int32_t Tokenizer::merge_rank(int32_t left, int32_t right) const {
  const uint32_t key = uint32_t(left) << 16 | uint32_t(right);
  for (uint32_t i = (key * 0x9E3779B1u) & pair_mask_;; i = (i + 1) & pair_mask_) {
    if (pair_key_[i] == key) return pair_rank_[i];
    if (pair_key_[i] == 0xFFFFFFFFu) return -1;
  }
}

// Per-encode buffers, reused from piece to piece.
struct Tokenizer::BpeScratch {
  struct Symbol {
    int32_t id;  // -1 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;  // left symbol
    int32_t left;  // ids when pushed; a mismatch means stale
    int32_t right;
  };
  std::vector<Symbol> sym;
  std::vector<Candidate> heap;
  std::vector<int32_t> ids;  // the result
};

// Byte-level BPE of one piece: repeatedly merge the adjacent pair of lowest
// rank, leftmost first. A min-heap of candidate pairs over a linked list of
// symbols: O(n log n), where GPT-2's reference loop is O(n^2) per piece.
// Stale candidates are skipped when popped. Since a merge's parts always come
// from lower ranks, new pairs rank after the one being applied, so this
// applies every occurrence of the best pair left to right exactly as GPT-2.
void Tokenizer::bpe(const uint8_t* word, size_t len, BpeScratch* scratch) const {
  using Candidate = BpeScratch::Candidate;
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  std::vector<BpeScratch::Symbol>& sym = scratch->sym;
  std::vector<Candidate>& heap = scratch->heap;
  sym.resize(len);
  heap.clear();
  const int32_t n = static_cast<int32_t>(len);
  for (int32_t k = 0; k < n; ++k) sym[k] = {byte_id_[word[k]], k - 1, k + 1 < n ? k + 1 : -1};
  for (int32_t k = 0; k + 1 < n; ++k) {
    const int32_t r = merge_rank(sym[k].id, sym[k + 1].id);
    if (r >= 0) heap.push_back({r, k, sym[k].id, sym[k + 1].id});
  }
  std::make_heap(heap.begin(), heap.end(), later);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate c = heap.back();
    heap.pop_back();
    BpeScratch::Symbol& a = sym[c.pos];
    if (a.id != c.left || a.next < 0 || sym[a.next].id != c.right) continue;
    BpeScratch::Symbol& b = sym[a.next];
    a.id = n_base_ + c.rank;
    b.id = -1;
    a.next = b.next;
    if (a.next >= 0) sym[a.next].prev = c.pos;
    if (a.prev >= 0) {
      const int32_t r = merge_rank(sym[a.prev].id, a.id);
      if (r >= 0) {
        heap.push_back({r, a.prev, sym[a.prev].id, a.id});
        std::push_heap(heap.begin(), heap.end(), later);
      }
    }
    if (a.next >= 0) {
      const int32_t r = merge_rank(a.id, sym[a.next].id);
      if (r >= 0) {
        heap.push_back({r, c.pos, a.id, sym[a.next].id});
        std::push_heap(heap.begin(), heap.end(), later);
      }
    }
  }
  scratch->ids.clear();
  for (int32_t k = 0; k >= 0; k = sym[k].next) scratch->ids.push_back(sym[k].id);
}

void Tokenizer::encode_word(const uint8_t* word, size_t len, std::vector<int32_t>* ids, BpeScratch* scratch) const {
  if (len == 1) {
    ids->push_back(byte_id_[word[0]]);
    return;
  }
  const bool cacheable = len <= WordCache::kMaxWordBytes;
  uint64_t hash = 0;
  if (cacheable) {
    hash = hash_bytes(word, len);
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_->find(hash, word, len, ids)) return;
  }
  bpe(word, len, scratch);
  ids->insert(ids->end(), scratch->ids.begin(), scratch->ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    cache_->insert(hash, word, len, scratch->ids.data(), scratch->ids.size());
  }
}

Status Tokenizer::encode(std::string_view text, std::vector<int32_t>* ids) const {
  ids->clear();
  if (!load_error_.ok()) return load_error_;
  const uint8_t* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const size_t bad = utf8_first_invalid(s, n);
  if (bad != n) {
    return make_error(ErrorCode::kBadText, "invalid UTF-8 at byte " + std::to_string(bad) + " of the text");
  }
  static const AsciiClasses ascii;
  const PieceScanner scanner(s, n, ascii.cls);
  BpeScratch scratch;
  ids->reserve(n / 4 + 1);
  for (size_t i = 0; i < n;) {
    const size_t end = scanner.piece_end(i);
    encode_word(s + i, end - i, ids, &scratch);
    i = end;
  }
  return Status::Ok();
}

Status Tokenizer::decode(const int32_t* ids, size_t n, std::string* bytes) const {
  bytes->clear();
  if (!load_error_.ok()) return load_error_;
  const int32_t vocab = vocab_size();
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      bytes->clear();
      return make_error(ErrorCode::kInvalidArgument, "token id " + std::to_string(ids[i]) + " at index " +
                                                         std::to_string(i) + " is outside the vocabulary [0, " +
                                                         std::to_string(vocab) + ")");
    }
    bytes->append(token_bytes(ids[i]));
  }
  return Status::Ok();
}

void Utf8Decoder::feed(const uint8_t* p, size_t n, std::string* out) {
  size_t i = 0;
  while (i < n) {
    const uint8_t b = p[i];
    if (needed_ == 0) {
      ++i;
      if (b < 0x80) {
        out->push_back(static_cast<char>(b));
        continue;
      }
      if (b >= 0xC2 && b <= 0xDF) {
        needed_ = 1;
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) lower_ = 0xA0;
        if (b == 0xED) upper_ = 0x9F;
        needed_ = 2;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) lower_ = 0x90;
        if (b == 0xF4) upper_ = 0x8F;
        needed_ = 3;
      } else {
        out->append(kReplacement);
        continue;
      }
      pending_[0] = b;
      pending_len_ = 1;
      continue;
    }
    if (b < lower_ || b > upper_) {
      // The held bytes are a maximal invalid subpart; b starts afresh.
      needed_ = 0;
      pending_len_ = 0;
      lower_ = 0x80;
      upper_ = 0xBF;
      out->append(kReplacement);
      continue;
    }
    lower_ = 0x80;
    upper_ = 0xBF;
    pending_[pending_len_++] = b;
    ++i;
    if (--needed_ == 0) {
      out->append(reinterpret_cast<const char*>(pending_), pending_len_);
      pending_len_ = 0;
    }
  }
}

void Utf8Decoder::finish(std::string* out) {
  if (needed_ > 0) out->append(kReplacement);
  needed_ = 0;
  pending_len_ = 0;
  lower_ = 0x80;
  upper_ = 0xBF;
}

std::string utf8_sanitize(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  Utf8Decoder d;
  d.feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &out);
  d.finish(&out);
  return out;
}

Status StreamDecoder::push(int32_t id, std::string* out) {
  out->clear();
  if (!tokenizer_->status().ok()) return tokenizer_->status();
  if (id < 0 || id >= tokenizer_->vocab_size()) {
    return make_error(ErrorCode::kInvalidArgument, "token id " + std::to_string(id) +
                                                       " is outside the vocabulary [0, " +
                                                       std::to_string(tokenizer_->vocab_size()) + ")");
  }
  const std::string_view b = tokenizer_->token_bytes(id);
  utf8_.feed(reinterpret_cast<const uint8_t*>(b.data()), b.size(), out);
  return Status::Ok();
}

std::string StreamDecoder::flush() {
  std::string out;
  utf8_.finish(&out);
  return out;
}

}  // namespace bitmamba
