//! Cache keys: a SHA-256 over a canonical, versioned encoding of everything that changes the
//! pixels (model weight hashes, every parameter's value at every frame, seed, plugin version).
//!
//! Keys are shared by processes and by render-farm nodes through a shared disk, so a collision
//! would silently show the wrong clip: the hash is cryptographic (the `sha2` crate), never a
//! fast non-cryptographic one.
//!
//! Encoding (version [`KEY_ENCODING_VERSION`]), all integers little-endian:
//! `"genclip-cache-key\0"`, `u32` version, `u64` length + bytes of the domain, `u64` field count,
//! then the fields **sorted by name** (so call order does not matter), each as
//! `u64` name length, name bytes, one type tag byte, the value:
//! - `U64`/`I64`: 8 bytes; `BOOL`: 1 byte; `F64`: the IEEE bits (every NaN canonicalised to
//!   `0x7ff8_0000_0000_0000`; `-0.0` stays distinct from `0.0`, which can only cost a miss);
//! - `STR`/`BYTES`: `u64` length + bytes (strings as UTF-8, not normalised: prompts are cleaned
//!   before they get here);
//! - lists: `u64` count, then each element as above without a tag.
//!
//! Changing any of this must bump [`KEY_ENCODING_VERSION`], which changes every key.

use sha2::{Digest, Sha256};
use std::fmt;

/// Bump when the byte encoding below changes (old cache files then simply stop matching).
pub const KEY_ENCODING_VERSION: u32 = 1;

const MAGIC: &[u8] = b"genclip-cache-key\0";

const TAG_U64: u8 = 1;
const TAG_I64: u8 = 2;
const TAG_BOOL: u8 = 3;
const TAG_F64: u8 = 4;
const TAG_STR: u8 = 5;
const TAG_BYTES: u8 = 6;
const TAG_F64_LIST: u8 = 7;
const TAG_U64_LIST: u8 = 8;
const TAG_STR_LIST: u8 = 9;

/// A 256-bit content hash naming one cached clip (a generated window).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    /// Starts a key; `domain` says what kind of thing it names (e.g. `"wan-window"`), so equal
    /// fields for different kinds of output never share a key.
    pub fn builder(domain: &str) -> KeyBuilder {
        KeyBuilder {
            domain: domain.to_owned(),
            fields: Vec::new(),
        }
    }

    /// 64 lowercase hex digits: the file name on disk.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s
    }

    /// Parses [`CacheKey::to_hex`]'s output (either case); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<CacheKey> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
        }
        Some(CacheKey(out))
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.to_hex())
    }
}

/// Collects named fields; [`KeyBuilder::finish`] hashes their canonical encoding.
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    domain: String,
    fields: Vec<(String, Vec<u8>)>,
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

fn f64_bits(v: f64) -> u64 {
    if v.is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        v.to_bits()
    }
}

impl KeyBuilder {
    fn push(mut self, name: &str, tag: u8, value: impl FnOnce(&mut Vec<u8>)) -> Self {
        let mut enc = vec![tag];
        value(&mut enc);
        self.fields.push((name.to_owned(), enc));
        self
    }

    pub fn u64(self, name: &str, v: u64) -> Self {
        self.push(name, TAG_U64, |o| o.extend_from_slice(&v.to_le_bytes()))
    }

    pub fn i64(self, name: &str, v: i64) -> Self {
        self.push(name, TAG_I64, |o| o.extend_from_slice(&v.to_le_bytes()))
    }

    pub fn bool(self, name: &str, v: bool) -> Self {
        self.push(name, TAG_BOOL, |o| o.push(u8::from(v)))
    }

    pub fn f64(self, name: &str, v: f64) -> Self {
        self.push(name, TAG_F64, |o| {
            o.extend_from_slice(&f64_bits(v).to_le_bytes())
        })
    }

    pub fn str(self, name: &str, v: &str) -> Self {
        self.push(name, TAG_STR, |o| put_bytes(o, v.as_bytes()))
    }

    /// Raw bytes, e.g. a weight file's SHA-256.
    pub fn bytes(self, name: &str, v: &[u8]) -> Self {
        self.push(name, TAG_BYTES, |o| put_bytes(o, v))
    }

    /// A parameter's value at every frame of the clip, in frame order.
    pub fn f64_list(self, name: &str, v: &[f64]) -> Self {
        self.push(name, TAG_F64_LIST, |o| {
            put_len(o, v.len());
            for x in v {
                o.extend_from_slice(&f64_bits(*x).to_le_bytes());
            }
        })
    }

    pub fn u64_list(self, name: &str, v: &[u64]) -> Self {
        self.push(name, TAG_U64_LIST, |o| {
            put_len(o, v.len());
            for x in v {
                o.extend_from_slice(&x.to_le_bytes());
            }
        })
    }

    pub fn str_list<S: AsRef<str>>(self, name: &str, v: &[S]) -> Self {
        self.push(name, TAG_STR_LIST, |o| {
            put_len(o, v.len());
            for s in v {
                put_bytes(o, s.as_ref().as_bytes());
            }
        })
    }

    /// Adds `plugin_version` = this crate's version (every key should carry it).
    pub fn plugin_version(self) -> Self {
        self.str("plugin_version", env!("CARGO_PKG_VERSION"))
    }

    /// The canonical byte encoding (what gets hashed); public for tests and debugging.
    ///
    /// # Panics
    /// If two fields share a name: that is a bug in the caller, and silently keeping one
    /// would make two different inputs share a key.
    pub fn encoding(&self) -> Vec<u8> {
        let mut fields: Vec<&(String, Vec<u8>)> = self.fields.iter().collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        for w in fields.windows(2) {
            assert!(w[0].0 != w[1].0, "cache key field {:?} given twice", w[0].0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&KEY_ENCODING_VERSION.to_le_bytes());
        put_bytes(&mut out, self.domain.as_bytes());
        put_len(&mut out, fields.len());
        for (name, enc) in fields {
            put_bytes(&mut out, name.as_bytes());
            out.extend_from_slice(enc);
        }
        out
    }

    pub fn finish(&self) -> CacheKey {
        CacheKey(Sha256::digest(self.encoding()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> KeyBuilder {
        CacheKey::builder("wan-window")
            .u64("seed", 42)
            .f64_list("weight_a", &[1.0, 0.5, 0.0])
            .str("prompt_a", "a cat")
            .plugin_version()
    }

    #[test]
    fn same_inputs_same_key_in_any_order() {
        let a = base().finish();
        let b = CacheKey::builder("wan-window")
            .plugin_version()
            .str("prompt_a", "a cat")
            .f64_list("weight_a", &[1.0, 0.5, 0.0])
            .u64("seed", 42)
            .finish();
        assert_eq!(a, b);
    }

    #[test]
    fn any_change_changes_the_key() {
        let a = base().finish();
        assert_ne!(a, base().u64("steps", 30).finish());
        let other_seed = CacheKey::builder("wan-window")
            .u64("seed", 43)
            .f64_list("weight_a", &[1.0, 0.5, 0.0])
            .str("prompt_a", "a cat")
            .plugin_version()
            .finish();
        assert_ne!(a, other_seed);
        let other_frame = CacheKey::builder("wan-window")
            .u64("seed", 42)
            .f64_list("weight_a", &[1.0, 0.5, 1e-12])
            .str("prompt_a", "a cat")
            .plugin_version()
            .finish();
        assert_ne!(a, other_frame);
        assert_ne!(
            CacheKey::builder("x").finish(),
            CacheKey::builder("y").finish()
        );
        // Length prefixes keep neighbouring strings from running together.
        assert_ne!(
            CacheKey::builder("x").str_list("p", &["ab", "c"]).finish(),
            CacheKey::builder("x").str_list("p", &["a", "bc"]).finish()
        );
        // Same bits, different type: different key.
        assert_ne!(
            CacheKey::builder("x").u64("v", 1).finish(),
            CacheKey::builder("x").i64("v", 1).finish()
        );
    }

    #[test]
    fn nan_is_canonical() {
        let a = CacheKey::builder("x").f64("v", f64::NAN).finish();
        let b = CacheKey::builder("x")
            .f64("v", f64::from_bits(0x7ff0_0000_0000_0001))
            .finish();
        assert_eq!(a, b);
    }

    #[test]
    fn encoding_is_stable() {
        // Pinned: if this changes, bump KEY_ENCODING_VERSION (old files must stop matching).
        let k = CacheKey::builder("d").u64("s", 1).str("p", "hi").finish();
        let again = CacheKey::builder("d").str("p", "hi").u64("s", 1).finish();
        assert_eq!(k, again);
        let enc = CacheKey::builder("d").u64("s", 1).encoding();
        let mut want = b"genclip-cache-key\0".to_vec();
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&1u64.to_le_bytes());
        want.push(b'd');
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(&1u64.to_le_bytes());
        want.push(b's');
        want.push(TAG_U64);
        want.extend_from_slice(&1u64.to_le_bytes());
        assert_eq!(enc, want);
    }

    #[test]
    fn hex_round_trip() {
        let k = base().finish();
        let h = k.to_hex();
        assert_eq!(h.len(), 64);
        assert!(h
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(CacheKey::from_hex(&h), Some(k));
        assert_eq!(CacheKey::from_hex(&h.to_uppercase()), Some(k));
        assert_eq!(CacheKey::from_hex("zz"), None);
    }

    #[test]
    #[should_panic(expected = "given twice")]
    fn duplicate_field_is_a_bug() {
        CacheKey::builder("x").u64("a", 1).u64("a", 2).finish();
    }
}
