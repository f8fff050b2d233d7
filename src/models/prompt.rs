//! Prompt cleaning and tokenization, exactly as Diffusers' `WanPipeline` does them.
//!
//! Diffusers' `prompt_clean` (pipelines/wan/pipeline_wan.py) runs `ftfy.fix_text`, then
//! `html.unescape` twice, strips, and collapses `\s+` to one space; `_get_t5_prompt_embeds` then
//! tokenizes with the fast T5 tokenizer (`</s>` appended, truncation at `max_sequence_length`).
//! Everything here reproduces ftfy 6.3.1 and Python 3.11 to the character, tables included
//! (`prompt_tables.rs`, generated from the Python modules themselves). docs/prompts.md lists
//! what is reproduced and the few inputs that differ.

use std::path::{Path, PathBuf};

use candle_core::{Error, Result};
use tokenizers::{PostProcessor, Tokenizer, TruncationDirection};

// Generated data (tools/gen_prompt_tables.py); declared here so src/models/mod.rs needs one line.
#[path = "prompt_tables.rs"]
mod tables;

/// Diffusers' `prompt_clean`: `whitespace_clean(basic_clean(text))`.
pub fn clean_prompt(text: &str) -> String {
    let fixed = ftfy_fix_text(text);
    let unescaped = html_unescape(&html_unescape(&fixed));
    collapse_whitespace(python::strip(&unescaped))
}

/// `ftfy.fix_text(text)` with ftfy 6.3.1's default configuration.
pub fn ftfy_fix_text(text: &str) -> String {
    ftfy::fix_text(text)
}

/// Python's `html.unescape`: HTML5 named and numeric character references, including the
/// legacy names that need no `;` and the numeric references HTML5 maps elsewhere.
pub fn html_unescape(text: &str) -> String {
    html::unescape(text)
}

/// `re.sub(r"\s+", " ", text).strip()` with Python's notion of whitespace.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if python::is_space(c) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    python::strip(&out).to_string()
}

/// Binary search in a sorted table of inclusive code point ranges.
fn in_ranges(table: &[(u32, u32)], c: char) -> bool {
    let cp = c as u32;
    let i = table.partition_point(|&(_, last)| last < cp);
    table.get(i).is_some_and(|&(first, _)| first <= cp)
}

/// Binary search in a table sorted by its keys.
fn lookup<K: Ord + ?Sized, V: Copy>(table: &[(&K, V)], key: &K) -> Option<V> {
    table
        .binary_search_by(|(k, _)| (*k).cmp(key))
        .ok()
        .map(|i| table[i].1)
}

/// Binary search in a table of characters sorted by character.
fn lookup_char<V: Copy>(table: &[(char, V)], c: char) -> Option<V> {
    table
        .binary_search_by(|(k, _)| k.cmp(&c))
        .ok()
        .map(|i| table[i].1)
}

/// How many characters from `start` on (at most `limit`) `accept` takes in a row.
fn count_while(chars: &[char], start: usize, limit: usize, accept: impl Fn(char) -> bool) -> usize {
    chars
        .iter()
        .skip(start)
        .take(limit)
        .take_while(|&&c| accept(c))
        .count()
}

/// Python's own character classes (Unicode 14.0, as in Python 3.11).
mod python {
    use super::{in_ranges, tables};
    use unicode_normalization::UnicodeNormalization;

    /// `\s` in a str pattern, and what `str.strip()` removes.
    pub fn is_space(c: char) -> bool {
        in_ranges(tables::PY_WHITESPACE, c)
    }

    /// `\d` in a str pattern: any Unicode decimal digit.
    pub fn is_decimal(c: char) -> bool {
        in_ranges(tables::PY_DECIMAL, c)
    }

    /// `\w` in a str pattern.
    pub fn is_word(c: char) -> bool {
        in_ranges(tables::PY_WORD, c)
    }

    /// `str.strip()` without arguments.
    pub fn strip(text: &str) -> &str {
        text.trim_matches(is_space)
    }

    /// `unicodedata.normalize("NFC", text)` as Python 3.11 computes it. The Rust normalizer
    /// knows a newer Unicode; characters Python's Unicode 14 has not assigned are plain
    /// starters to Python (no decomposition, no composition, combining class 0), so the text
    /// is normalized in the runs between them and they are kept as they are.
    pub fn nfc(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut run_start = 0;
        for (i, c) in text.char_indices() {
            if in_ranges(tables::PY_UNASSIGNED, c) {
                out.extend(text[run_start..i].nfc());
                out.push(c);
                run_start = i + c.len_utf8();
            }
        }
        out.extend(text[run_start..].nfc());
        out
    }
}

/// Python's `html.unescape` (Lib/html/__init__.py of Python 3.11).
mod html {
    use super::{count_while, lookup, tables};

    pub fn unescape(text: &str) -> String {
        if !text.contains('&') {
            return text.to_string();
        }
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '&' {
                if let Some(end) = reference_end(&chars, i + 1) {
                    out.push_str(&replace_reference(&chars[i + 1..end]));
                    i = end;
                    continue;
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }

    /// Where the reference after a `&` at `start - 1` ends, per Python's
    /// `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)`.
    fn reference_end(chars: &[char], start: usize) -> Option<usize> {
        if chars.get(start) == Some(&'#') {
            let decimal = count_while(chars, start + 1, usize::MAX, |c| c.is_ascii_digit());
            if decimal > 0 {
                return Some(with_semicolon(chars, start + 1 + decimal));
            }
            if matches!(chars.get(start + 1), Some('x' | 'X')) {
                let hex = count_while(chars, start + 2, usize::MAX, |c| c.is_ascii_hexdigit());
                if hex > 0 {
                    return Some(with_semicolon(chars, start + 2 + hex));
                }
            }
            return None; // `#` cannot start a name
        }
        let name = count_while(chars, start, 32, |c| {
            !matches!(c, '\t' | '\n' | '\x0c' | ' ' | '<' | '&' | '#' | ';')
        });
        (name > 0).then(|| with_semicolon(chars, start + name))
    }

    fn with_semicolon(chars: &[char], end: usize) -> usize {
        end + usize::from(chars.get(end) == Some(&';'))
    }

    /// `_replace_charref`: the text standing for one reference (without its `&`).
    fn replace_reference(reference: &[char]) -> String {
        if reference[0] == '#' {
            numeric_reference(&reference[1..]).map_or(String::new(), String::from)
        } else {
            named_reference(reference)
        }
    }

    /// A numeric reference (`123;` or `x7B;`); `None` where Python returns the empty string.
    fn numeric_reference(reference: &[char]) -> Option<char> {
        let (digits, radix) = match reference[0] {
            'x' | 'X' => (&reference[1..], 16),
            _ => (reference, 10),
        };
        let value = parse_saturating(digits, radix);
        if let Ok(i) = tables::INVALID_CHARREFS.binary_search_by_key(&value, |&(k, _)| k) {
            return Some(tables::INVALID_CHARREFS[i].1);
        }
        if (0xD800..=0xDFFF).contains(&value) || value > 0x10FFFF {
            return Some('\u{FFFD}');
        }
        if tables::INVALID_CODEPOINTS.binary_search(&value).is_ok() {
            return None;
        }
        char::from_u32(value)
    }

    /// The number's value, or anything above U+10FFFF for numbers too large to matter (Python
    /// has big integers; every value past U+10FFFF is treated alike).
    fn parse_saturating(digits: &[char], radix: u32) -> u32 {
        digits
            .iter()
            .map_while(|c| c.to_digit(radix))
            .fold(0u32, |value, d| {
                value
                    .saturating_mul(radix)
                    .saturating_add(d)
                    .min(0x0100_0000)
            })
    }

    /// A named reference: the whole name, else the longest legacy name it starts with (at
    /// least two characters), else the text unchanged.
    fn named_reference(reference: &[char]) -> String {
        let name: String = reference.iter().collect();
        if let Some(value) = lookup(tables::HTML5_ENTITIES, name.as_str()) {
            return value.to_string();
        }
        for len in (2..reference.len()).rev() {
            let prefix: String = reference[..len].iter().collect();
            if let Some(value) = lookup(tables::HTML5_ENTITIES, prefix.as_str()) {
                let rest: String = reference[len..].iter().collect();
                return format!("{value}{rest}");
            }
        }
        format!("&{name}")
    }
}

/// ftfy 6.3.1's `fix_text` with its default `TextFixerConfig`.
mod ftfy {
    use super::{count_while, html, lookup, lookup_char, mojibake, python, tables};

    /// `TextFixerConfig.max_decode_length`: the longest segment fixed at once.
    const MAX_DECODE_LENGTH: usize = 1_000_000;

    pub fn fix_text(text: &str) -> String {
        // unescape_html="auto": once a segment holds a '<' the text is taken for HTML, and
        // entities are left alone in that segment and all later ones.
        let mut unescape = true;
        let mut out = String::with_capacity(text.len());
        for segment in segments(text) {
            if segment.contains('<') {
                unescape = false;
            }
            out.push_str(&fix_segment(segment, unescape));
        }
        out
    }

    /// Lines (each with its '\n'), cut every MAX_DECODE_LENGTH characters if longer.
    fn segments(text: &str) -> Vec<&str> {
        let mut parts = Vec::new();
        let mut start = 0;
        let mut count = 0;
        for (i, c) in text.char_indices() {
            count += 1;
            if c == '\n' || count == MAX_DECODE_LENGTH {
                let end = i + c.len_utf8();
                parts.push(&text[start..end]);
                start = end;
                count = 0;
            }
        }
        if start < text.len() {
            parts.push(&text[start..]);
        }
        parts
    }

    /// `fix_and_explain`: every fixer in ftfy's order, repeated until nothing changes.
    fn fix_segment(segment: &str, unescape: bool) -> String {
        let mut text = segment.to_string();
        loop {
            let before = text.clone();
            if unescape {
                text = unescape_html(&text);
            }
            text = mojibake::fix_encoding(&text);
            text = fix_c1_controls(&text);
            text = translate(&text, tables::LIGATURES);
            text = translate(&text, tables::WIDTH_MAP);
            text = uncurl_quotes(&text);
            text = fix_line_breaks(&text);
            // fix_surrogates has nothing to do: a Rust string holds no surrogates, and no step
            // here makes one (html.unescape turns surrogate numbers into U+FFFD).
            text = remove_terminal_escapes(&text);
            text = text.chars().filter(|&c| !is_control_char(c)).collect();
            text = python::nfc(&text);
            if text == before {
                return text;
            }
        }
    }

    /// `fixes.unescape_html`: `&#?[0-9A-Za-z]{1,24};` replaced by ftfy's entity table (HTML5
    /// names with `;` plus upper-cased forms), numeric references through `html.unescape`.
    fn unescape_html(text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '&' {
                if let Some(end) = entity_end(&chars, i) {
                    let entity: String = chars[i..end].iter().collect();
                    out.push_str(&replace_entity(&entity));
                    i = end;
                    continue;
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }

    fn entity_end(chars: &[char], ampersand: usize) -> Option<usize> {
        let mut start = ampersand + 1;
        if chars.get(start) == Some(&'#') {
            start += 1;
        }
        let run = count_while(chars, start, usize::MAX, |c| c.is_ascii_alphanumeric());
        let closed = chars.get(start + run) == Some(&';');
        ((1..=24).contains(&run) && closed).then_some(start + run + 1)
    }

    fn replace_entity(entity: &str) -> String {
        if let Some(value) = lookup(tables::FTFY_ENTITIES, entity) {
            return value.to_string();
        }
        if entity.starts_with("&#") {
            // Only a reference html.unescape consumes whole (its ';' included) is replaced.
            let unescaped = html::unescape(entity);
            if !unescaped.contains(';') {
                return unescaped;
            }
        }
        entity.to_string()
    }

    /// `fixes.fix_c1_controls`: C1 controls read as Windows-1252, as browsers do.
    pub(super) fn fix_c1_controls(text: &str) -> String {
        text.chars().map(mojibake::c1_as_windows_1252).collect()
    }

    /// `str.translate` with a table of replacements.
    fn translate(text: &str, table: &[(char, &str)]) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match lookup_char(table, c) {
                Some(replacement) => out.push_str(replacement),
                None => out.push(c),
            }
        }
        out
    }

    /// `fixes.uncurl_quotes`.
    fn uncurl_quotes(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                '\u{201C}'..='\u{201F}' => '"',
                '\u{02BC}' | '\u{2018}'..='\u{201B}' => '\'',
                _ => c,
            })
            .collect()
    }

    /// `fixes.fix_line_breaks`: CRLF first, then each of CR, U+2028, U+2029 and U+0085 (Python
    /// replaces them one after another; none of them can create another, so one pass does).
    fn fix_line_breaks(text: &str) -> String {
        text.replace("\r\n", "\n")
            .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
    }

    /// `fixes.remove_terminal_escapes`: `\x1b\[((?:\d|;)*)([a-zA-Z])` removed.
    fn remove_terminal_escapes(text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            if let Some(end) = terminal_escape_end(&chars, i) {
                i = end;
            } else {
                out.push(chars[i]);
                i += 1;
            }
        }
        out
    }

    fn terminal_escape_end(chars: &[char], start: usize) -> Option<usize> {
        if chars.get(start) != Some(&'\x1b') || chars.get(start + 1) != Some(&'[') {
            return None;
        }
        let params = count_while(chars, start + 2, usize::MAX, |c| {
            c == ';' || python::is_decimal(c)
        });
        let end = start + 2 + params;
        chars
            .get(end)
            .is_some_and(|c| c.is_ascii_alphabetic())
            .then_some(end + 1)
    }

    /// `chardata.CONTROL_CHARS`, what `fixes.remove_control_chars` deletes.
    fn is_control_char(c: char) -> bool {
        super::in_ranges(tables::CONTROL_CHARS, c)
    }
}

/// ftfy 6.3.1's `fix_encoding`: detects mojibake (UTF-8 read as a single-byte encoding) with
/// ftfy's heuristics and decodes it again. Plain text passes through untouched, because the
/// badness heuristic finds nothing in it.
mod mojibake {
    use super::tables::{
        category::*, clue, Charmap, CHARMAPS, SLOPPY_WINDOWS_1252, WINDOWS_1252_STRICT,
    };
    use super::{ftfy, lookup_char, python, tables};

    pub fn fix_encoding(text: &str) -> String {
        let mut text = text.to_string();
        loop {
            let fixed = fix_encoding_step(&text);
            if fixed == text {
                return text;
            }
            text = fixed;
        }
    }

    /// `_fix_encoding_one_step_and_explain`.
    fn fix_encoding_step(text: &str) -> String {
        if text.is_ascii() || !is_bad(text) {
            return text.to_string();
        }
        let mut latin1_possible = false;
        for charmap in &CHARMAPS {
            let Some(bytes) = encode(text, charmap) else {
                continue;
            };
            latin1_possible |= charmap.name == "latin-1";
            if let Some(fixed) = decode_as_utf8(bytes, charmap) {
                return fixed;
            }
        }
        if has_utf8_sequences(text) {
            let fixed = decode_inconsistent_utf8(text);
            if fixed != text {
                return fixed;
            }
        }
        // ftfy then asks whether "windows-1252" was possible too, a name its list of
        // encodings never holds (it says "sloppy-windows-1252"), so this always runs.
        if latin1_possible {
            if let Some(fixed) = latin1_as_windows_1252(text) {
                if fixed != text {
                    return fixed;
                }
            }
        }
        if text.chars().any(is_c1) {
            return ftfy::fix_c1_controls(text);
        }
        text.to_string()
    }

    fn is_c1(c: char) -> bool {
        ('\u{80}'..='\u{9F}').contains(&c)
    }

    /// One C1 control read as (ftfy's sloppy) Windows-1252; anything else unchanged.
    pub fn c1_as_windows_1252(c: char) -> char {
        if is_c1(c) {
            SLOPPY_WINDOWS_1252.high[c as usize - 0x80]
        } else {
            c
        }
    }

    /// `text.encode(encoding)`, or `None` where `chardata.possible_encoding` says no.
    fn encode(text: &str, charmap: &Charmap) -> Option<Vec<u8>> {
        text.chars().map(|c| encode_char(c, charmap)).collect()
    }

    fn encode_char(c: char, charmap: &Charmap) -> Option<u8> {
        if c == charmap.byte_1a {
            return Some(0x1A);
        }
        if c.is_ascii() {
            // In the sloppy codecs byte 0x1A stands for U+FFFD, so U+001A has no byte.
            return (c != '\x1a').then_some(c as u8);
        }
        let index = charmap.high.iter().position(|&h| h == c)?;
        Some(0x80 + index as u8)
    }

    /// The UTF-8 reading of one single-byte encoding, with ftfy's byte repairs, if it decodes.
    fn decode_as_utf8(mut bytes: Vec<u8>, charmap: &Charmap) -> Option<String> {
        if charmap.name != "macroman" && bytes_search(&bytes, ALTERED_UTF8) {
            bytes = restore_byte_a0(&bytes);
        }
        if charmap.name.starts_with("sloppy") {
            bytes = bytes_sub(&bytes, LOSSY_UTF8, |_| "\u{FFFD}".as_bytes().to_vec());
        }
        if bytes.contains(&0xED) || bytes.contains(&0xC0) {
            decode_utf8_variants(&bytes)
        } else {
            String::from_utf8(bytes).ok()
        }
    }

    /// `text.encode("latin-1").decode("windows-1252")` with Python's strict codec.
    fn latin1_as_windows_1252(text: &str) -> Option<String> {
        text.chars()
            .map(|c| match c as u32 {
                0..=0x7F => Some(c),
                cp @ 0x80..=0xFF => {
                    Some(WINDOWS_1252_STRICT[cp as usize - 0x80]).filter(|&d| d != '\0')
                }
                _ => None,
            })
            .collect()
    }

    // ---- byte patterns: fixed-length alternatives of byte classes, tried in order --------

    type ByteClass = &'static [(u8, u8)];
    type BytePattern = &'static [ByteClass];

    const SPACE: ByteClass = &[(0x20, 0x20)];
    const CONTINUATION: ByteClass = &[(0x80, 0xBF)];
    /// Continuation bytes other than 0x85 and 0xA0 (which Windows programs alter).
    const CONTINUATION_UNALTERED: ByteClass = &[(0x80, 0x84), (0x86, 0x9F), (0xA1, 0xBF)];
    const F0: ByteClass = &[(0xF0, 0xF0)];
    const ED: ByteClass = &[(0xED, 0xED)];
    const SUB: (u8, u8) = (0x1A, 0x1A);
    const QUESTION: (u8, u8) = (b'?', b'?');
    const CONT: (u8, u8) = (0x80, 0xBF);

    /// `chardata.ALTERED_UTF8_RE`: UTF-8 with a 0xA0 byte turned into a space.
    const ALTERED_UTF8: &[BytePattern] = &[
        &[
            &[
                (0xC2, 0xC3),
                (0xC5, 0xC5),
                (0xCE, 0xCE),
                (0xD0, 0xD0),
                (0xD9, 0xD9),
            ],
            SPACE,
        ],
        &[&[(0xE2, 0xE3)], SPACE, CONTINUATION_UNALTERED],
        &[&[(0xE0, 0xE3)], CONTINUATION_UNALTERED, SPACE],
        &[F0, SPACE, CONTINUATION, CONTINUATION],
        &[F0, CONTINUATION, SPACE, CONTINUATION],
        &[F0, CONTINUATION, CONTINUATION, SPACE],
    ];

    /// `chardata.LOSSY_UTF8_RE`: UTF-8 whose lost bytes became 0x1A (or once '?').
    const LOSSY_UTF8: &[BytePattern] = &[
        &[&[(0xC2, 0xDF)], &[SUB]],
        &[&[(0xC2, 0xC3)], &[QUESTION]],
        &[
            ED,
            &[(0xA0, 0xAF)],
            &[SUB, QUESTION],
            ED,
            &[(0xB0, 0xBF)],
            &[SUB, QUESTION, CONT],
        ],
        &[
            ED,
            &[(0xA0, 0xAF)],
            &[SUB, QUESTION, CONT],
            ED,
            &[(0xB0, 0xBF)],
            &[SUB, QUESTION],
        ],
        &[&[(0xE0, 0xEF)], &[SUB, QUESTION], &[SUB, CONT]],
        &[&[(0xE0, 0xEF)], &[SUB, CONT], &[SUB, QUESTION]],
        &[
            &[(0xF0, 0xF4)],
            &[SUB, QUESTION],
            &[SUB, CONT],
            &[SUB, CONT],
        ],
        &[
            &[(0xF0, 0xF4)],
            &[SUB, CONT],
            &[SUB, QUESTION],
            &[SUB, CONT],
        ],
        &[
            &[(0xF0, 0xF4)],
            &[SUB, CONT],
            &[SUB, CONT],
            &[SUB, QUESTION],
        ],
        &[&[SUB]],
    ];

    fn class_has(class: ByteClass, byte: u8) -> bool {
        class.iter().any(|&(lo, hi)| (lo..=hi).contains(&byte))
    }

    /// Length of the first alternative matching at `pos`.
    fn match_len(bytes: &[u8], pos: usize, alternatives: &[BytePattern]) -> Option<usize> {
        alternatives
            .iter()
            .find(|pattern| {
                pos + pattern.len() <= bytes.len()
                    && pattern
                        .iter()
                        .zip(&bytes[pos..])
                        .all(|(&class, &b)| class_has(class, b))
            })
            .map(|pattern| pattern.len())
    }

    fn bytes_search(bytes: &[u8], alternatives: &[BytePattern]) -> bool {
        (0..bytes.len()).any(|pos| match_len(bytes, pos, alternatives).is_some())
    }

    /// `re.sub` over bytes: each match, left to right, replaced by `replace(match)`.
    fn bytes_sub(
        bytes: &[u8],
        alternatives: &[BytePattern],
        replace: impl Fn(&[u8]) -> Vec<u8>,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut pos = 0;
        while pos < bytes.len() {
            match match_len(bytes, pos, alternatives) {
                Some(len) => {
                    out.extend(replace(&bytes[pos..pos + len]));
                    pos += len;
                }
                None => {
                    out.push(bytes[pos]);
                    pos += 1;
                }
            }
        }
        out
    }

    /// `fixes.restore_byte_a0`: puts back the 0xA0 bytes turned into spaces, first after a
    /// lone "Ã" (as in "Ã la mode"), keeping the space there.
    fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
        let mut with_a_grave = Vec::with_capacity(bytes.len() + 4);
        let mut pos = 0;
        while pos < bytes.len() {
            if is_a_grave_word(bytes, pos) {
                with_a_grave.extend_from_slice(&[0xC3, 0xA0, 0x20]);
                pos += 2;
            } else {
                with_a_grave.push(bytes[pos]);
                pos += 1;
            }
        }
        bytes_sub(&with_a_grave, ALTERED_UTF8, |m| {
            m.iter()
                .map(|&b| if b == 0x20 { 0xA0 } else { b })
                .collect()
        })
    }

    /// `A_GRAVE_WORD_RE`: `\xc3 (?! |quele|quela|quilo|s )`.
    fn is_a_grave_word(bytes: &[u8], pos: usize) -> bool {
        const EXCEPTIONS: [&[u8]; 5] = [b" ", b"quele", b"quela", b"quilo", b"s "];
        bytes[pos..].starts_with(&[0xC3, 0x20])
            && !EXCEPTIONS.iter().any(|e| bytes[pos + 2..].starts_with(e))
    }

    // ---- ftfy's "utf-8-variants" codec: UTF-8 plus CESU-8 pairs and Java's C0 80 ---------

    /// Whether a Python bytes regex `$` matches at `pos`: the end, or before a final newline.
    fn at_end(bytes: &[u8], pos: usize) -> bool {
        pos == bytes.len() || (pos + 1 == bytes.len() && bytes[pos] == b'\n')
    }

    /// `(class|$)` items matched in sequence, with the regex engine's backtracking.
    fn class_or_end_sequence(bytes: &[u8], pos: usize, items: &[ByteClass]) -> bool {
        let Some((&first, rest)) = items.split_first() else {
            return true;
        };
        let by_class = bytes.get(pos).is_some_and(|&b| class_has(first, b))
            && class_or_end_sequence(bytes, pos + 1, rest);
        by_class || (at_end(bytes, pos) && class_or_end_sequence(bytes, pos, rest))
    }

    /// `CESU8_RE.match`:
    /// `\xed([\xa0-\xaf]|$)([\x80-\xbf]|$)(\xed|$)([\xb0-\xbf]|$)([\x80-\xbf]|$)`.
    fn is_cesu8_pair(bytes: &[u8]) -> bool {
        const ITEMS: &[ByteClass] = &[
            &[(0xA0, 0xAF)],
            CONTINUATION,
            ED,
            &[(0xB0, 0xBF)],
            CONTINUATION,
        ];
        bytes.first() == Some(&0xED) && class_or_end_sequence(bytes, 1, ITEMS)
    }

    /// `SPECIAL_BYTES_RE` at `pos`: a Java null (`\xc0(\x80|$)`) or a surrogate's start
    /// (`\xed([\xa0-\xbf]|$)([\x80-\xbf]|$)`, which every CESU-8 match also satisfies).
    fn is_special_at(bytes: &[u8], pos: usize) -> bool {
        match bytes[pos] {
            0xC0 => class_or_end_sequence(bytes, pos + 1, &[&[(0x80, 0x80)]]),
            0xED => class_or_end_sequence(bytes, pos + 1, &[&[(0xA0, 0xBF)], CONTINUATION]),
            _ => false,
        }
    }

    /// `bytes.decode("utf-8-variants")`; `None` where Python raises UnicodeDecodeError.
    fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
        let mut out = String::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            let Some(special) = (0..rest.len()).find(|&i| is_special_at(rest, i)) else {
                out.push_str(std::str::from_utf8(rest).ok()?);
                break;
            };
            if special > 0 {
                out.push_str(std::str::from_utf8(&rest[..special]).ok()?);
                pos += special;
            } else if rest[0] == 0xC0 {
                // Two bytes are taken as the null whatever the second one is.
                (rest.len() > 1).then_some(())?;
                out.push('\0');
                pos += 2;
            } else if rest.len() < 6 {
                // A short tail goes to strict UTF-8 whole (which refuses a surrogate).
                out.push_str(std::str::from_utf8(rest).ok()?);
                break;
            } else if is_cesu8_pair(rest) {
                out.push(cesu8_char(rest));
                pos += 6;
            } else {
                // Not a pair: three bytes to strict UTF-8, which refuses a lone surrogate.
                out.push_str(std::str::from_utf8(&rest[..3]).ok()?);
                pos += 3;
            }
        }
        Some(out)
    }

    fn cesu8_char(b: &[u8]) -> char {
        let cp = (((b[1] & 0x0F) as u32) << 16)
            + (((b[2] & 0x3F) as u32) << 10)
            + (((b[4] & 0x0F) as u32) << 6)
            + (b[5] & 0x3F) as u32
            + 0x10000;
        char::from_u32(cp).unwrap_or('\u{FFFD}')
    }

    // ---- decode_inconsistent_utf8: mojibake embedded in otherwise fine text -------------

    fn has_clue(c: char, bits: u8) -> bool {
        lookup_char(tables::UTF8_CLUES, c).is_some_and(|m| m & bits != 0)
    }

    /// One sequence of `UTF8_DETECTOR_RE`'s group at `pos`: its length in characters.
    fn utf8_sequence_len(chars: &[char], pos: usize) -> Option<usize> {
        let continued = |n: usize| {
            (1..=n).all(|k| {
                chars
                    .get(pos + k)
                    .is_some_and(|&c| has_clue(c, clue::CONTINUATION))
            })
        };
        let first = *chars.get(pos)?;
        [
            (clue::FIRST_OF_2, 1),
            (clue::FIRST_OF_3, 2),
            (clue::FIRST_OF_4, 3),
        ]
        .into_iter()
        .find(|&(bits, n)| has_clue(first, bits) && continued(n))
        .map(|(_, n)| n + 1)
    }

    /// End of a `UTF8_DETECTOR_RE` match starting at `start`, if one does.
    fn utf8_detector_end(chars: &[char], start: usize) -> Option<usize> {
        if start > 0 && has_clue(chars[start - 1], clue::CONTINUATION_STRICT) {
            return None;
        }
        let mut end = start;
        while let Some(len) = utf8_sequence_len(chars, end) {
            end += len;
        }
        (end > start).then_some(end)
    }

    fn has_utf8_sequences(text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        (0..chars.len()).any(|i| utf8_detector_end(&chars, i).is_some())
    }

    /// `fixes.decode_inconsistent_utf8`: each detected run that is shorter than the text and
    /// looks bad is fixed on its own.
    fn decode_inconsistent_utf8(text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            let Some(end) = utf8_detector_end(&chars, i) else {
                out.push(chars[i]);
                i += 1;
                continue;
            };
            let run: String = chars[i..end].iter().collect();
            if end - i < chars.len() && is_bad(&run) {
                out.push_str(&fix_encoding(&run));
            } else {
                out.push_str(&run);
            }
            i = end;
        }
        out
    }

    // ---- badness.is_bad: ftfy's mojibake heuristic ------------------------------------

    /// One character position of a `BADNESS_RE` alternative.
    #[derive(Clone, Copy)]
    enum Class {
        /// In any of these MOJIBAKE_CATEGORIES, or one of these characters.
        Cat(u16, &'static str),
        /// One of these characters.
        Lit(&'static str),
        /// Python's `\s`.
        Space,
        /// Python's `\w`.
        Word,
        /// `.`: anything but a newline.
        NotNewline,
        /// `[^A-Za-z]`.
        NotAsciiLetter,
    }
    use Class::{Lit, NotAsciiLetter, NotNewline, Space, Word};

    const fn cat(bits: u16) -> Class {
        Class::Cat(bits, "")
    }

    const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
    const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const LETTERS_SPACE: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ";
    const LOWER_OR_STOPS: &str = "abcdefghijklmnopqrstuvwxyz.,?!";
    const ACCENTED: u16 = LOWER_ACCENTED | UPPER_ACCENTED;
    const PUNCTUATION: u16 = START_PUNCTUATION | END_PUNCTUATION;
    /// U+201A SINGLE LOW-9 QUOTATION MARK, which looks like a comma.
    const LOW_QUOTE: &str = "\u{201a}";
    /// Cyrillic В, Г, Р, С (not the Latin look-alikes).
    const CYRILLIC_VGRS: &str = "\u{412}\u{413}\u{420}\u{421}";
    /// Greek Β, Γ, Ξ, Ο (not the Latin look-alikes).
    const GREEK_BGXO: &str = "\u{392}\u{393}\u{39e}\u{39f}";
    /// After Â, Ã, Î, Ð: common Windows-1252 second characters (U+00A0 and U+00AD included).
    const AFTER_A_HAT: Class = Class::Cat(PUNCTUATION, "€œŠš¢£Ÿž\u{a0}\u{ad}®©°·»–—´");
    const AFTER_ARABIC: Class = Class::Cat(
        COMMON | CURRENCY | BAD | NUMERIC | START_PUNCTUATION,
        "ŸŠ®°µ»",
    );
    const CYRILLIC_MIDDLE: Class = Class::Cat(C1 | BAD | PUNCTUATION | CURRENCY, "°µ");
    const GREEK_MIDDLE: Class = Class::Cat(C1 | BAD | PUNCTUATION | CURRENCY, "°");
    /// Everything but "bad", "common", "kaomoji" and the unaccented Greek and Cyrillic letters.
    const SUSPECTS: u16 = ACCENTED | BOX | PUNCTUATION | CURRENCY | NUMERIC | LAW;
    const BEFORE_UPPER: u16 = LOWER_ACCENTED | LOWER_COMMON | BOX | END_PUNCTUATION;

    /// `BADNESS_RE`'s alternatives, in its order, `^[ÃÂ][ ]` aside and `[a-z]\s?[ÃÂ][ ]` as two.
    const BADNESS: &[&[Class]] = &[
        &[cat(C1)],
        &[cat(BAD | SUSPECTS), cat(BAD)],
        &[Lit(LETTERS), cat(LOWER_COMMON | UPPER_COMMON), cat(BAD)],
        &[cat(BAD), cat(SUSPECTS)],
        &[cat(BEFORE_UPPER | CURRENCY | NUMERIC), cat(UPPER_ACCENTED)],
        &[
            cat(BOX | END_PUNCTUATION | CURRENCY | NUMERIC),
            cat(LOWER_ACCENTED),
        ],
        &[cat(LOWER_ACCENTED | BOX | END_PUNCTUATION), cat(CURRENCY)],
        &[Space, cat(UPPER_ACCENTED), cat(CURRENCY)],
        &[cat(UPPER_ACCENTED | BOX), cat(NUMERIC | LAW)],
        &[
            cat(ACCENTED | BOX | CURRENCY | END_PUNCTUATION),
            cat(START_PUNCTUATION),
            cat(NUMERIC),
        ],
        &[
            cat(ACCENTED | CURRENCY | NUMERIC | BOX | LAW),
            cat(END_PUNCTUATION),
            cat(START_PUNCTUATION),
        ],
        &[cat(CURRENCY | NUMERIC | BOX), cat(START_PUNCTUATION)],
        &[
            Lit(LOWER),
            cat(UPPER_ACCENTED),
            cat(START_PUNCTUATION | CURRENCY),
        ],
        &[cat(BOX), cat(KAOMOJI)],
        &[
            cat(ACCENTED | CURRENCY | NUMERIC | PUNCTUATION | LAW),
            cat(BOX),
        ],
        &[cat(BOX), cat(END_PUNCTUATION)],
        &[cat(ACCENTED), cat(PUNCTUATION), Word],
        &[Lit("Œœ"), NotAsciiLetter],
        &[cat(UPPER_ACCENTED), Lit("°")],
        &[Lit("ÂÃÎÐ"), AFTER_A_HAT],
        &[Lit("×"), Lit("²³")],
        &[Lit("ØÙ"), AFTER_ARABIC, Lit("ØÙ"), AFTER_ARABIC],
        &[Lit("à"), Lit("²µ¹¼½¾")],
        &[Lit("√"), Lit("±∂†≠®™´≤≥¥µø")],
        &[Lit("≈"), Lit("°¢")],
        &[Lit(LOW_QUOTE), Lit("Ä"), Lit("ìîïòôúùû†°¢π")],
        &[Lit(LOW_QUOTE), Lit("âó"), Lit("àä°ê")],
        &[Lit("в"), Lit("Ђ")],
        &[Lit(CYRILLIC_VGRS), CYRILLIC_MIDDLE, Lit(CYRILLIC_VGRS)],
        // Cyrillic Г ў В Ђ В, anything, a Latin letter or space.
        &[
            Lit("\u{413}"),
            Lit("\u{45e}"),
            Lit("\u{412}"),
            Lit("\u{402}"),
            Lit("\u{412}"),
            NotNewline,
            Lit(LETTERS_SPACE),
        ],
        &[Lit("Ã"), Lit("\u{a0}¡")],
        &[Lit(LOWER), Lit("ÃÂ"), Lit(" ")],
        &[Lit(LOWER), Space, Lit("ÃÂ"), Lit(" ")],
        &[
            Class::Cat(END_PUNCTUATION, LOWER_OR_STOPS),
            Lit("Â"),
            Class::Cat(PUNCTUATION, " "),
        ],
        &[Lit("β"), Lit("€"), Lit("™\u{a0}Ά\u{ad}®°")],
        &[Lit(GREEK_BGXO), GREEK_MIDDLE, Lit(GREEK_BGXO)],
        &[Lit("ā"), Lit("€")],
    ];

    /// `^[ÃÂ][ ]`: only at the start of the text.
    const BADNESS_AT_START: &[Class] = &[Lit("ÃÂ"), Lit(" ")];

    fn class_matches(class: Class, c: char) -> bool {
        match class {
            Class::Cat(bits, extra) => {
                lookup_char(tables::MOJIBAKE_CATEGORIES, c).is_some_and(|m| m & bits != 0)
                    || extra.contains(c)
            }
            Lit(chars) => chars.contains(c),
            Space => python::is_space(c),
            Word => python::is_word(c),
            NotNewline => c != '\n',
            NotAsciiLetter => !c.is_ascii_alphabetic(),
        }
    }

    fn pattern_at(chars: &[char], pos: usize, pattern: &[Class]) -> bool {
        pos + pattern.len() <= chars.len()
            && pattern
                .iter()
                .zip(&chars[pos..])
                .all(|(&class, &c)| class_matches(class, c))
    }

    /// `badness.is_bad`: whether any of ftfy's mojibake patterns occurs in the text.
    pub(super) fn is_bad(text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        pattern_at(&chars, 0, BADNESS_AT_START)
            || (0..chars.len()).any(|pos| BADNESS.iter().any(|p| pattern_at(&chars, pos, p)))
    }
}

/// The UMT5 tokenizer of a Diffusers Wan folder (`tokenizer/tokenizer.json`), called the way
/// the pipeline calls transformers' fast tokenizer.
pub struct PromptTokenizer {
    tokenizer: Tokenizer,
    path: PathBuf,
}

impl PromptTokenizer {
    /// Loads a `tokenizer.json` (the fast-tokenizer format of the `tokenizers` library).
    pub fn load(path: impl AsRef<Path>) -> Result<PromptTokenizer> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(Error::msg(format!(
                "tokenizer file {} does not exist",
                path.display()
            )));
        }
        let mut tokenizer = Tokenizer::from_file(&path)
            .map_err(|e| Error::msg(format!("cannot load tokenizer {}: {e}", path.display())))?;
        // transformers replaces any truncation or padding stored in the file with the call's
        // own; `encode` does the call's truncation itself, and padding is not ours to add.
        tokenizer
            .with_truncation(None)
            .map_err(|e| Error::msg(format!("tokenizer {}: {e}", path.display())))?;
        tokenizer.with_padding(None);
        Ok(PromptTokenizer { tokenizer, path })
    }

    /// The token ids the pipeline gets for an already cleaned prompt, before padding: the
    /// text's tokens and `</s>`, truncated to `max_len` as transformers truncates (the text's
    /// tokens are cut so that `</s>` still ends the sequence).
    pub fn encode(&self, cleaned: &str, max_len: usize) -> Result<Vec<u32>> {
        let mut encoding = self
            .tokenizer
            .encode(cleaned, false)
            .map_err(|e| self.error("cannot tokenize with", e))?;
        let special = self
            .tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        // transformers reads max_length 0 as "no limit" (and the pipeline then fails making
        // a zero-length embedding); here it is refused, like a limit below the special tokens.
        if max_len == 0 || max_len < special {
            return Err(Error::msg(format!(
                "max length {max_len} cannot hold the {special} special token(s) of tokenizer {}",
                self.path.display()
            )));
        }
        encoding.truncate(max_len - special, 0, TruncationDirection::Right);
        let encoding = self
            .tokenizer
            .post_process(encoding, None, true)
            .map_err(|e| self.error("cannot add the special tokens of", e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// `clean_prompt` and `encode` together: what `_get_t5_prompt_embeds` feeds the encoder.
    pub fn encode_prompt(&self, prompt: &str, max_len: usize) -> Result<Vec<u32>> {
        self.encode(&clean_prompt(prompt), max_len)
    }

    /// The file this tokenizer was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::msg(format!("{what} tokenizer {}: {e}", self.path.display()))
    }
}
