// Encoding throughput of the GPT-2 tokenizer on English prose, one core.
// The text (~400 KB) is generated deterministically: common words plus a long
// tail of made-up words from syllables, so the word cache sees misses as real
// text does. "Cold" encodes with a freshly parsed tokenizer (empty cache)
// each iteration; "Warm" reuses one whose cache already holds the text.
// Target: >= 10 MB/s.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/tokenizer.h"
#include "core/tokenizer_data.h"

namespace {

using bitmamba::Tokenizer;

std::string english_prose(size_t bytes) {
  static const char* const kCommon[] = {
      "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on",
      "not", "he", "I", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they",
      "you", "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when",
      "will", "would", "who", "so", "no", "time", "people", "year", "water", "school", "students", "learning",
      "history", "energy", "system", "important", "example", "different", "process", "between", "because",
      "through", "however", "understand", "children", "research", "question", "government", "information",
      "development", "environment", "scientists", "community", "knowledge", "language", "it's", "don't",
      "they're", "we've", "I'm", "you'll", "she'd", "world", "number", "small", "large", "often", "first"};
  static const char* const kSyllables[] = {
      "ba", "con", "de", "ex", "fi", "gra", "hy", "in", "jo", "ka", "lo", "mi", "nu", "or", "pre", "qua", "ri",
      "sta", "tion", "ul", "ver", "wo", "xe", "yo", "ze", "ment", "ous", "ing", "al", "ly", "er", "ist"};
  std::mt19937 rng(2024);
  std::string text;
  bool sentence_start = true;
  while (text.size() < bytes) {
    std::string word;
    const unsigned r = rng() % 100;
    if (r < 72) {
      word = kCommon[rng() % (sizeof(kCommon) / sizeof(kCommon[0]))];
    } else if (r < 97) {
      for (unsigned k = 0, n = 2 + rng() % 3; k < n; ++k) word += kSyllables[rng() % (sizeof(kSyllables) / sizeof(kSyllables[0]))];
    } else {
      word = std::to_string(rng() % 3000);
    }
    if (sentence_start && word[0] >= 'a' && word[0] <= 'z') word[0] = static_cast<char>(word[0] - 'a' + 'A');
    if (!sentence_start) text += ' ';
    text += word;
    sentence_start = false;
    const unsigned p = rng() % 100;
    if (p < 6) {
      text += ',';
    } else if (p < 12) {
      text += rng() % 8 ? "." : "?";
      sentence_start = true;
      if (rng() % 6 == 0) text += "\n\n";
      else text += ' ';
      if (text.back() == ' ') text.pop_back();
    }
  }
  return text;
}

const std::string& bench_text() {
  static const std::string text = english_prose(400 * 1000);
  return text;
}

void BM_EncodeCold(benchmark::State& state) {
  const std::string& text = bench_text();
  std::vector<int32_t> ids;
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<Tokenizer> tok;
    if (!Tokenizer::parse(bitmamba::kGpt2TokenizerData, bitmamba::kGpt2TokenizerDataSize, &tok).ok()) {
      state.SkipWithError("embedded tokenizer data does not parse");
      break;
    }
    state.ResumeTiming();
    if (!tok->encode(text, &ids).ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.counters["tokens"] = double(ids.size());
}

void BM_EncodeWarm(benchmark::State& state) {
  const std::string& text = bench_text();
  const Tokenizer& tok = Tokenizer::gpt2();
  std::vector<int32_t> ids;
  if (!tok.encode(text, &ids).ok()) state.SkipWithError("encode failed");
  for (auto _ : state) {
    if (!tok.encode(text, &ids).ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.counters["tokens"] = double(ids.size());
}

// Start-up cost: parsing the embedded data (done once per process).
void BM_ParseEmbedded(benchmark::State& state) {
  for (auto _ : state) {
    std::unique_ptr<Tokenizer> tok;
    benchmark::DoNotOptimize(Tokenizer::parse(bitmamba::kGpt2TokenizerData, bitmamba::kGpt2TokenizerDataSize, &tok));
  }
}

}  // namespace

BENCHMARK(BM_EncodeCold)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeWarm)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ParseEmbedded)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
