// GPT-2 tokenizer: known ids (from the npm package gpt-3-encoder), invalid
// UTF-8, round trips, the streaming decoder, ids out of range, and corrupt
// tokenizer files (one per failure kind). The full comparison with the npm
// encoder over a corpus is tests/tokenizer/compare_with_npm.mjs.
#include "core/tokenizer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/tokenizer_data.h"

namespace bitmamba {
namespace {

using Ids = std::vector<int32_t>;

const Tokenizer& gpt2() {
  const Tokenizer& tok = Tokenizer::gpt2();
  EXPECT_TRUE(tok.status().ok()) << tok.status().message;
  return tok;
}

Ids encode(const std::string& text) {
  Ids ids;
  Status st = gpt2().encode(text, &ids);
  EXPECT_TRUE(st.ok()) << st.message;
  return ids;
}

std::string decode(const Ids& ids) {
  std::string bytes;
  Status st = gpt2().decode(ids.data(), ids.size(), &bytes);
  EXPECT_TRUE(st.ok()) << st.message;
  return bytes;
}

// What generation shows: every push, then flush.
std::string stream(const Ids& ids, std::vector<std::string>* pieces = nullptr) {
  StreamDecoder dec(gpt2());
  std::string text, piece;
  for (int32_t id : ids) {
    EXPECT_TRUE(dec.push(id, &piece).ok());
    if (pieces) pieces->push_back(piece);
    text += piece;
  }
  text += dec.flush();
  return text;
}

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Tokenizer, Vocabulary) {
  EXPECT_EQ(gpt2().vocab_size(), 50257);
  EXPECT_EQ(gpt2().eot_id(), 50256);
  EXPECT_EQ(gpt2().token_bytes(50256), "<|endoftext|>");
  EXPECT_EQ(gpt2().token_bytes(15496), "Hello");
}

TEST(Tokenizer, KnownIds) {
  EXPECT_EQ(encode(""), Ids{});
  EXPECT_EQ(encode("Hello world"), (Ids{15496, 995}));
  EXPECT_EQ(encode(" Hello"), (Ids{18435}));
  EXPECT_EQ(encode("1234567"), (Ids{10163, 2231, 3134}));
  EXPECT_EQ(encode("é"), (Ids{2634}));
  EXPECT_EQ(encode("e\xCC\x81"), (Ids{68, 136, 223}));  // e + combining acute: a mark is not \p{L}
  EXPECT_EQ(encode("中文"), (Ids{40792, 23877, 229}));
}

TEST(Tokenizer, Contractions) {
  EXPECT_EQ(encode("it's"), (Ids{270, 338}));
  EXPECT_EQ(encode("IT'S"), (Ids{2043, 6, 50}));  // the pattern is case-sensitive: 'S is not a contraction
  EXPECT_EQ(encode("''s"), (Ids{7061, 82}));      // contractions only where a piece starts
}

TEST(Tokenizer, Whitespace) {
  EXPECT_EQ(encode("a  b"), (Ids{64, 220, 275}));            // the last space joins the word
  EXPECT_EQ(encode("a\t\tb"), (Ids{64, 197, 197, 65}));      // only ' ' prefixes a word
  EXPECT_EQ(encode("x  \ny"), (Ids{87, 220, 220, 198, 88}));
  EXPECT_EQ(encode("hello   "), (Ids{31373, 220, 220, 220}));  // trailing run kept whole
  EXPECT_EQ(encode("  "), (Ids{220, 220}));
}

TEST(Tokenizer, EndOfTextIsOrdinaryText) {
  EXPECT_EQ(encode("<|endoftext|>"), (Ids{27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_EQ(decode({50256}), "<|endoftext|>");
}

TEST(Tokenizer, EmojiSequences) {
  EXPECT_EQ(encode("\xF0\x9F\x98\x80"), (Ids{47249, 222}));  // U+1F600
  EXPECT_EQ(encode("\xF0\x9F\x87\xBA\xF0\x9F\x87\xB8"), (Ids{8582, 229, 118, 8582, 229, 116}));  // flag US
}

TEST(Tokenizer, InvalidUtf8IsAnErrorWithItsOffset) {
  struct Case {
    std::string text;
    size_t offset;
  };
  const Case cases[] = {
      {"ab\x80", 2},                  // stray continuation byte
      {"\xC0\xAF", 0},                // overlong (C0/C1 never valid)
      {"x\xE0\x80\xAF", 1},           // overlong 3-byte form
      {"\xF0\x80\x80\xAF", 0},        // overlong 4-byte form
      {"ok \xED\xA0\x80", 3},         // UTF-16 surrogate D800
      {"\xF4\x90\x80\x80", 0},        // above U+10FFFF
      {"\xF5\x80\x80\x80", 0},        // invalid lead byte
      {"\xFF", 0},
      {"end\xE2\x82", 3},             // truncated at the end
      {"\xE2\x82x", 0},               // truncated before ASCII
      {"\xF0\x9F\x98", 0},            // a cut emoji
      {std::string("a\0\xC3", 3), 2},  // NUL is valid; the cut sequence is not
  };
  for (const Case& c : cases) {
    Ids ids = {1, 2, 3};
    Status st = gpt2().encode(c.text, &ids);
    EXPECT_EQ(st.code, ErrorCode::kBadText);
    EXPECT_NE(st.message.find("byte " + std::to_string(c.offset) + " "), std::string::npos) << st.message;
    EXPECT_TRUE(ids.empty());
  }
  Ids ids;
  EXPECT_TRUE(gpt2().encode(std::string("a\0b", 3), &ids).ok());
  EXPECT_TRUE(gpt2().encode("\xF4\x8F\xBF\xBF \xEF\xBF\xBF \xED\x9F\xBF", &ids).ok());  // the edges that are valid
}

TEST(Tokenizer, RoundTrip) {
  const std::string texts[] = {
      "",
      "The quick brown fox jumps over the lazy dog.\n\n\tIndented\r\nline   ",
      "\xEF\xBB\xBF" "BOM first",  // kept, unlike TextDecoder
      "caf\xC3\xA9 na\xC3\xAFve \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9",
      std::string("nul\0inside", 10),
      std::string(5000, 'a'),
      "<|endoftext|>",
  };
  for (const std::string& t : texts) {
    Ids ids = encode(t);
    EXPECT_EQ(decode(ids), t);
    EXPECT_EQ(stream(ids), t);
  }
}

// Random valid UTF-8 from all planes (surrogates excluded).
std::string random_text(std::mt19937* rng, size_t n_chars) {
  std::string s;
  for (size_t i = 0; i < n_chars; ++i) {
    uint32_t cp;
    switch ((*rng)() % 4) {
      case 0: cp = (*rng)() % 0x80; break;
      case 1: cp = 0x80 + (*rng)() % (0x800 - 0x80); break;
      case 2: cp = 0x800 + (*rng)() % (0x10000 - 0x800); break;
      default: cp = 0x10000 + (*rng)() % (0x110000 - 0x10000); break;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = ' ';
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | cp >> 6);
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | cp >> 12);
      s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | cp >> 18);
      s += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
      s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return s;
}

TEST(Tokenizer, RandomRoundTrip) {
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    const std::string t = random_text(&rng, rng() % 64);
    const Ids ids = encode(t);
    ASSERT_EQ(decode(ids), t);
    ASSERT_EQ(stream(ids), t);
  }
}

TEST(Tokenizer, IdsOutOfRange) {
  std::string bytes = "junk";
  const Ids bad[] = {{-1}, {50257}, {15496, 2147483647}, {15496, -2147483647 - 1}};
  for (const Ids& ids : bad) {
    Status st = gpt2().decode(ids.data(), ids.size(), &bytes);
    EXPECT_EQ(st.code, ErrorCode::kInvalidArgument);
    EXPECT_NE(st.message.find("outside the vocabulary"), std::string::npos) << st.message;
    EXPECT_TRUE(bytes.empty());
  }
  StreamDecoder dec(gpt2());
  std::string piece = "junk";
  EXPECT_EQ(dec.push(50257, &piece).code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(dec.push(-5, &piece).code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(piece.empty());
}

TEST(StreamDecoder, HoldsBackASplitEmoji) {
  // U+1F600 is [47249, 222]: the first token holds 3 of its 4 bytes.
  StreamDecoder dec(gpt2());
  std::string piece;
  ASSERT_TRUE(dec.push(15496, &piece).ok());
  EXPECT_EQ(piece, "Hello");
  ASSERT_TRUE(dec.push(47249, &piece).ok());
  EXPECT_EQ(piece, "");
  ASSERT_EQ(dec.push(50257, &piece).code, ErrorCode::kInvalidArgument);  // a bad id changes nothing
  ASSERT_TRUE(dec.push(222, &piece).ok());
  EXPECT_EQ(piece, "\xF0\x9F\x98\x80");
  EXPECT_EQ(dec.flush(), "");
}

TEST(StreamDecoder, ZwjFamilyNeverShowsReplacement) {
  const std::string family =
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7\xE2\x80\x8D\xF0\x9F\x91\xA6";
  const Ids ids = encode("A " + family + " \xF0\x9F\x87\xBA\xF0\x9F\x87\xB8!");
  std::vector<std::string> pieces;
  EXPECT_EQ(stream(ids, &pieces), "A " + family + " \xF0\x9F\x87\xBA\xF0\x9F\x87\xB8!");
  for (const std::string& p : pieces) {
    EXPECT_EQ(p.find(kFffd), std::string::npos);
    EXPECT_EQ(utf8_sanitize(p), p);  // each piece is complete UTF-8
  }
}

TEST(StreamDecoder, FlushShowsAnIncompleteTailAsTheFullDecodeDoes) {
  StreamDecoder dec(gpt2());
  std::string piece;
  ASSERT_TRUE(dec.push(47249, &piece).ok());  // 3 bytes of a 4-byte character
  EXPECT_EQ(piece, "");
  EXPECT_EQ(dec.flush(), kFffd);
  EXPECT_EQ(utf8_sanitize(decode({47249})), kFffd);
  ASSERT_TRUE(dec.push(15496, &piece).ok());  // flushed: a fresh stream
  EXPECT_EQ(piece, "Hello");
  EXPECT_EQ(dec.flush(), "");
}

TEST(StreamDecoder, MatchesTheFullDecodeOnRandomIds) {
  // Byte tokens 128..255 split characters in every way.
  std::mt19937 rng(11);
  for (int i = 0; i < 2000; ++i) {
    Ids ids(1 + rng() % 10);
    for (int32_t& id : ids) id = rng() % 2 ? static_cast<int32_t>(rng() % 256) : static_cast<int32_t>(rng() % 50257);
    std::vector<std::string> pieces;
    ASSERT_EQ(stream(ids, &pieces), utf8_sanitize(decode(ids)));
    for (const std::string& p : pieces) ASSERT_EQ(utf8_sanitize(p), p);
  }
}

TEST(Utf8Sanitize, FollowsTextDecoder) {
  // One U+FFFD per maximal invalid subpart (WHATWG Encoding / TextDecoder).
  EXPECT_EQ(utf8_sanitize("ok"), "ok");
  EXPECT_EQ(utf8_sanitize("\x80"), kFffd);
  EXPECT_EQ(utf8_sanitize("\xF0\x9F\x98" "A"), kFffd + "A");
  EXPECT_EQ(utf8_sanitize("\xE0\x80"), kFffd + kFffd);
  EXPECT_EQ(utf8_sanitize("\xED\xA0\x80"), kFffd + kFffd + kFffd);
  EXPECT_EQ(utf8_sanitize("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);
  EXPECT_EQ(utf8_sanitize("\xC0\xAF"), kFffd + kFffd);
  EXPECT_EQ(utf8_sanitize("\xE2\x82"), kFffd);
  EXPECT_EQ(utf8_sanitize("\xE2\x82\xAC\xE2"), "\xE2\x82\xAC" + kFffd);
  EXPECT_EQ(utf8_sanitize("\xEF\xBB\xBFx"), "\xEF\xBB\xBFx");
}

TEST(Tokenizer, ConcurrentEncodeMatchesSerial) {
  std::mt19937 rng(3);
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) texts.push_back(random_text(&rng, 200) + " the cat sat on the mat, again and again");
  std::vector<Ids> want;
  for (const std::string& t : texts) want.push_back(encode(t));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      Ids ids;
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          if (!Tokenizer::gpt2().encode(texts[(i + k) % texts.size()], &ids).ok() || ids != want[(i + k) % texts.size()])
            ++mismatches[k];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(Tokenizer, CacheEvictionKeepsResults) {
  std::unique_ptr<Tokenizer> tok;
  ASSERT_TRUE(Tokenizer::parse(kGpt2TokenizerData, kGpt2TokenizerDataSize, &tok).ok());
  const std::string sample = "Cache me if you can: the same words, again and again.";
  Ids first, many, again;
  ASSERT_TRUE(tok->encode(sample, &first).ok());
  std::string words;  // more distinct words than the cache holds
  for (int i = 0; i < 70000; ++i) {
    std::string w = " ";
    for (int v = i; v > 0 || w.size() == 1; v /= 26) w += static_cast<char>('a' + v % 26);
    words += w;
  }
  ASSERT_TRUE(tok->encode(words, &many).ok());
  EXPECT_EQ(decode(many), words);
  ASSERT_TRUE(tok->encode(sample, &again).ok());
  EXPECT_EQ(first, again);
}

TEST(Tokenizer, LongWordsAreFast) {
  // The heap merge loop keeps a 200 KB word of one letter quick.
  const std::string word(200000, 'a');
  const Ids ids = encode(word);
  EXPECT_EQ(decode(ids), word);
  EXPECT_LT(ids.size(), word.size() / 2);
}

// A tiny tokenizer file: 256 byte tokens (id = byte value), merges
// "a"+"b" -> 256, "ab"+"c" -> 257, then the special token 258.
struct TinyFile {
  std::vector<uint8_t> lengths;
  std::string bytes;
  std::vector<uint16_t> merges;
  uint32_t version = 1, n_base = 256, eot = 258;
  std::string magic = "BMTK";

  TinyFile() {
    for (int b = 0; b < 256; ++b) {
      lengths.push_back(1);
      bytes.push_back(static_cast<char>(b));
    }
    add_token("ab");
    add_token("abc");
    add_token("<eot>");
    merges = {'a', 'b', 256, 'c'};
  }
  void add_token(const std::string& t) {
    lengths.push_back(static_cast<uint8_t>(t.size()));
    bytes += t;
  }
  std::vector<uint8_t> build(uint32_t n_merges_field = 0xFFFFFFFF) const {
    std::vector<uint8_t> out(magic.begin(), magic.end());
    auto u32 = [&](uint32_t v) {
      for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    };
    u32(version);
    u32(static_cast<uint32_t>(lengths.size()));
    u32(n_base);
    u32(n_merges_field != 0xFFFFFFFF ? n_merges_field : static_cast<uint32_t>(merges.size() / 2));
    u32(eot);
    out.insert(out.end(), lengths.begin(), lengths.end());
    out.insert(out.end(), bytes.begin(), bytes.end());
    for (uint16_t m : merges) {
      out.push_back(static_cast<uint8_t>(m));
      out.push_back(static_cast<uint8_t>(m >> 8));
    }
    return out;
  }
};

Status parse(const std::vector<uint8_t>& data, std::unique_ptr<Tokenizer>* out = nullptr) {
  std::unique_ptr<Tokenizer> tok;
  Status st = Tokenizer::parse(data.data(), data.size(), &tok);
  EXPECT_EQ(st.ok(), tok != nullptr);
  if (out) *out = std::move(tok);
  return st;
}

TEST(TokenizerFile, TinyFileWorks) {
  std::unique_ptr<Tokenizer> tok;
  ASSERT_TRUE(parse(TinyFile().build(), &tok).ok());
  Ids ids;
  ASSERT_TRUE(tok->encode("abc abcab", &ids).ok());
  EXPECT_EQ(ids, (Ids{257, ' ', 257, 256}));
  EXPECT_EQ(tok->eot_id(), 258);
  std::string bytes;
  ASSERT_TRUE(tok->decode(ids.data(), ids.size(), &bytes).ok());
  EXPECT_EQ(bytes, "abc abcab");
}

TEST(TokenizerFile, EachCorruptionIsNamed) {
  struct Case {
    const char* what;
    std::vector<uint8_t> data;
  };
  std::vector<Case> cases;
  const std::vector<uint8_t> good = TinyFile().build();
  cases.push_back({"truncated header", std::vector<uint8_t>(good.begin(), good.begin() + 10)});
  {
    TinyFile f;
    f.magic = "BIT2";
    cases.push_back({"bad magic", f.build()});
  }
  {
    TinyFile f;
    f.version = 2;
    cases.push_back({"unsupported version", f.build()});
  }
  {
    TinyFile f;
    f.n_base = 255;
    cases.push_back({"n_base must be 256", f.build()});
  }
  cases.push_back({"more merges than tokens", TinyFile().build(100)});
  {
    TinyFile f;
    f.eot = 259;
    cases.push_back({"eot_id outside the vocabulary", f.build()});
  }
  {
    TinyFile f;
    f.lengths[257] = 0;
    f.bytes.erase(256 + 2, 3);
    cases.push_back({"empty token 257", f.build()});
  }
  cases.push_back({"truncated token lengths", std::vector<uint8_t>(good.begin(), good.begin() + 24 + 100)});
  cases.push_back({"truncated token bytes", std::vector<uint8_t>(good.begin(), good.begin() + 24 + 259 + 100)});
  {
    std::vector<uint8_t> d = good;
    d.push_back(0);
    cases.push_back({"merge table holds 9 bytes, want 8", d});
  }
  {
    TinyFile f;
    f.lengths[7] = 2;
    f.bytes.insert(7, "x");
    cases.push_back({"base token 7 is not one byte", f.build()});
  }
  {
    TinyFile f;
    f.bytes[7] = 8;
    cases.push_back({"byte 8 appears twice", f.build()});
  }
  {
    TinyFile f;
    f.merges = {'a', 'b', 257, 'c'};
    cases.push_back({"merge 1 uses a later token", f.build()});
  }
  {
    TinyFile f;
    f.merges = {'a', 'b', 256, 'd'};
    cases.push_back({"merge 1 does not spell token 257", f.build()});
  }
  {
    TinyFile f;  // "ab" made twice: token 257 must spell "ab" too
    f.bytes.replace(256 + 2, 3, "ab");
    f.lengths[257] = 2;
    f.merges = {'a', 'b', 'a', 'b'};
    cases.push_back({"merge 1 repeats an earlier pair", f.build()});
  }
  for (const Case& c : cases) {
    Status st = parse(c.data);
    EXPECT_EQ(st.code, ErrorCode::kBadText) << c.what;
    EXPECT_NE(st.message.find(c.what), std::string::npos) << "want '" << c.what << "', got: " << st.message;
    EXPECT_NE(st.message.find(" at byte "), std::string::npos) << st.message;
  }
  std::unique_ptr<Tokenizer> none;
  EXPECT_EQ(Tokenizer::parse(nullptr, 0, &none).code, ErrorCode::kBadText);
}

}  // namespace
}  // namespace bitmamba
