// `tokenize` and `detokenize`: the GPT-2 tokenizer of the core, from the
// command line. The --jsonl forms process many texts in one process (one JSON
// value per line), for tests/tokenizer/compare_with_npm.mjs.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/text_io.h"
#include "core/tokenizer.h"

namespace bitmamba::cli {

namespace {

const char kTokenizeUsage[] =
    "tokenize: usage: tokenize [--text-file FILE | --jsonl FILE | [--] TEXT]\n"
    "  prints the ids of TEXT (or of the file's bytes) space-separated; with --jsonl,\n"
    "  FILE holds one JSON string per line and each output line is a JSON array";
const char kDetokenizeUsage[] =
    "detokenize: usage: detokenize (\"IDS\" | --jsonl FILE)\n"
    "  prints the text of the ids (invalid UTF-8 shown as U+FFFD); with --jsonl,\n"
    "  FILE holds one JSON array of ids per line and each output line is a JSON string";

void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | cp >> 6));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | cp >> 12));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | cp >> 18));
    out->push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool parse_hex4(const std::string& s, size_t i, uint32_t* v) {
  if (i + 4 > s.size()) return false;
  *v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    const char c = s[k];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return false;
    *v = *v << 4 | static_cast<uint32_t>(d);
  }
  return true;
}

// One JSON string (the whole line, surrounding blanks allowed) -> UTF-8.
// A lone surrogate has no UTF-8 form and is an error.
bool parse_json_string(const std::string& line, std::string* out, std::string* error) {
  out->clear();
  size_t i = line.find_first_not_of(" \t\r");
  if (i == std::string::npos || line[i] != '"') {
    *error = "expected a JSON string";
    return false;
  }
  for (++i; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '"') {
      if (line.find_first_not_of(" \t\r", i + 1) != std::string::npos) {
        *error = "text after the JSON string";
        return false;
      }
      return true;
    }
    if (static_cast<unsigned char>(c) < 0x20) {
      *error = "control character inside a JSON string";
      return false;
    }
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (++i >= line.size()) break;
    switch (line[i]) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '/': out->push_back('/'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'u': {
        uint32_t cp, lo;
        if (!parse_hex4(line, i + 1, &cp)) {
          *error = "bad \\u escape";
          return false;
        }
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 2 < line.size() && line[i + 1] == '\\' && line[i + 2] == 'u' &&
            parse_hex4(line, i + 3, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          i += 6;
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
          *error = "lone surrogate in a JSON string (not representable in UTF-8)";
          return false;
        }
        append_utf8(cp, out);
        break;
      }
      default:
        *error = "bad escape in a JSON string";
        return false;
    }
  }
  *error = "unterminated JSON string";
  return false;
}

// UTF-8 text -> JSON string; only the characters JSON requires are escaped.
void append_json_string(const std::string& text, std::string* out) {
  out->push_back('"');
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out->append(buf);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

void append_ids(const std::vector<int32_t>& ids, char sep, std::string* out) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out->push_back(sep);
    out->append(std::to_string(ids[i]));
  }
}

bool write_all(const std::string& s) { return std::fwrite(s.data(), 1, s.size(), stdout) == s.size(); }

// The text of ids through a StreamDecoder, exactly as generation shows it.
Status stream_text(const Tokenizer& tok, const std::vector<int32_t>& ids, std::string* text) {
  StreamDecoder dec(tok);
  std::string piece;
  text->clear();
  for (const int32_t id : ids) {
    Status st = dec.push(id, &piece);
    if (!st.ok()) return st;
    text->append(piece);
  }
  text->append(dec.flush());
  return Status::Ok();
}

int tokenize_jsonl(const Tokenizer& tok, const std::string& path) {
  std::string data, error, text, out;
  if (!read_file(path, &data, &error)) return fail(kExitError, "tokenize: " + error);
  std::vector<int32_t> ids;
  const std::vector<std::string> lines = split_lines(data);
  for (size_t n = 0; n < lines.size(); ++n) {
    if (!parse_json_string(lines[n], &text, &error))
      return fail(kExitError, "tokenize: " + path + " line " + std::to_string(n + 1) + ": " + error);
    Status st = tok.encode(text, &ids);
    if (!st.ok()) return fail(kExitError, "tokenize: " + path + " line " + std::to_string(n + 1) + ": " + st.message);
    out.push_back('[');
    append_ids(ids, ',', &out);
    out.append("]\n");
  }
  if (!write_all(out)) return fail(kExitError, "tokenize: cannot write the output");
  return kExitOk;
}

int detokenize_jsonl(const Tokenizer& tok, const std::string& path) {
  std::string data, error, text, out;
  if (!read_file(path, &data, &error)) return fail(kExitError, "detokenize: " + error);
  std::vector<int32_t> ids;
  const std::vector<std::string> lines = split_lines(data);
  for (size_t n = 0; n < lines.size(); ++n) {
    const std::string where = "detokenize: " + path + " line " + std::to_string(n + 1) + ": ";
    if (!parse_token_list(lines[n], &ids, &error)) return fail(kExitError, where + error);
    Status st = stream_text(tok, ids, &text);
    if (!st.ok()) return fail(kExitError, where + st.message);
    append_json_string(text, &out);
    out.push_back('\n');
  }
  if (!write_all(out)) return fail(kExitError, "detokenize: cannot write the output");
  return kExitOk;
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  const Tokenizer& tok = Tokenizer::gpt2();
  std::string text, error;
  const std::string first = argc > 0 ? argv[0] : "";
  if (argc == 2 && (first == "--text-file" || first == "--jsonl")) {
    if (first == "--jsonl") return tokenize_jsonl(tok, argv[1]);
    if (!read_file(argv[1], &text, &error)) return fail(kExitError, "tokenize: " + error);
  } else if (argc == 2 && first == "--") {
    text = argv[1];
  } else if (argc == 1 && first.compare(0, 2, "--") != 0) {
    text = first;
  } else {
    return fail(kExitUsage, kTokenizeUsage);
  }
  std::vector<int32_t> ids;
  Status st = tok.encode(text, &ids);
  if (!st.ok()) return fail(kExitError, "tokenize: " + st.message);
  std::string out;
  append_ids(ids, ' ', &out);
  out.push_back('\n');
  if (!write_all(out)) return fail(kExitError, "tokenize: cannot write the output");
  return kExitOk;
}

int cmd_detokenize(int argc, char** argv) {
  const Tokenizer& tok = Tokenizer::gpt2();
  const std::string first = argc > 0 ? argv[0] : "";
  if (argc == 2 && first == "--jsonl") return detokenize_jsonl(tok, argv[1]);
  if (argc != 1 || first.compare(0, 2, "--") == 0) return fail(kExitUsage, kDetokenizeUsage);
  std::vector<int32_t> ids;
  std::string error, text;
  if (!parse_token_list(first, &ids, &error)) return fail(kExitUsage, "detokenize: " + error);
  Status st = stream_text(tok, ids, &text);
  if (!st.ok()) return fail(kExitError, "detokenize: " + st.message);
  if (!write_all(text)) return fail(kExitError, "detokenize: cannot write the output");
  return kExitOk;
}

}  // namespace bitmamba::cli
