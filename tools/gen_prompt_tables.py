#!/usr/bin/env python3
"""Generate src/models/prompt_tables.rs: the data behind src/models/prompt.rs.

Diffusers' WanPipeline cleans every prompt with ftfy.fix_text, html.unescape (twice) and
Python's `\\s+` collapse. The Rust port needs the facts those libraries carry as data; this script
reads them from the very modules the pipeline runs (the venv of tools/requirements.txt), so the
tables are exactly what Python uses, not a transcription:

    html.entities.html5, html._invalid_charrefs, html._invalid_codepoints   (html.unescape)
    ftfy.chardata.HTML_ENTITIES, LIGATURES, WIDTH_MAP, CONTROL_CHARS         (ftfy fixers)
    ftfy.chardata.CHARMAP_ENCODINGS + Python's / ftfy's codecs               (mojibake repair)
    ftfy.badness.MOJIBAKE_CATEGORIES, ftfy.chardata.UTF8_CLUES               (mojibake detection)
    Python's re `\\s`, `\\w`, `\\d` and unicodedata's unassigned code points (Unicode 14.0)

Set membership is computed by running each character class through Python's own `re`, the way
ftfy compiles them, over every code point. Run from the repository root:

    .venv/bin/python tools/gen_prompt_tables.py

then `rustfmt --edition 2021 src/models/prompt_tables.rs`.
"""

import codecs
import html
import html.entities
import pathlib
import re
import sys
import unicodedata

import ftfy
import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-* and utf-8-variants codecs)
from ftfy import badness, chardata

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "models" / "prompt_tables.rs"

# Every scalar value, as one string, so a character class can be evaluated with one finditer.
ALL_CHARS = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)

# Bit names for ftfy.badness.MOJIBAKE_CATEGORIES, in the order the Rust side names them.
CATEGORY_NAMES = [
    "common", "c1", "bad", "law", "currency", "start_punctuation", "end_punctuation", "numeric",
    "kaomoji", "upper_accented", "lower_accented", "upper_common", "lower_common", "box",
]
CLUE_NAMES = [
    "utf8_first_of_2", "utf8_first_of_3", "utf8_first_of_4", "utf8_continuation",
    "utf8_continuation_strict",
]


def rust_char(c: str) -> str:
    cp = ord(c)
    if c == "'":
        return "'\\''"
    if c == "\\":
        return "'\\\\'"
    if 0x20 <= cp < 0x7F:
        return f"'{c}'"
    return f"'\\u{{{cp:x}}}'"


def rust_str(s: str) -> str:
    out = []
    for c in s:
        cp = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif 0x20 <= cp < 0x7F:
            out.append(c)
        else:
            out.append(f"\\u{{{cp:x}}}")
    return '"' + "".join(out) + '"'


def ranges(codepoints) -> list:
    """Sorted inclusive (first, last) runs of a set of code points."""
    runs = []
    for cp in sorted(codepoints):
        if runs and runs[-1][1] == cp - 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    return runs


def members(pattern: str, flags: int = 0) -> set:
    """Every code point the Python regex `pattern` (one character wide) matches."""
    return {ord(m.group(0)) for m in re.finditer(pattern, ALL_CHARS, flags)}


def by_utf8(pairs):
    return sorted(pairs, key=lambda kv: kv[0].encode("utf-8"))


class Writer:
    def __init__(self):
        self.parts = []

    def line(self, text=""):
        self.parts.append(text + "\n")

    def doc(self, text):
        for row in text.strip().splitlines():
            self.line(f"/// {row}".rstrip())

    def str_pairs(self, name, doc, pairs):
        self.doc(doc)
        self.line(f"pub(crate) static {name}: &[(&str, &str)] = &[")
        for k, v in pairs:
            self.line(f"    ({rust_str(k)}, {rust_str(v)}),")
        self.line("];")
        self.line()

    def char_pairs(self, name, doc, pairs):
        self.doc(doc)
        self.line(f"pub(crate) static {name}: &[(char, &str)] = &[")
        for k, v in sorted(pairs):
            self.line(f"    ({rust_char(k)}, {rust_str(v)}),")
        self.line("];")
        self.line()

    def range_table(self, name, doc, codepoints):
        self.doc(doc)
        self.line(f"pub(crate) static {name}: &[(u32, u32)] = &[")
        for a, b in ranges(codepoints):
            self.line(f"    (0x{a:04X}, 0x{b:04X}),")
        self.line("];")
        self.line()

    def masks(self, name, doc, int_type, masks):
        self.doc(doc)
        self.line(f"pub(crate) static {name}: &[(char, {int_type})] = &[")
        for cp in sorted(masks):
            self.line(f"    ({rust_char(chr(cp))}, 0b{masks[cp]:b}),")
        self.line("];")
        self.line()

    def text(self):
        return "".join(self.parts)


def html_tables(w: Writer):
    w.str_pairs(
        "HTML5_ENTITIES",
        "`html.entities.html5`: entity names (with their `;` where the name has one; the legacy\n"
        "names also appear without it) and what they stand for. Sorted by name for binary search.",
        by_utf8(html.entities.html5.items()),
    )
    charrefs = html._invalid_charrefs
    assert all(len(v) == 1 for v in charrefs.values())
    w.doc("`html._invalid_charrefs`: numeric references HTML5 maps to another character.")
    w.line("pub(crate) static INVALID_CHARREFS: &[(u32, char)] = &[")
    for k in sorted(charrefs):
        w.line(f"    (0x{k:X}, {rust_char(charrefs[k])}),")
    w.line("];")
    w.line()
    w.doc("`html._invalid_codepoints`: numeric references html.unescape drops entirely.")
    w.line("pub(crate) static INVALID_CODEPOINTS: &[u32] = &[")
    for k in sorted(html._invalid_codepoints):
        w.line(f"    0x{k:X},")
    w.line("];")
    w.line()


def ftfy_fixer_tables(w: Writer):
    entities = chardata.HTML_ENTITIES
    assert all(k.startswith("&") and k.endswith(";") for k in entities)
    w.str_pairs(
        "FTFY_ENTITIES",
        "`ftfy.chardata.HTML_ENTITIES`: the whole `&name;` text ftfy's unescape_html replaces (HTML5\n"
        "names ending in `;`, plus the upper-cased forms ftfy also accepts). Sorted for binary search.",
        by_utf8(entities.items()),
    )
    w.char_pairs(
        "LIGATURES",
        "`ftfy.chardata.LIGATURES` (fix_latin_ligatures), sorted by character.",
        [(chr(k), v) for k, v in chardata.LIGATURES.items()],
    )
    w.char_pairs(
        "WIDTH_MAP",
        "`ftfy.chardata.WIDTH_MAP` (fix_character_width), sorted by character.",
        [(chr(k), v) for k, v in chardata.WIDTH_MAP.items()],
    )
    assert all(v is None for v in chardata.CONTROL_CHARS.values())
    w.range_table(
        "CONTROL_CHARS",
        "`ftfy.chardata.CONTROL_CHARS`: what remove_control_chars deletes (inclusive ranges).",
        chardata.CONTROL_CHARS.keys(),
    )


def python_unicode_tables(w: Writer):
    space = members(r"\s")
    assert space == {ord(c) for c in ALL_CHARS if c.isspace()}, "re's \\s and str.isspace differ"
    w.range_table(
        "PY_WHITESPACE",
        "Python's `\\s` for str patterns, which is also what `str.strip()` removes (`str.isspace`).\n"
        "Unlike Rust's `char::is_whitespace` it includes U+001C..U+001F.",
        space,
    )
    w.range_table(
        "PY_DECIMAL",
        "Python's `\\d` for str patterns (Unicode decimal digits), used by ftfy's ANSI escape regex.",
        members(r"\d"),
    )
    w.range_table(
        "PY_WORD",
        "Python's `\\w` for str patterns (alphanumeric in Python's sense, or `_`), used by one of\n"
        "ftfy's mojibake patterns.",
        members(r"\w"),
    )
    unassigned = {ord(c) for c in ALL_CHARS if unicodedata.category(c) == "Cn"}
    w.range_table(
        "PY_UNASSIGNED",
        f"Code points unassigned in Python's Unicode {unicodedata.unidata_version} (category Cn). Python's\n"
        "NFC treats them as plain starters; the Rust normalizer knows newer Unicode, so they are kept\n"
        "out of its reach.",
        unassigned,
    )


def charmap_tables(w: Writer):
    w.doc(
        "One single-byte encoding of `ftfy.chardata.CHARMAP_ENCODINGS`, in ftfy's order: what bytes\n"
        "0x80..=0xFF decode to, and what byte 0x1A decodes to (U+FFFD in ftfy's sloppy codecs)."
    )
    w.line("pub(crate) struct Charmap {")
    w.line("    pub name: &'static str,")
    w.line("    pub high: [char; 128],")
    w.line("    pub byte_1a: char,")
    w.line("}")
    w.line()
    w.line(f"pub(crate) static CHARMAPS: [Charmap; {len(chardata.CHARMAP_ENCODINGS)}] = [")
    for enc in chardata.CHARMAP_ENCODINGS:
        low = bytes(range(0x80)).decode(enc)
        for b, c in enumerate(low):
            assert b == 0x1A or ord(c) == b, (enc, b)
        high = bytes(range(0x80, 0x100)).decode(enc)
        byte_1a = bytes([0x1A]).decode(enc)
        table = high + byte_1a
        assert all(ord(c) >= 0x80 or c == "\x1a" for c in table), enc
        assert len(set(table)) == len(table), f"{enc} decodes two bytes to one character"
        # The encoder must be the inverse of the decoder, as the Rust side assumes.
        assert table.encode(enc) == bytes(range(0x80, 0x100)) + b"\x1a", enc
        w.line("    Charmap {")
        w.line(f"        name: {rust_str(enc)},")
        w.line("        high: [" + ", ".join(rust_char(c) for c in high) + "],")
        w.line(f"        byte_1a: {rust_char(byte_1a)},")
        w.line("    },")
    w.line("];")
    w.line()
    sloppy_1252 = chardata.CHARMAP_ENCODINGS.index("sloppy-windows-1252")
    w.doc("ftfy's sloppy Windows-1252, which fix_c1_controls reads C1 controls with.")
    w.line(f"pub(crate) static SLOPPY_WINDOWS_1252: &Charmap = &CHARMAPS[{sloppy_1252}];")
    w.line()
    strict = []
    for b in range(0x80, 0x100):
        try:
            strict.append(rust_char(bytes([b]).decode("windows-1252")))
        except UnicodeDecodeError:
            strict.append("'\\0'")
    w.doc(
        "Python's strict `windows-1252` codec for bytes 0x80..=0xFF; '\\0' marks the five bytes it\n"
        "refuses (0x81, 0x8D, 0x8F, 0x90, 0x9D)."
    )
    w.line("pub(crate) static WINDOWS_1252_STRICT: [char; 128] = [" + ", ".join(strict) + "];")
    w.line()


def mojibake_class_tables(w: Writer):
    w.doc("Bits of `MOJIBAKE_CATEGORIES` (ftfy.badness), one per category.")
    w.line("pub(crate) mod category {")
    for i, name in enumerate(CATEGORY_NAMES):
        w.line(f"    pub const {name.upper()}: u16 = 1 << {i};")
    w.line("}")
    w.line()
    assert set(CATEGORY_NAMES) == set(badness.MOJIBAKE_CATEGORIES)
    masks = {}
    for i, name in enumerate(CATEGORY_NAMES):
        for cp in members("[" + badness.MOJIBAKE_CATEGORIES[name] + "]", re.VERBOSE):
            masks[cp] = masks.get(cp, 0) | (1 << i)
    w.masks(
        "MOJIBAKE_CATEGORIES",
        "Every character of ftfy.badness.MOJIBAKE_CATEGORIES with the categories it is in.",
        "u16",
        masks,
    )
    w.doc("Bits of `UTF8_CLUES` (ftfy.chardata), one per clue.")
    w.line("pub(crate) mod clue {")
    for i, name in enumerate(CLUE_NAMES):
        w.line(f"    pub const {name.removeprefix('utf8_').upper()}: u8 = 1 << {i};")
    w.line("}")
    w.line()
    assert set(CLUE_NAMES) == set(chardata.UTF8_CLUES)
    clues = {}
    for i, name in enumerate(CLUE_NAMES):
        for cp in members("[" + chardata.UTF8_CLUES[name] + "]", re.VERBOSE):
            clues[cp] = clues.get(cp, 0) | (1 << i)
    w.masks(
        "UTF8_CLUES",
        "Every character of ftfy.chardata.UTF8_CLUES with the clues it is in.",
        "u8",
        clues,
    )


def main():
    if ftfy.__version__ != "6.3.1":
        sys.exit(f"ftfy {ftfy.__version__}: the Rust port follows ftfy 6.3.1")
    w = Writer()
    w.line("//! GENERATED by tools/gen_prompt_tables.py: do not edit by hand.")
    w.line("//!")
    w.line(
        f"//! Read from Python {sys.version.split()[0]} (unicodedata {unicodedata.unidata_version}) "
        f"and ftfy {ftfy.__version__}: the data"
    )
    w.line("//! src/models/prompt.rs needs to clean prompts exactly as Diffusers' WanPipeline does.")
    w.line("//! Sorted tables are searched with binary search.")
    w.line()
    html_tables(w)
    ftfy_fixer_tables(w)
    python_unicode_tables(w)
    charmap_tables(w)
    mojibake_class_tables(w)
    OUT.write_text(w.text())
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    codecs.lookup("sloppy-windows-1252")  # fail early if ftfy's codecs are missing
    main()
