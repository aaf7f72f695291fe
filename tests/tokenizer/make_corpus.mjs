// Writes tests/tokenizer/corpus.json: the texts compare_with_npm.mjs checks
// against the npm reference encoder. Deterministic (fixed seed); rerun after
// editing:  node tests/tokenizer/make_corpus.mjs
//
// Only characters assigned in Unicode 15.0 (the tables in
// core/unicode_tables.cpp) appear here; compare_with_npm.mjs reports the
// classes of later characters separately.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const corpus = [];
const add = (category, ...texts) => { for (const text of texts) corpus.push({ category, text }); };

let seed = 0x5eed1234;
function rand(n) {  // xorshift32, uniform enough for picking characters
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed % n;
}
const pick = (arr) => arr[rand(arr.length)];

add('prose',
  'The quick brown fox jumps over the lazy dog.',
  'Hello world',
  'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.',
  'Photosynthesis is the process by which green plants and some other organisms use sunlight to synthesize foods from carbon dioxide and water.',
  'In 1492, Columbus sailed the ocean blue. He had three ships: the Niña, the Pinta, and the Santa María.',
  'Dr. Smith (a.k.a. "the professor") said: "We\'ll see." Then he left -- quickly.',
  'Q: What is 2 + 2?\nA: 4.\n\nQ: And 10 / 3?\nA: About 3.333...',
  'Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse, I thought I would sail about a little.',
  '“Smart quotes” and ‘single ones’ – en dash — em dash … ellipsis',
  'e.g. i.e. etc. vs. Mr. Mrs. Ms. U.S.A. U.K. a.m. p.m.',
  'ALL CAPS SENTENCE WITH SHOUTING AND NUMBERS 123 AND PUNCTUATION!!!',
  'lowercase sentence without any punctuation at all just words flowing on',
  'Title Case Is Used In Headlines Like This One',
  'First line.\nSecond line.\nThird line.\n',
  'Paragraph one.\n\nParagraph two has more text.\n\n\nParagraph three after two blank lines.',
  '# Heading\n\n* bullet one\n* bullet two\n\n1. first\n2. second\n\n> a quote\n\n**bold** _italic_ `code`',
  'See https://example.com/path?query=1&b=two#frag or mail someone@example.org.',
  'The price is $19.99 (USD), €17,50 or £15. Tax: 8.25%.',
  'Temperatures ranged from -40°C to +50°C; 98.6°F is normal.',
  'He said "hello," she said \'goodbye.\' They\'re both right.',
);

add('contractions',
  "it's", "It's", "IT'S", "It'S", "don't", "DON'T", "Don'T", "we're", "WE'RE", "We'Re", "they've", "THEY'VE",
  "I'm", "I'M", "you'll", "YOU'LL", "You'Ll", "he'd", "HE'D", "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d",
  "''s", "'''", "rock 'n' roll", "the dog's bone's", "’s curly apostrophe’s", "'sup", "'tis", "'em", "'ello",
  "can't won't shouldn't'd've", "y'all're", "o'clock O'Brien", "'s's's", "x's", " 's", "  's", "\n's",
  "1's 2'd", "é's", "٣'s", "½'s", "Ⅻ's", "\u0301's", "中's", "😀's", "ʼs", "ª's", "º's", "µ's", "'", "''", "'1", "' s",
);

add('code',
  'int main(int argc, char** argv) {\n  return 0;\n}\n',
  'def f(x):\n    if x > 0:\n        return x * 2\n    return -x\n',
  'for (let i = 0; i < n; i++) {\n\tconsole.log(`i=${i}`);\n}',
  '{"name": "bitmamba", "version": "1.0.0", "tags": ["a","b","c"], "nested": {"x": [1, 2, 3]}}',
  '["a","b"],["c","d"]',
  "f('a','b'), g(\"c\",\"d\")",
  '<div class="x"><p>Hello &amp; welcome</p></div>',
  '#!/bin/sh\nset -eu\nfor f in *.txt; do echo "$f"; done > /dev/null 2>&1',
  'SELECT id, name FROM users WHERE age >= 21 ORDER BY name DESC LIMIT 10;',
  'x += 1; y -= 2; z *= 3; w /= 4; a <<= 1; b >>= 2; c &&= d; e ||= f; g ??= h;',
  '    indented with four spaces\n\tindented with a tab\n  \t mixed',
  'std::vector<std::unique_ptr<Foo>> v; v.emplace_back(std::make_unique<Foo>(42));',
  'fn main() -> Result<(), Box<dyn Error>> { println!("{:?}", vec![1, 2]); Ok(()) }',
  'import numpy as np\narr = np.zeros((3, 4), dtype=np.float32)\nprint(arr.shape)\n',
  '\\begin{equation} E = mc^2 \\quad \\int_0^\\infty e^{-x^2} dx = \\frac{\\sqrt{\\pi}}{2} \\end{equation}',
  'a,b,c\n1,2,3\n"x, y",4,5\n',
  '2024-01-15T10:30:00Z INFO [main] server started on 0.0.0.0:8080 (pid=1234)',
  'base64: SGVsbG8gV29ybGQhIFRoaXMgaXMgYSB0ZXN0Lg==',
  'hex: 0xDEADBEEF 0x1f 0XFF 0b1010 0o777 1e-9 6.022e23 1_000_000',
  'if(a&&b||!c){d=e?f:g;}else{h=i[j]->k.l;}',
  'path/to/file.cpp:42:17: error: expected \';\' before \'}\' token',
  '// comment\n/* block\n   comment */\n# hash comment\n-- sql comment',
  '```python\nprint("hi")\n```',
  'key1=value1&key2=value%20two&key3=%E2%9C%93',
);

add('numbers',
  '0', '1', '12', '123', '1234', '12345678901234567890', '3.14159265358979', '1,000,000', '1.000.000,00',
  '-42', '+7', '(555) 123-4567', '2024-02-29', '12:34:56', '1st 2nd 3rd 4th 21st 100th', 'v1.2.3-rc.4',
  '٠١٢٣٤٥٦٧٨٩ Arabic-Indic digits', '०१२३४५६७८९ Devanagari digits', '１２３ fullwidth digits', '²³¹ superscripts',
  '½ ¼ ¾ ⅓ fractions', 'Ⅰ Ⅱ Ⅻ ⅻ roman numerals', '① ② ③ circled', '𝟘𝟙𝟚 math digits', '〇一二三 Chinese numerals',
  'abc123def456', '123abc', 'a1b2c3', '1 2 3 4 5', '1  2   3', '99 bottles', '3x4=12',
);

add('whitespace',
  '', ' ', '  ', '   ', '\t', '\t\t', '\n', '\n\n', '\n\n\n', '\r\n', '\r\n\r\n', ' \n ', '\n ', ' \n',
  'a b', 'a  b', 'a   b', 'a\tb', 'a\t\tb', 'a \tb', 'a\t b', 'a\nb', 'a\n\nb', 'a \n b', 'a\n \nb',
  'trailing   ', 'trailing\t', 'trailing\n', '   leading', '\tleading', '\nleading', '  both  ',
  'x \u00a0y', 'x\u00a0y', 'x\u00a0\u00a0y', 'x\u3000y', 'x \u3000 y', 'x\u2028y', 'x\u2029y', 'x\u2003y',
  'x\u1680y', 'x\u202fy', 'x\u205fy', 'x\u000by', 'x\u000cy', 'x\u0085y not JS space', 'x\u180ey not JS space',
  'x\u200by zero width space', 'x\u001cy\u001dz\u001ew\u001fv not JS space', '\u00a0', '\u3000\u3000',
  'x \u0085y', 'a\u0085 b', '\u0085\u0085a', 'x \u001cy', 'x \u001fy', 'x \u180ey', 'x \u200by', 'x \ufeffy',
  'x \u00a0\u00a0y', 'x\u00a0 y', 'x \u2028\u2028y', 'x\t\u3000 y',
  // CHAR + "'s" shows the class of CHAR in the ids: after a space, number or
  // letter "'s" stays a contraction; an "other" character swallows the "'".
  ...['\t', '\u000b', '\u000c', '\u001c', '\u001d', '\u001e', '\u001f', '\u0085', '\u00a0', '\u1680', '\u180e',
    '\u2000', '\u200a', '\u200b', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff'].map((c) => `${c}'s`),
  'a  \n  b', 'end with spaces then newline   \n', '    four', '        eight spaces code',
  ' 1', '  1', ' !', '  !', ' é', '  é', '\t1', '\t!',
);

add('accented',
  'café résumé naïve façade jalapeño', 'Ångström Øresund Æsir', 'Straße Größe Fußball', 'Zażółć gęślą jaźń',
  'Tiếng Việt có dấu', 'İstanbul ılık ışık', 'Čeština Ślůžko Ťažký', 'français: où êtes-vous?',
  'e\u0301 decomposed e-acute', 'cafe\u0301', 'n\u0303o', 'A\u030a', 'Ω ω Ω ohm sign', 'ﬁ ﬂ ligatures',
);

add('cjk',
  '你好，世界。', '中华人民共和国成立于1949年。', 'こんにちは世界、カタカナとひらがな。', '東京都渋谷区', '안녕하세요 세계',
  '한국어 텍스트입니다.', '𠀀𠀁𠀂 CJK Extension B', '繁體中文與简体中文', '日本語の文章です。句読点、も含む。',
  'ｈａｌｆｗｉｄｔｈ　ｆｕｌｌｗｉｄｔｈ', 'ｶﾀｶﾅ halfwidth katakana', 'Mixed 中文 and English words',
);

add('emoji',
  '😀', '😀😃😄', 'hello 😀 world', '👍🏽 thumbs up medium skin', '👨‍👩‍👧‍👦 family ZWJ', '👩‍💻 technologist',
  '🏳️‍🌈 rainbow flag', '🏴‍☠️ pirate flag', '🇺🇸🇯🇵🇩🇪 flags', '🇺 lone regional indicator', '1️⃣ #️⃣ keycaps',
  '❤️ red heart with VS16', '☺︎ text presentation', '🧑🏿‍🤝‍🧑🏻 people holding hands', '🤷‍♀️', '🫠🫡🫥 Unicode 14',
  '🩷🫎🪽 Unicode 15', '😀'.repeat(50), '!😀!', 'a😀b', '😀 😀  😀', '🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland tag sequence',
);

add('scripts',
  'Привет, мир! Как дела?', 'Ελληνικά: Γειά σου Κόσμε', 'مرحبا بالعالم', 'שָׁלוֹם עוֹלָם', 'नमस्ते दुनिया',
  'สวัสดีชาวโลก', 'ሰላም ልዑል', 'Բարեւ աշխարհ', 'გამარჯობა', 'ᓀᐦᐃᔭᐍᐏᐣ', 'ᚠᚢᚦᚨᚱᚲ runes', 'ꦲꦏ꧀ꦱꦫ',
  'Hello世界123abc', 'abcабвαβγ', 'Latin+Кириллица+Ελληνικά', 'مرحبا hello שלום', 'தமிழ் மொழி', 'ਪੰਜਾਬੀ',
  'বাংলা ভাষা', 'ಕನ್ನಡ', 'മലയാളം', 'ລາວ', 'ខ្មែរ', 'မြန်မာ', 'བོད་ཡིག', 'ᠮᠣᠩᠭᠣᠯ',
);

add('combining',
  'a\u0300\u0301\u0302\u0303', 'Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319a\u0336\u0331\u0320l\u0337g\u0335o',
  '\u0301 leading combining mark', 'x\u20dd enclosing circle', 'q\u0307\u0323', 'ก\u0e34\u0e48', 'क\u094d\u0937',
);

add('control',
  '\u0000', 'a\u0000b', '\u0001\u0002\u0003', '\u007f', '\u001b[31mred\u001b[0m', 'bell\u0007', 'back\bspace',
  '\u0080\u0081\u009f C1 controls', 'soft\u00adhyphen', 'zero\u200dwidth\u200cjoiners', 'rtl\u200fmark\u200e',
  '\ufeffBOM at start', 'BOM in\ufeffmiddle', '\ufeff', 'private use \ue000\uf8ff', 'noncharacter \ufdd0 \uffff',
  'astral private \u{F0000}', 'replacement \ufffd char',
);

add('special',
  '<|endoftext|>', '<|endoftext|>Hello', 'text<|endoftext|>more text', '<|endoftext|><|endoftext|>', '<|', '|>',
);

add('long',
  'a'.repeat(1000), 'ab'.repeat(700), 'supercalifragilisticexpialidocious'.repeat(30),
  'Pneumonoultramicroscopicsilicovolcanoconiosis', '1234567890'.repeat(200), '!'.repeat(1500), '.-'.repeat(500),
  ' '.repeat(500) + 'word', '\n'.repeat(300) + 'x', 'x' + ' '.repeat(300), '\t'.repeat(200) + 'tab',
  '中'.repeat(400), 'é'.repeat(500), 'ab c'.repeat(400),
);

// Long random words and random mixes over a tricky alphabet.
const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
let w = '';
for (let i = 0; i < 3000; i++) w += letters[rand(letters.length)];
add('long', w);
const alphabet = [
  'a', 'b', 'e', 's', 't', 'r', 'v', 'l', 'm', 'd', 'S', 'T', 'X', "'", "'", ' ', ' ', ' ', '\t', '\n', '\r', '0', '7', '9',
  '.', ',', '!', '?', '"', '-', '_', '(', ')', '[', ']', '{', '}', '/', '\\', '#', '@', '*', 'é', 'ß', 'ñ', '中', '文', 'ア',
  'ж', 'λ', '😀', '👍', '\u200d', '\ufe0f', '\u0301', '\u00a0', '\u3000', '\u2028', '\u0085', '٣', '½', 'Ⅻ', '\u0000',
  '\u001f', '€', '→', '🇺', '🇸',
];
for (let i = 0; i < 120; i++) {
  const len = 1 + rand(40);
  let s = '';
  for (let k = 0; k < len; k++) s += pick(alphabet);
  add('random', s);
}

const out = path.join(here, 'corpus.json');
fs.writeFileSync(out, JSON.stringify(corpus, null, 1) + '\n');
console.log(`${corpus.length} texts -> ${path.relative(process.cwd(), out)}`);
