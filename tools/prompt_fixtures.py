#!/usr/bin/env python3
"""Parity fixtures for src/models/prompt.rs, made by the real Python stack.

For each prompt, Diffusers' own `prompt_clean` (ftfy.fix_text, html.unescape twice, `\\s+`
collapse) gives the cleaned text, and the tokenizer of tests/fixtures/wan_tiny_a (a Diffusers
Wan folder), loaded by transformers and called exactly as `WanPipeline._get_t5_prompt_embeds`
calls it, gives the token ids the encoder sees (attention mask 1: the text's tokens and `</s>`,
before padding).

Writes
    tests/fixtures/prompts/cases.json   hand-picked hard prompts, each named
    tests/fixtures/prompts/fuzz.json    seeded random prompts: mojibake (also CESU-8 and damaged),
                                        entity soup, control and width noise

Run from the repository root with the venv of tools/requirements.txt (offline, seconds):
    .venv/bin/python tools/prompt_fixtures.py
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import html.entities  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import unicodedata  # noqa: E402

import diffusers  # noqa: E402
import ftfy  # noqa: E402
import ftfy.bad_codecs  # noqa: E402,F401
import tokenizers  # noqa: E402
import transformers  # noqa: E402
from diffusers.pipelines.wan.pipeline_wan import prompt_clean  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "prompts"
TOKENIZER_DIR = "tests/fixtures/wan_tiny_a/model/tokenizer"
MAX_LENGTH = 512  # WanPipeline's default max_sequence_length is 512 in __call__
FUZZ_COUNT = 1200
FUZZ_SEED = 20250611

LONG_TEXT = " ".join(
    [
        "A slow cinematic dolly shot through a rain-soaked neon city at night, reflections",
        "shimmering on wet asphalt, a lone cyclist in a yellow raincoat weaving between taxis,",
        "steam rising from manholes, holographic billboards flickering in pink and cyan,",
        "shallow depth of field, anamorphic lens flares, 35mm film grain, moody color grade.",
    ]
    * 3
)

# (name, prompt[, max_length]). Every prompt is something a person can type or paste.
CASES = [
    # --- HTML entities: ftfy's own pass, then html.unescape twice ---
    ("named_entities", "caf&eacute; &amp; cr&egrave;me br&ucirc;l&eacute;e"),
    ("escaped_tags_become_tags", "&lt;b&gt;bold&lt;/b&gt; text"),
    ("numeric_and_hex", "A &#65;&#x42;&#X43; numeric and hex &#x263A;"),
    ("double_escaped", "rain &amp;amp; fog &amp;lt;3"),
    ("quadruple_escaped", "a &amp;amp;amp;amp; b"),
    ("legacy_names_without_semicolon", "fish &amp chips &copy 2024 &not this &lt3 &gtx"),
    ("longest_legacy_prefix", "&notit; &notin; &ampfoo &copyright &nbspx &AMPx"),
    ("invalid_numeric", "&#0; &#x110000; &#128; &#x80; &#150; &#xD800; &#1; &#x7f; &#65535; &#13;"),
    ("astral_references", "&#x1F600; by hex and &#128512; by decimal"),
    ("surrogate_references", "&#xD83D;&#xDE00; halves"),
    ("uppercase_entities", "&EACUTE;COLE &NTILDE; &nTILDE; BUNDESSTRA&SZLIG;E &AMP;"),
    ("malformed_references", "&#12ab; &#xZZ; &#; &; && &#x; &#X1g; &am;"),
    ("leading_zeros", "&#0000000065; leading zeros &#x000041; &#x0;"),
    ("huge_numbers", "&#99999999999999999999; &#xFFFFFFFFFFFF; huge"),
    ("long_entity_name", "&verylongentitynamethatgoesonandonforeverandever; &abcdefghijklmnopqrstuvwx;"),
    ("ampersands_in_text", "AT&T and R&D, Q&A; M&Ms &c. & co"),
    ("url_with_query", "https://example.com/a?b=1&c=2&amp;d=3&lang=en&copy=1"),
    ("entity_whitespace", "&nbsp;&nbsp;x&NewLine;y&Tab;z&ensp;w"),
    ("entity_brackets", "&lang;&rang; &langle; &LeftAngleBracket; &quot;&apos;"),
    ("entity_needing_two_chars", "&NotEqualTilde; &nvlt; &bne; &fjlig;"),
    ("unicode_in_entity_name", "&caf\u00e9; &\u00e9; &x\u3000y;"),
    ("carriage_return_in_name", "&amp\rx &a\rb;"),
    # --- ftfy's "auto" rule: a '<' means HTML, entities kept (for that line and later ones) ---
    ("tags_keep_entities", "<b>bold</b> &amp; &lt;tag&gt;"),
    ("tags_and_deep_escapes", "x < y &amp;amp;amp;amp; z"),
    ("tag_on_second_line", "a &amp;amp;amp;amp; b\n<p> &amp;amp;amp;amp; c\nd &amp;amp;amp;amp; e"),
    ("special_token_text", "a cat </s> <pad> <extra_id_0> <unk> dog"),
    # --- quotes, ligatures, widths ---
    ("curly_quotes", "\u201cSmart\u201d \u2018quotes\u2019 \u201alow\u2018 \u201edouble low\u201c \u201breversed\u201f \u02bcapostrophe"),
    ("ligatures", "\ufb01ne \ufb02owers, e\ufb00ort, o\ufb03ce, ba\ufb04e, \ufb05 \ufb06, \u0132ssel \u0133, \u01c5 \u01c8 \u01cb \u0149"),
    ("fullwidth", "\uff26\uff35\uff2c\uff2c\uff37\uff29\uff24\uff34\uff28\u3000\uff54\uff45\uff58\uff54\u3000\uff11\uff12\uff13\uff01"),
    ("halfwidth_katakana", "\uff76\uff80\uff76\uff85 \uff73\uff9e \uff8a\uff9f\uff9d"),
    ("fullwidth_macron", "x\uffe3y \uffe0 \uffe5 \uffe6"),
    # --- scripts and emoji ---
    ("chinese", "\u4e00\u53ea\u732b\u5728\u96e8\u4e2d\u7684\u4e1c\u4eac\u8857\u5934\u6f2b\u6b65\uff0c\u7535\u5f71\u8d28\u611f"),
    ("japanese", "\u732b\u304c\u96e8\u306e\u4e2d\u3092\u6b69\u304f\u3001\u30b7\u30cd\u30de\u30c6\u30a3\u30c3\u30af"),
    ("korean", "\ube44 \uc624\ub294 \ubc24 \uac70\ub9ac\ub97c \uac77\ub294 \uace0\uc591\uc774"),
    ("arabic_with_marks", "\u0642\u0637\u0629 \u062a\u0645\u0634\u064a \u0641\u064a \u0627\u0644\u0645\u0637\u0631\u200f \u0661\u0662\u0663"),
    ("devanagari", "\u092c\u093f\u0932\u094d\u0932\u0940 \u092c\u093e\u0930\u093f\u0936 \u092e\u0947\u0902 \u091a\u0932\u0924\u0940 \u0939\u0948"),
    ("thai", "\u0e41\u0e21\u0e27\u0e40\u0e14\u0e34\u0e19\u0e43\u0e19\u0e2a\u0e32\u0e22\u0e1d\u0e19"),
    ("russian_greek", "\u041a\u043e\u0448\u043a\u0430 \u0438\u0434\u0451\u0442 \u043f\u043e\u0434 \u0434\u043e\u0436\u0434\u0451\u043c, \u03b3\u03ac\u03c4\u03b1 \u03c3\u03c4\u03b7 \u03b2\u03c1\u03bf\u03c7\u03ae"),
    ("emoji_zwj", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family, \U0001f3f3\ufe0f\u200d\U0001f308 flag, \U0001f44d\U0001f3fd, \U0001f1ef\U0001f1f5"),
    ("emoji_tag_sequence", "\U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f Wales"),
    ("variation_selectors", "\u2764\ufe0f heart \u263a\ufe0e text \u5208\U000e0100 ivs"),
    ("newer_emoji", "\U0001fae8 shaking face \U0001fabf goose \U0001f426\u200d\U0001f525 phoenix"),
    # --- normalization ---
    ("nfd_accents", "Cafe\u0301 cre\u0300me bru\u0302le\u0301e na\u0308ive"),
    ("combining_order", "A\u030a\u0301 q\u0307\u0323 e\u0323\u0302 x\u0334\u0301\u0316"),
    ("hangul_jamo", "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af"),
    ("singleton_decompositions", "\u212b \u2126 \u212a \u2000 \u1fef \u0344"),
    ("composition_exclusions", "\u0958 \u2adc \U0001d15e \u0f43"),
    ("mark_unassigned_in_python", "e\U00010d69\u0323 o\U00011f41\u0301"),
    # --- control characters and terminal escapes ---
    ("ascii_controls", "bell\x07 null\x00 del\x7f vt\x0b ff\x0c so\x0e us\x1f"),
    ("format_characters", "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060word\u00adsoft"),
    ("deprecated_and_annotation", "\u206a deprecated\u206f \ufff9annot\ufffaated\ufffb \ufffc obj \ufffd rep"),
    ("bidi_controls", "\u202eRTL override\u202c \u2066isolate\u2069 \u200e\u200f"),
    ("c1_controls", "\x80 euro \x85 nel \x91quoted\x92 \x9d odd"),
    ("c1_among_wide_text", "\u4e2d\x80\u6587 \x96 dash \x81"),
    ("ansi_escapes", "\x1b[31mred\x1b[0m \x1b[1;32mbold green\x1b[m \x1b[38;5;208morange\x1b[0m"),
    ("ansi_unicode_digits", "\x1b[\u0663\u0661mx\x1b[\uff11my \x1b[12"),
    ("osc_escape", "\x1b]0;title\x07 OSC \x1b(B"),
    # --- whitespace ---
    ("tabs_newlines", "tabs\tand\nnewlines\r\nand\rcarriage\r\r\n\n"),
    ("unicode_line_breaks", "line\u2028sep\u2029para\u0085nel\x0cff"),
    ("unicode_spaces", "nbsp\u00a0here\u2007figure\u202fnarrow\u3000ideo\u1680ogham\u205fmath\u2002en"),
    ("separator_controls", "\x1c\x1d\x1e\x1f file group record unit \x1cx"),
    ("leading_trailing", "   leading and trailing   "),
    ("empty", ""),
    ("only_spaces", "     "),
    ("only_whitespace_kinds", "\t\n\r \u3000\u00a0\u2028\x0b\x0c\u205f"),
    ("many_spaces", "multiple     spaces    between \t\t  words"),
    ("zero_width_space_not_space", "a\u200bb \u200b c\u180ed"),
    # --- mojibake (ftfy's fix_encoding) ---
    ("mojibake_latin1", "caf\u00c3\u00a9 cr\u00c3\u00a8me br\u00c3\u00bbl\u00c3\u00a9e"),
    ("mojibake_windows1252_quotes", "\u00e2\u20ac\u0153quoted\u00e2\u20ac\x9d and it\u00e2\u20ac\u2122s"),
    ("mojibake_a_grave_space", "\u00c3 la mode, \u00c3  la carte, \u00c3 s vezes"),
    ("mojibake_lost_a0", "voil\u00c3 le travail"),
    ("mojibake_lossy", "\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd"),
    ("mojibake_windows1251", "\u0420\u045f\u0421\u0402\u0420\u0451\u0420\u0406\u0420\u00b5\u0421\u201a"),
    ("mojibake_cyrillic_as_1252", "\u00d0\u0178\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a \u00d0\u00bc\u00d0\u00b8\u00d1\u20ac"),
    ("mojibake_twice", "The Mona Lisa doesn\u00c3\u00a2\u00e2\u201a\u00ac\u00e2\u201e\u00a2t have eyebrows."),
    ("mojibake_emoji", "\u00f0\u0178\u02dc\u20ac smile"),
    ("mojibake_cesu8", "a \u00ed\u00a0\u00bd\u00ed\u00b8\u20ac b"),
    ("mojibake_java_null", "abc\u00c0\u20acdef \u00c3\u00a9"),
    ("mojibake_inconsistent", "s\u00c3\u00b3 but also na\u00efve caf\u00e9 \u2014 \u00e2\u20ac\u201c dash"),
    ("mojibake_macroman", "caf\u221a\u00a9 cr\u221a\u00aeme"),
    ("mojibake_cp437", "caf\u251c\u2310 na\u251c\u00bbve"),
    ("mojibake_greek", "\u00ce\u00b1\u00ce\u00b2\u00ce\u00b3 \u00ce\u0153\u00ce\u00ad\u00cf\u0192\u00ce\u00bf"),
    ("legit_symbols", "25\u00b0C \u00b1 2, \u00bd price \u00bc, 5\u00d7\u00b2, \u00a35 \u20ac10 \u00a5100 \u00a7 \u00b6"),
    ("legit_spanish", "\u00d1and\u00fa \u00bfqu\u00e9? \u00a1Ol\u00e9! \u00ab\u00e7a va\u00bb"),
    ("c1_undefined_in_1252", "\x81\x8d\x8f\x90\x9d undefined"),
    ("kaomoji", "(\u256f\u00b0\u25a1\u00b0)\u256f\ufe35 \u253b\u2501\u253b \u00af\\_(\u30c4)_/\u00af"),
    # --- punctuation, digits, odd text ---
    ("punctuation_digits", "1920x1080, 24fps, f/1.8 \u2014 50% off!!! ??? \u2026 \u00b7 \u2022"),
    ("backslashes", 'He said "hi" \\n not a newline \\t \\u00e9 \\x41'),
    ("unknown_to_tokenizer", "\u03a9 \u00fc \u00df \u00f8 \u2603 \U0001d54f"),
    # --- truncation ---
    ("long_truncated_at_512", LONG_TEXT),
    ("long_truncated_at_8", LONG_TEXT, 8),
    ("short_at_8", "a small red cat", 8),
    ("only_eos_at_1", "a small red cat", 1),
    ("empty_at_8", "", 8),
]


def pipeline_ids(tokenizer, cleaned: str, max_length: int) -> list:
    """`_get_t5_prompt_embeds`' tokenizer call; the ids under attention mask 1."""
    enc = tokenizer(
        [cleaned],
        padding="max_length",
        max_length=max_length,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    return enc.input_ids[0][enc.attention_mask[0].bool()].tolist()


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def boundary_cases(tokenizer) -> list:
    """Prompts whose tokens with `</s>` are exactly 8, and one word more: the edge of truncation."""
    words = "a small red cat walks over the wet street at night under neon".split()
    for n in range(1, len(words)):
        text = " ".join(words[:n])
        if len(tokenizer(text).input_ids) == 8:
            longer = " ".join(words[: n + 1])
            return [("exactly_fits_8", text, 8), ("one_word_past_8", longer, 8)]
    sys.exit("no prefix has exactly 8 tokens; pick other words")


def record(name: str, prompt: str, max_length: int, tokenizer) -> dict:
    cleaned = prompt_clean(prompt)
    case = {"name": name, "prompt": prompt, "ftfy": ftfy.fix_text(prompt), "cleaned": cleaned}
    if tokenizer is not None:
        case["max_length"] = max_length
        case["ids"] = pipeline_ids(tokenizer, cleaned, max_length)
    return case


# ---------------------------------------------------------------------------------------------
# Fuzz: random text, much of it mojibake, to cover ftfy's heuristics beyond the named cases
# ---------------------------------------------------------------------------------------------

NATURAL = (
    "abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 .,;:!?'\"-()"
    "\u00e0\u00e1\u00e2\u00e3\u00e4\u00e5\u00e6\u00e7\u00e8\u00e9\u00ea\u00eb\u00ec\u00ed\u00ee\u00ef"
    "\u00f0\u00f1\u00f2\u00f3\u00f4\u00f5\u00f6\u00f8\u00f9\u00fa\u00fb\u00fc\u00fd\u00ff\u00c0\u00c9\u00d1\u00d6\u00dc\u00df"
    "\u0105\u0107\u0119\u0142\u0144\u015b\u017a\u017c\u010d\u0161\u017e\u0159\u011b\u016f\u0151\u0171"
    "\u0430\u0431\u0432\u0433\u0434\u0435\u0436\u0437\u0438\u043a\u043b\u043c\u043d\u043e\u043f\u0440\u0441\u0442\u0443\u0444\u044f\u0451\u0410\u0411\u041f"
    "\u03b1\u03b2\u03b3\u03b4\u03b5\u03ac\u03ad\u03ae\u03af\u03cc\u03c9\u0391\u0394\u03a9"
    "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u2022\u20ac\u2122\u00a9\u00ae\u00b0\u00b1\u00bd\u00a0"
    "\u4e00\u732b\u96e8\u3042\u30ab\ud55c\u0627\u0644\u05d0\u0e01"
    "\U0001f600\U0001f431\U0001f308\u2764\ufe0f\u200d"
)
NOISE = (
    "&#;<>amplt\x00\x07\x1b[m\x0b\x0c\t\n\r\x1c\x85\x80\x81\x8d\x9d\x96\x1a?\u2028\u3000\ufeff\ufffd"
    "\ufb01\uff21\uff41\uff71\uff9e\u0301\u0323\u0308\u00c2\u00c3\u00ce\u00d0\u00d8\u00d9\u00e2\u00f0\u00ed\u00c0"
    "\u20ac\u0153\u0160\u0161\u00a2\u00a3\u0178\u017e\u00ad\u00b7\u00bb\u00ab\u00bf\u00a1\u00b2\u00b3\u00d7"
    "\u221a\u2248\u201a\u00c4\u0432\u0402\u0412\u0413\u0420\u0421\u045e\u03b2\u0386\u0392\u0393\u039e\u039f\u0101"
    "\u2550\u2551\u2554\u2557\u2500\u2502\u2580\u2584\u2588\u2591\u00ba\u00aa\u00a4\u00a6\u00a8\u00ac\u00af\u00b8"
    "\u0192\u02c6\u02c7\u02d8\u02db\u02dc\u2020\u2021\u2030\u2310\u25ca\uf8ff\u00b4\u00b5\u00b6\u00a7\u2039\u203a"
)
ENTITY_BITS = ["&amp;", "&lt;", "&gt", "&eacute;", "&EACUTE;", "&#x41;", "&#65", "&#0;", "&not", "&nbsp;",
               "&amp;amp;", "&#x1F600;", "&#128;", "&quot", "&copy;", "&fjlig;", "&NotEqualTilde;"]
SINGLE_BYTE = ["latin-1", "sloppy-windows-1252", "sloppy-windows-1251", "sloppy-windows-1250",
               "sloppy-windows-1253", "sloppy-windows-1254", "sloppy-windows-1257", "iso-8859-2",
               "macroman", "cp437", "windows-1252", "windows-1251"]


def natural_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(NATURAL) for _ in range(n))


def mojibake(rng: random.Random) -> str:
    text = natural_text(rng, rng.randint(1, 24))
    encoding = rng.choice(SINGLE_BYTE)
    broken = text.encode("utf-8").decode(encoding, errors="replace")
    if rng.random() < 0.3:
        broken = broken.replace("\u00a0", " ")
    if rng.random() < 0.2 and len(broken) > 2:
        i = rng.randrange(len(broken))
        broken = broken[:i] + rng.choice(["?", "\ufffd", " "]) + broken[i + 1 :]
    if rng.random() < 0.2:
        broken = broken.encode("utf-8").decode(rng.choice(SINGLE_BYTE), errors="replace")
    if rng.random() < 0.5:
        broken = natural_text(rng, rng.randint(0, 12)) + broken + natural_text(rng, rng.randint(0, 12))
    return broken


def noisy(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 30)):
        r = rng.random()
        if r < 0.45:
            parts.append(rng.choice(NOISE))
        elif r < 0.8:
            parts.append(rng.choice(NATURAL))
        else:
            parts.append(rng.choice(ENTITY_BITS))
    return "".join(parts)


def cesu8(text: str) -> bytes:
    """UTF-8, except astral characters as CESU-8 surrogate pairs and U+0000 as Java's C0 80."""
    out = bytearray()
    for ch in text:
        cp = ord(ch)
        if cp >= 0x10000:
            v = cp - 0x10000
            for unit in (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)):
                out += bytes([0xE0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3F), 0x80 | (unit & 0x3F)])
        elif cp == 0:
            out += b"\xc0\x80"
        else:
            out += ch.encode("utf-8")
    return bytes(out)


def cesu8_mojibake(rng: random.Random) -> str:
    """ftfy's utf-8-variants codec paths, with damaged bytes and trailing newlines."""
    alphabet = "ab \u00e9\u20ac\U0001f600\U0001f431\x00\u00f1\ud55c\n \u2013\u201c\u2026\u00a0"
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
    raw = cesu8(text)
    r = rng.random()
    if r < 0.2:
        i = rng.randrange(len(raw))
        raw = raw[:i] + raw[i + 1 :]
    elif r < 0.35:
        raw += b"\n"
    elif r < 0.45:
        i = rng.randrange(len(raw))
        inserted = rng.choice([0xED, 0xC0, 0x80, 0xA0, 0x20, 0x0A, 0x1A, 0x3F])
        raw = raw[:i] + bytes([inserted]) + raw[i:]
    broken = raw.decode(rng.choice(SINGLE_BYTE[:10]), errors="replace")
    if rng.random() < 0.3:
        broken = broken.replace("\u00a0", " ")
    return "x" + broken + "\n" + broken if rng.random() < 0.3 else broken


def entity_soup(rng: random.Random) -> str:
    """Named (cut, upper-cased, extended) and numeric references among their delimiters."""
    names = list(html.entities.html5)
    bits = ["&", "#", "x", ";", " ", "<", "\t", "\n", "\x0c", "\r", "0", "9", "a", "F", "\u00e9",
            "\u3000", "\x85", "amp", "&#x", "&amp;"]
    parts = []
    for _ in range(rng.randint(1, 10)):
        r = rng.random()
        if r < 0.3:
            name = rng.choice(names)
            if rng.random() < 0.3:
                name = name.upper()
            if rng.random() < 0.3:
                name = name[: rng.randint(1, len(name))] + rng.choice(["", "x", "1", ";", "\u00e9"])
            parts.append("&" + "amp;" * rng.choice([0, 0, 1, 3]) + name)
        elif r < 0.5:
            num = rng.choice([0, 1, 13, 65, 127, 128, 133, 159, 0xD800, 0xFFFE, 0x10FFFF, 0x110000, 0x1F600,
                              rng.randint(0, 0x120000), 10 ** rng.randint(5, 40)])
            digits = str(num) if rng.random() < 0.5 else rng.choice("xX") + format(num, rng.choice("xX"))
            parts.append("&#" + digits + rng.choice([";", "", "g", " "]))
        else:
            parts.append(rng.choice(bits))
    return "".join(parts)


def fuzz_prompts(count: int, seed: int) -> list:
    rng = random.Random(seed)
    makers = [mojibake] * 8 + [noisy] * 5 + [cesu8_mojibake] * 3 + [entity_soup] * 4
    prompts = []
    while len(prompts) < count:
        prompt = rng.choice(makers)(rng)
        if not any(0xD800 <= ord(c) <= 0xDFFF for c in prompt):
            prompts.append(prompt)
    return prompts


# Lines longer than max_decode_length (1,000,000 characters) are fixed in pieces: mojibake cut by
# the boundary stays. (fill, count, tail): prompt = fill * count + tail.
LONG_SEGMENTS = [
    ("cut_mojibake", "x", 999_996, "caf\u00c3\u00a9"),
    ("whole_mojibake", "x", 999_995, "caf\u00c3\u00a9"),
    ("cut_entity", "y", 999_990, " a &amp;amp;amp;amp; b"),
]


def long_segment_cases() -> list:
    cases = []
    for name, fill, count, tail in LONG_SEGMENTS:
        cleaned = prompt_clean(fill * count + tail)
        kept = len(cleaned) - len(cleaned.lstrip(fill))
        cases.append({"name": name, "fill": fill, "count": count, "tail": tail,
                      "cleaned_count": kept, "cleaned_tail": cleaned[kept:]})
    assert cases[0]["cleaned_tail"] != cases[1]["cleaned_tail"], "the cut no longer matters"
    return cases


def versions() -> dict:
    return {
        "python": sys.version.split()[0],
        "unicodedata": unicodedata.unidata_version,
        "ftfy": ftfy.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


# Characters written as themselves in the JSON: letters, digits, punctuation, symbols (emoji
# included). Everything else (controls, format characters such as ZWJ and bidi overrides,
# combining marks, unusual spaces) is escaped, so nothing invisible hides in the files.
VISIBLE = ("L", "N", "P", "S")


def escape_invisible(text: str) -> str:
    out = []
    for c in text:
        if c.isascii() or unicodedata.category(c).startswith(VISIBLE):
            out.append(c)
        else:
            out.append(json.dumps(c))  # "\uXXXX" (a surrogate pair past U+FFFF), quoted
            out[-1] = out[-1][1:-1]
    return "".join(out)


def write(path: pathlib.Path, header: dict, cases: list) -> None:
    """JSON with one case a line."""
    head = json.dumps(header, ensure_ascii=True, indent=1)[:-2]
    rows = ",\n".join(escape_invisible(json.dumps(c, ensure_ascii=False)) for c in cases)
    path.write_text(f'{head},\n "cases": [\n{rows}\n ]\n}}\n', encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8"))["cases"] == cases
    print(f"wrote {path.relative_to(ROOT)} ({len(cases)} cases)")


def main():
    if ftfy.__version__ != "6.3.1":
        sys.exit(f"ftfy {ftfy.__version__}: the fixtures are defined against ftfy 6.3.1")
    tokenizer_json = ROOT / TOKENIZER_DIR / "tokenizer.json"
    tokenizer = None
    header = {"generated_by": "tools/prompt_fixtures.py", "versions": versions()}
    if tokenizer_json.is_file():
        tokenizer = AutoTokenizer.from_pretrained(ROOT / TOKENIZER_DIR)
        data = tokenizer_json.read_bytes()
        header["tokenizer"] = {
            "path": f"{TOKENIZER_DIR}/tokenizer.json",
            "class": type(tokenizer).__name__,
            "bytes": len(data),
            "fnv1a64": fnv1a64(data),
        }
    else:
        print(f"warning: {tokenizer_json} missing, writing no token ids", file=sys.stderr)

    named = list(CASES) + (boundary_cases(tokenizer) if tokenizer else [])
    assert len({c[0] for c in named}) == len(named), "duplicate case names"
    cases = [record(c[0], c[1], c[2] if len(c) > 2 else MAX_LENGTH, tokenizer) for c in named]
    if tokenizer:
        long_ids = len(tokenizer(LONG_TEXT).input_ids)
        assert long_ids > MAX_LENGTH, f"the long prompt has only {long_ids} tokens"
    OUT.mkdir(parents=True, exist_ok=True)
    write(OUT / "cases.json", {**header, "long_segments": long_segment_cases()}, cases)

    fuzz = [record(f"fuzz_{i}", p, MAX_LENGTH, tokenizer) for i, p in enumerate(fuzz_prompts(FUZZ_COUNT, FUZZ_SEED))]
    changed = sum(c["ftfy"] != c["prompt"] for c in fuzz)
    print(f"fuzz: ftfy changed {changed} of {len(fuzz)}")
    write(OUT / "fuzz.json", {**header, "seed": FUZZ_SEED}, fuzz)


if __name__ == "__main__":
    main()
