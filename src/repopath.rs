//! Repository-relative paths as lossless strings: a file name that is not UTF-8 is carried
//! through the engine (scans, commits, restores, scope matching, JSON and TSV files) as a
//! `String`, and turned back into its exact bytes wherever it meets git or the filesystem.
//!
//! The encoding: valid UTF-8 stays as it is; each byte of an invalid sequence `b` (always
//! `0x80..=0xFF`) becomes the private-use character `U+10FE00 + b`, so `U+10FE80..=U+10FEFF`.
//! A name that already holds one of those 128 characters as valid UTF-8 has each of its four
//! bytes escaped the same way, which keeps the encoding lossless for every byte string:
//! `encode(&decode(b)) == b`. [`display`] shows the escaped bytes as `\xNN` for messages and rows.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The character that stands for byte 0: byte `b` (`0x80..=0xFF`) is `ESCAPE_BASE + b`.
pub const ESCAPE_BASE: u32 = 0x10_FE00;

/// The byte a character stands for, when it is one of the 128 escape characters.
fn escaped_byte(c: char) -> Option<u8> {
    let v = u32::from(c);
    (ESCAPE_BASE + 0x80..=ESCAPE_BASE + 0xFF)
        .contains(&v)
        .then(|| (v - ESCAPE_BASE) as u8)
}

fn escape(b: u8) -> char {
    // 0x10FE00 + b is a valid scalar value (in plane 16's private use area) for every byte.
    char::from_u32(ESCAPE_BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Whether `path` holds no escape character (its string bytes are its bytes). The escape
/// characters are the only ones whose UTF-8 starts with `F4 8F BA` or `F4 8F BB`.
fn is_plain(path: &str) -> bool {
    !path.as_bytes().contains(&0xF4) || !path.chars().any(|c| escaped_byte(c).is_some())
}

/// Returns the string form of a path's bytes (as git or the filesystem gives them).
pub fn decode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if escaped_byte(c).is_some() {
                let mut buf = [0u8; 4];
                out.extend(c.encode_utf8(&mut buf).bytes().map(escape));
            } else {
                out.push(c);
            }
        }
        // An invalid sequence never holds an ASCII byte; were one there, it is itself.
        out.extend(chunk.invalid().iter().map(|&b| {
            if b.is_ascii() {
                char::from(b)
            } else {
                escape(b)
            }
        }));
    }
    out
}

/// Returns the bytes a path string stands for (the inverse of [`decode`]).
pub fn encode(path: &str) -> Cow<'_, [u8]> {
    if is_plain(path) {
        return Cow::Borrowed(path.as_bytes());
    }
    let mut out = Vec::with_capacity(path.len());
    for c in path.chars() {
        match escaped_byte(c) {
            Some(b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
        }
    }
    Cow::Owned(out)
}

/// Returns the relative path a path string stands for, for git (index, trees) and globs.
pub fn as_path(path: &str) -> Cow<'_, Path> {
    match encode(path) {
        Cow::Borrowed(_) => Cow::Borrowed(Path::new(path)),
        Cow::Owned(bytes) => Cow::Owned(PathBuf::from(OsStr::from_bytes(&bytes))),
    }
}

/// Returns the file a repository-relative path string names under `root`.
pub fn to_fs(root: &Path, path: &str) -> PathBuf {
    root.join(as_path(path))
}

/// Returns `text` with every escaped byte shown as `\xNN` (for messages, prompts and rows, which
/// must stay readable UTF-8). Not reversible: never parse a path back from it.
pub fn display(text: &str) -> Cow<'_, str> {
    if is_plain(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match escaped_byte(c) {
            Some(b) => out.push_str(&format!("\\x{b:02x}")),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(bytes: &[u8]) {
        let s = decode(bytes);
        assert_eq!(encode(&s).as_ref(), bytes, "{bytes:x?} -> {s:?}");
        assert_eq!(as_path(&s).as_os_str().as_bytes(), bytes);
    }

    #[test]
    fn valid_utf8_is_unchanged() {
        for s in [
            "",
            "src/a.rs",
            "docs/café.md",
            "日本語/🚀.txt",
            "U+10FE7F \u{10FE7F}",
        ] {
            assert_eq!(decode(s.as_bytes()), s);
            assert!(matches!(encode(s), Cow::Borrowed(_)));
            assert!(matches!(display(s), Cow::Borrowed(_)));
            round_trip(s.as_bytes());
        }
    }

    #[test]
    fn invalid_bytes_become_private_use_characters() {
        let s = decode(b"src/caf\xe9.txt");
        assert_eq!(s, "src/caf\u{10FEE9}.txt");
        assert_eq!(display(&s), "src/caf\\xe9.txt");
        round_trip(b"src/caf\xe9.txt");
        // A truncated sequence, a lone continuation byte, an overlong form, 0xFF.
        for b in [
            &b"a\xe2\x82"[..],
            b"\x80",
            b"\xc0\xaf/x",
            b"\xff\xfe",
            b"ok\xf0\x9f\x9a",
        ] {
            round_trip(b);
            assert!(
                !display(&decode(b))
                    .chars()
                    .any(|c| escaped_byte(c).is_some())
            );
        }
        assert_eq!(display(&decode(b"\xff\xfe")), "\\xff\\xfe");
    }

    #[test]
    fn names_holding_the_escape_characters_stay_lossless() {
        // U+10FEE9 as real UTF-8 must not read back as the single byte 0xE9.
        let literal = "x\u{10FEE9}y";
        let s = decode(literal.as_bytes());
        assert_ne!(s, literal);
        assert_eq!(encode(&s).as_ref(), literal.as_bytes());
        assert_eq!(display(&s), "x\\xf4\\x8f\\xbb\\xa9y");
        round_trip("\u{10FE80}\u{10FEFF}".as_bytes());
    }

    #[test]
    fn every_short_byte_string_round_trips() {
        // Every string of up to two bytes, and three-byte strings over an interesting alphabet.
        for a in 0..=255u8 {
            round_trip(&[a]);
            for b in 0..=255u8 {
                round_trip(&[a, b]);
            }
        }
        let alphabet = [
            0x00, b'/', b'a', 0x7f, 0x80, 0x8f, 0xbb, 0xbf, 0xc3, 0xe9, 0xf4, 0xff,
        ];
        for &a in &alphabet {
            for &b in &alphabet {
                for &c in &alphabet {
                    for &d in &alphabet {
                        round_trip(&[a, b, c, d]);
                    }
                }
            }
        }
    }

    #[test]
    fn to_fs_joins_the_real_bytes() {
        let p = to_fs(Path::new("/r"), &decode(b"d/caf\xe9"));
        assert_eq!(p.as_os_str().as_bytes(), b"/r/d/caf\xe9");
    }
}
