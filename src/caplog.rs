//! Capped log files for supervised processes: the first half of the cap goes to disk as it
//! comes, the rest of the stream cycles through a fixed region after it (a ring buffer on disk,
//! so memory stays flat however much a child prints), and when the stream ends the ring is
//! written back in order after a one-line note saying how many bytes were cut.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes copied at a time when the tail is put in order.
const CHUNK: usize = 64 * 1024;

/// Formats a byte count for the cut note: `8 MiB`, `512 KiB`, or `1234567 bytes`.
pub fn format_size(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// A log file that keeps at most about `cap` bytes: the first half and the last half.
pub struct CappedLog {
    file: File,
    cap: u64,
    /// Size of the head; the ring region starts here.
    head_cap: u64,
    head_len: u64,
    head_last: Option<u8>,
    /// Size of the ring region.
    ring_cap: u64,
    /// Ring offset of the oldest byte kept, and how many bytes are kept.
    start: u64,
    len: u64,
    /// The last byte that fell out of the ring.
    last_dropped: Option<u8>,
    /// Bytes neither in the head nor in the ring.
    cut: u64,
    finished: bool,
}

impl CappedLog {
    /// Creates (or truncates) the log file at `path`.
    pub fn create(path: &Path, cap: u64) -> std::io::Result<CappedLog> {
        // Readable too: the tail is read back to put it in order.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let ring_cap = cap / 2;
        Ok(CappedLog {
            file,
            cap,
            head_cap: cap - ring_cap,
            head_len: 0,
            head_last: None,
            ring_cap,
            start: 0,
            len: 0,
            last_dropped: None,
            cut: 0,
            finished: false,
        })
    }

    /// Appends stream bytes: to the head while it has room, then into the ring. Ignored once
    /// the log is finished (a grandchild still holding the pipe after the run ended).
    pub fn write(&mut self, data: &[u8]) {
        if self.finished || data.is_empty() {
            return;
        }
        let room = usize::try_from(self.head_cap - self.head_len).unwrap_or(usize::MAX);
        let head = data.len().min(room);
        if head > 0 {
            let _ = self.file.write_all_at(&data[..head], self.head_len);
            self.head_len += head as u64;
            self.head_last = Some(data[head - 1]);
        }
        self.push(&data[head..]);
    }

    /// Reads the byte at ring offset `at`.
    fn ring_byte(&self, at: u64) -> Option<u8> {
        let mut b = [0u8; 1];
        self.file
            .read_exact_at(&mut b, self.head_cap + at % self.ring_cap)
            .ok()
            .map(|()| b[0])
    }

    /// Adds bytes to the ring, overwriting the oldest.
    fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let ring = self.ring_cap;
        let n = data.len() as u64;
        if n >= ring {
            let skip = (n - ring) as usize;
            self.last_dropped = if skip > 0 {
                Some(data[skip - 1])
            } else if self.len > 0 {
                self.ring_byte(self.start + self.len - 1)
            } else {
                self.last_dropped
            };
            self.cut += self.len + skip as u64;
            let _ = self.file.write_all_at(&data[skip..], self.head_cap);
            (self.start, self.len) = (0, ring);
            return;
        }
        let evict = (self.len + n).saturating_sub(ring);
        if evict > 0 {
            self.last_dropped = self.ring_byte(self.start + evict - 1);
            self.start = (self.start + evict) % ring;
            self.len -= evict;
            self.cut += evict;
        }
        let pos = (self.start + self.len) % ring;
        let first = n.min(ring - pos) as usize;
        let _ = self.file.write_all_at(&data[..first], self.head_cap + pos);
        let _ = self.file.write_all_at(&data[first..], self.head_cap);
        self.len += n;
    }

    /// Reads `buf.len()` ring bytes starting at ring position `from` (in stream order).
    fn read_ring(&self, from: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let at = (self.start + from) % self.ring_cap;
        let first = (buf.len() as u64).min(self.ring_cap - at) as usize;
        let (a, b) = buf.split_at_mut(first);
        self.file.read_exact_at(a, self.head_cap + at)?;
        self.file.read_exact_at(b, self.head_cap)
    }

    /// Puts the log in its final form; idempotent. Until then an overflowing log holds its tail
    /// out of order. Without a cut the file is already complete.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.cut > 0 {
            let _ = self.put_tail_in_order();
        }
    }

    /// Writes note and ordered tail after the ring region, moves them down over it, truncates.
    fn put_tail_in_order(&mut self) -> std::io::Result<()> {
        let mut buf = vec![0u8; CHUNK];
        // Start the tail at a line boundary when there is one.
        let mut skip = 0;
        if self.last_dropped != Some(b'\n') {
            let mut at = 0;
            while at < self.len {
                let n = (self.len - at).min(CHUNK as u64) as usize;
                self.read_ring(at, &mut buf[..n])?;
                if let Some(i) = buf[..n].iter().position(|c| *c == b'\n') {
                    skip = at + i as u64 + 1;
                    break;
                }
                at += n as u64;
            }
        }
        let newline = match self.head_last {
            Some(b'\n') | None => "",
            Some(_) => "\n",
        };
        let note = format!(
            "{newline}[... {} bytes cut by codex-autoresearch: logs are capped at {} (AUTORESEARCH_LOG_CAP) ...]\n",
            self.cut + skip,
            format_size(self.cap)
        );
        let staged = self.head_cap + self.ring_cap;
        self.file.write_all_at(note.as_bytes(), staged)?;
        let mut out = staged + note.len() as u64;
        let mut at = skip;
        while at < self.len {
            let n = (self.len - at).min(CHUNK as u64) as usize;
            self.read_ring(at, &mut buf[..n])?;
            self.file.write_all_at(&buf[..n], out)?;
            at += n as u64;
            out += n as u64;
        }
        // Move it down to the end of the head (forward: the source lies after the target).
        let total = out - staged;
        let mut done = 0;
        while done < total {
            let n = (total - done).min(CHUNK as u64) as usize;
            self.file.read_exact_at(&mut buf[..n], staged + done)?;
            self.file.write_all_at(&buf[..n], self.head_cap + done)?;
            done += n as u64;
        }
        self.file.set_len(self.head_cap + total)
    }
}

impl Drop for CappedLog {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(cap: u64, chunks: &[&[u8]]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut log = CappedLog::create(&p, cap).unwrap();
        for c in chunks {
            log.write(c);
            let size = std::fs::metadata(&p).unwrap().len();
            assert!(size <= cap, "{size} bytes on disk while running");
        }
        log.finish();
        log.write(b"after the end");
        drop(log);
        std::fs::read(&p).unwrap()
    }

    #[test]
    fn a_log_under_the_cap_is_complete() {
        assert_eq!(log_of(100, &[b"hello\n", b"world\n"]), b"hello\nworld\n");
        let exact: Vec<u8> = (0..100u8).collect();
        assert_eq!(log_of(100, &[&exact[..30], &exact[30..]]), exact);
        assert_eq!(log_of(100, &[&exact[..70], &exact[70..]]), exact);
    }

    #[test]
    fn a_long_log_keeps_head_note_and_tail() {
        let lines: Vec<String> = (0..10_000).map(|i| format!("line {i:05}\n")).collect();
        let chunks: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        let text = String::from_utf8(log_of(1000, &chunks)).unwrap();
        assert!(text.len() <= 1000 + 200, "{}", text.len());
        assert!(text.starts_with("line 00000\nline 00001\n"), "{text}");
        assert!(text.ends_with("line 09998\nline 09999\n"), "{text}");
        let note: Vec<&str> = text.lines().filter(|l| l.starts_with("[... ")).collect();
        assert_eq!(note.len(), 1, "{text}");
        assert!(
            note[0].ends_with(
                "bytes cut by codex-autoresearch: logs are capped at 1000 bytes (AUTORESEARCH_LOG_CAP) ...]"
            ),
            "{}",
            note[0]
        );
        // Head, cut and tail account for every byte; whole lines only after the note.
        let cut: usize = note[0][5..].split(' ').next().unwrap().parse().unwrap();
        let after = text.split_once("...]\n").unwrap().1;
        let head = text.split_once("\n[... ").unwrap().0.len();
        assert_eq!(head, 500);
        let total: usize = lines.iter().map(String::len).sum();
        assert_eq!(head + cut + after.len(), total);
        assert!(after.lines().all(|l| l.len() == 10), "{after}");
        assert!(after.len() > 450, "{}", after.len());
    }

    #[test]
    fn one_huge_write_and_unterminated_lines_are_cut_too() {
        let big = vec![b'x'; 10_000];
        let text = String::from_utf8(log_of(1000, &[b"head", &big, b"end"])).unwrap();
        assert!(text.starts_with("headxxx"));
        assert!(
            text.contains("xxx\n[... 9007 bytes cut by codex-autoresearch"),
            "{text}"
        );
        assert!(text.ends_with("xxxend"));
        assert!(text.len() <= 1000 + 200, "{}", text.len());
    }

    #[test]
    fn a_tail_that_starts_on_a_line_boundary_loses_no_line() {
        // Head "aaaa" (4), then 2-byte lines: the ring (4) ends holding "y\nz\n" after
        // dropping "x\n" whole.
        let text =
            String::from_utf8(log_of(8, &[b"aaaa", b"w\n", b"x\n", b"y\n", b"z\n"])).unwrap();
        assert!(text.starts_with("aaaa\n[... 4 bytes cut"), "{text}");
        assert!(text.ends_with("...]\ny\nz\n"), "{text}");
    }

    #[test]
    fn a_zero_cap_keeps_only_the_note() {
        let text = String::from_utf8(log_of(0, &[b"abc\n", b"def"])).unwrap();
        assert_eq!(
            text,
            "[... 7 bytes cut by codex-autoresearch: logs are capped at 0 bytes (AUTORESEARCH_LOG_CAP) ...]\n"
        );
    }

    #[test]
    fn sizes_format_in_binary_units() {
        assert_eq!(format_size(8 << 20), "8 MiB");
        assert_eq!(format_size(512 << 10), "512 KiB");
        assert_eq!(format_size(1000), "1000 bytes");
    }
}
