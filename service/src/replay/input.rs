//! Replay inputs: plain files, gzip archives (logrotate's `auth.log.2.gz`) and standard input, read line by
//! line a batch at a time, and the year their classic syslog lines belong to.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use sentra_pipeline::normalize::syslog::{archive_start_year, classic_stamp, MonthDayTime};
use sentra_pipeline::normalize::YearPolicy;

/// Where replay reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file, plain or gzip-compressed.
    Path(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl Source {
    /// `-` is standard input; anything else a path.
    pub fn parse(s: &str) -> Self {
        if s == "-" {
            Source::Stdin
        } else {
            Source::Path(PathBuf::from(s))
        }
    }

    /// The name used in source positions and event ids: the file's name (not its directory, so the same
    /// log replayed from another place keeps its event ids), or `stdin`.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "stdin".to_owned(),
            Source::Path(p) => p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        }
    }

    /// Opens the source for reading, decompressing a gzip file (told by its magic bytes, not its name).
    /// `read` counts the bytes taken from the file or stream itself (compressed, for archives).
    pub fn open(&self, read: Rc<Cell<u64>>) -> io::Result<Box<dyn Read>> {
        match self {
            Source::Stdin => Ok(Box::new(Counted {
                inner: io::stdin().lock(),
                read,
            })),
            Source::Path(p) => {
                let (file, gzip) = open_file(p)?;
                let counted = Counted { inner: file, read };
                Ok(if gzip {
                    gunzip(counted)
                } else {
                    Box::new(counted)
                })
            }
        }
    }

    /// How this source's classic syslog lines get their year when no `--year` was given (see
    /// [`YearPolicy`]): a file is placed so that its last line is not after `now_us`; standard input, which
    /// cannot be read ahead, so that its first line is not.
    pub fn archive_year(&self, now_us: i64) -> io::Result<YearPolicy> {
        let Source::Path(p) = self else {
            return Ok(YearPolicy::Archive);
        };
        let (file, gzip) = open_file(p)?;
        let stamps = if gzip {
            first_and_last_stamps(&mut BufReader::new(gunzip(file)))?
        } else {
            first_and_last_stamps_seeking(file)?
        };
        Ok(match stamps {
            Some((first, last)) => YearPolicy::Fixed(archive_start_year(first, last, now_us)),
            None => YearPolicy::Archive,
        })
    }
}

/// Opens a file at its start, and tells whether it is gzip-compressed (by its magic bytes, not its name).
fn open_file(p: &Path) -> io::Result<(File, bool)> {
    let mut file = File::open(p)?;
    let mut magic = Vec::with_capacity(2);
    (&mut file).take(2).read_to_end(&mut magic)?;
    file.seek(SeekFrom::Start(0))?;
    Ok((file, magic == [0x1f, 0x8b]))
}

/// `compressed`, decompressed (every gzip member in turn, as `gzip -d` reads them).
fn gunzip(compressed: impl Read + 'static) -> Box<dyn Read> {
    Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(
        compressed,
    )))
}

/// How many bytes of a file's start and end are searched for its first and last classic timestamps.
const STAMP_SCAN_BYTES: u64 = 256 * 1024;

/// The first and last classic timestamps of a plain file, from its first and last [`STAMP_SCAN_BYTES`].
fn first_and_last_stamps_seeking(
    mut file: File,
) -> io::Result<Option<(MonthDayTime, MonthDayTime)>> {
    let len = file.metadata()?.len();
    let mut head = Vec::new();
    (&mut file).take(STAMP_SCAN_BYTES).read_to_end(&mut head)?;
    let Some(first) = head.split(|&b| b == b'\n').find_map(classic_stamp) else {
        return Ok(None);
    };
    let from = len.saturating_sub(STAMP_SCAN_BYTES);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let mut lines = tail.split(|&b| b == b'\n');
    if from > 0 {
        lines.next(); // cut by the seek
    }
    Ok(lines
        .rev()
        .find_map(classic_stamp)
        .map(|last| (first, last)))
}

/// The first and last classic timestamps of a stream, reading all of it.
fn first_and_last_stamps(
    lines: &mut impl BufRead,
) -> io::Result<Option<(MonthDayTime, MonthDayTime)>> {
    let (mut first, mut last) = (None, None);
    let mut line = Vec::new();
    while lines.read_until(b'\n', &mut line)? > 0 {
        if let Some(stamp) = classic_stamp(&line) {
            first.get_or_insert(stamp);
            last = Some(stamp);
        }
        line.clear();
    }
    Ok(first.zip(last))
}

/// A reader that counts the bytes read through it.
struct Counted<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// Lines of one source, read in place from a buffer, a run at a time: reading stops after the line a
/// callback refuses and resumes with the next one.
pub struct Lines<R> {
    reader: BufReader<R>,
    /// A line cut by a buffer refill, gathered here.
    split: Vec<u8>,
    /// Reading paused inside the buffer: what is left of it was read before, and reported as refilled.
    paused_mid_buffer: bool,
    ended: bool,
}

impl<R: Read> Lines<R> {
    /// Lines of `reader`, read through a buffer of `capacity` bytes.
    pub fn new(reader: R, capacity: usize) -> Self {
        Self {
            reader: BufReader::with_capacity(capacity, reader),
            split: Vec::new(),
            paused_mid_buffer: false,
            ended: false,
        }
    }

    /// Calls `f` on each line (without its `\n`), in order, until `f` returns `false` (that line counts as
    /// read) or the input ends; `refilled` is called whenever the buffer is refilled, before its lines.
    /// Returns whether the input ended.
    pub fn read(
        &mut self,
        mut f: impl FnMut(&[u8]) -> bool,
        refilled: &mut dyn FnMut(),
    ) -> io::Result<bool> {
        while !self.ended {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                refilled();
                self.ended = true;
                if !self.split.is_empty() {
                    let last = std::mem::take(&mut self.split);
                    f(&last);
                }
                break;
            }
            if !self.paused_mid_buffer {
                refilled();
            }
            let n = buf.len();
            let mut from = 0;
            for end in memchr::memchr_iter(b'\n', buf) {
                let line = if self.split.is_empty() {
                    &buf[from..end]
                } else {
                    self.split.extend_from_slice(&buf[from..end]);
                    &self.split[..]
                };
                let more = f(line);
                self.split.clear();
                from = end + 1;
                if !more {
                    self.reader.consume(from);
                    self.paused_mid_buffer = from < n;
                    return Ok(false);
                }
            }
            self.split.extend_from_slice(&buf[from..]);
            self.reader.consume(n);
            self.paused_mid_buffer = false;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_lines(text: &str, capacity: usize, stop_every: usize) -> Vec<String> {
        let mut lines = Lines::new(text.as_bytes(), capacity);
        let mut out = Vec::new();
        let mut refills = 0;
        loop {
            let mut taken = 0;
            let ended = lines
                .read(
                    |l| {
                        out.push(String::from_utf8(l.to_vec()).unwrap());
                        taken += 1;
                        taken < stop_every
                    },
                    &mut || refills += 1,
                )
                .unwrap();
            if ended {
                return out;
            }
        }
    }

    #[test]
    fn lines_come_whole_and_in_order_whatever_the_buffer_cuts_and_pauses() {
        let text =
            "first\n\nsecond line\r\na much longer line than the buffer holds\nx\nlast, unended";
        let expected: Vec<&str> = text.split('\n').collect();
        for capacity in [1, 2, 3, 7, 16, 64, 1024] {
            for stop_every in [1, 2, 3, 100] {
                assert_eq!(
                    all_lines(text, capacity, stop_every),
                    expected,
                    "buffer of {capacity}, pausing every {stop_every}"
                );
            }
        }
        // A file ending in a newline has no empty last line.
        assert_eq!(all_lines("a\nbb\nccc\n", 4, 2), ["a", "bb", "ccc"]);
        assert!(all_lines("", 4, 2).is_empty());
    }

    #[test]
    fn gzip_archives_are_read_and_dated_by_their_last_line() {
        use std::io::Write;
        let dir = tempfile_dir();
        let plain = "Dec 30 10:00:00 h sshd[1]: a\nJan  2 10:00:00 h sshd[1]: b\n";
        let path = dir.join("auth.log.2.gz");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(plain.as_bytes()).unwrap();
        gz.finish().unwrap();
        let source = Source::Path(path.clone());
        let read = Rc::new(Cell::new(0));
        let mut text = String::new();
        source
            .open(read.clone())
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, plain);
        assert_eq!(read.get(), std::fs::metadata(&path).unwrap().len());
        let dec4_2026 = 1_796_342_400_000_000;
        assert_eq!(
            source.archive_year(dec4_2026).unwrap(),
            YearPolicy::Fixed(2025)
        );
        let plain_path = dir.join("auth.log.1");
        std::fs::write(&plain_path, plain).unwrap();
        assert_eq!(
            Source::Path(plain_path).archive_year(dec4_2026).unwrap(),
            YearPolicy::Fixed(2025)
        );
        let iso = dir.join("iso.log");
        std::fs::write(&iso, "2026-03-14T00:00:00Z h sshd[1]: a\n").unwrap();
        assert_eq!(
            Source::Path(iso).archive_year(dec4_2026).unwrap(),
            YearPolicy::Archive
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sentra-input-{}-{}",
            std::process::id(),
            sentra_schemas::time::now_us()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
