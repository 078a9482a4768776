//! The CRI log file, in the format kubelet reads:
//! `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\n`.
//!
//! A full line is tagged `F`. A line longer than the limit is cut into `P` (partial) records of
//! the limit's size followed by one `F` with the rest, so kubelet can stitch it back together. A
//! stream's last unterminated line is written as `F` when the container is done. Both streams go
//! to one file in the order the monitor reads them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::records::unix_nanos;

/// The mode kubelet's own log files get from other runtimes.
const LOG_FILE_MODE: u32 = 0o640;
const TAG_FULL: &[u8] = b"F";
const TAG_PARTIAL: &[u8] = b"P";

/// Which of the container's output streams bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static [u8] {
        match self {
            Stream::Stdout => b"stdout",
            Stream::Stderr => b"stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// The log file and the unterminated tail of each stream.
pub(crate) struct ContainerLog {
    path: Option<PathBuf>,
    file: Option<File>,
    max_line: usize,
    pending: [Vec<u8>; 2],
}

impl ContainerLog {
    /// Opens (creating, appending) `path`; with `None` output is discarded.
    pub(crate) fn open(path: Option<&Path>, max_line: usize) -> io::Result<Self> {
        let file = path.map(open_log_file).transpose()?;
        Ok(ContainerLog {
            path: path.map(Path::to_path_buf),
            file,
            max_line: max_line.max(1),
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Logs bytes read from `stream` at `now`.
    pub(crate) fn write(&mut self, stream: Stream, data: &[u8], now: SystemTime) -> io::Result<()> {
        let mut out = Vec::with_capacity(data.len() + 64);
        let stamp = format_rfc3339_nanos(now);
        let pending = &mut self.pending[stream.index()];
        encode_records(&mut out, &stamp, stream, pending, data, self.max_line);
        self.append(&out)
    }

    /// Writes each stream's unterminated last line as a full (`F`) record.
    pub(crate) fn flush_partial(&mut self, now: SystemTime) -> io::Result<()> {
        let stamp = format_rfc3339_nanos(now);
        let mut out = Vec::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(&mut self.pending[stream.index()]);
            if !pending.is_empty() {
                push_record(&mut out, &stamp, stream, TAG_FULL, &pending);
            }
        }
        self.append(&out)
    }

    /// Opens the path again: kubelet renamed the old file to rotate it.
    pub(crate) fn reopen(&mut self) -> io::Result<()> {
        if let Some(path) = &self.path {
            self.file = Some(open_log_file(path)?);
        }
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(file) if !bytes.is_empty() => file.write_all(bytes),
            _ => Ok(()),
        }
    }
}

fn open_log_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_FILE_MODE)
        .open(path)
}

/// Appends the records that `data` completes to `out`, keeping the unterminated rest (at most
/// `max_line` bytes) in `pending`.
fn encode_records(
    out: &mut Vec<u8>,
    stamp: &[u8],
    stream: Stream,
    pending: &mut Vec<u8>,
    data: &[u8],
    max_line: usize,
) {
    let mut rest = data;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let (line, tail) = rest.split_at(nl);
        rest = &tail[1..];
        let mut line = line;
        // The pending bytes start this line; cut P records while it is longer than the limit.
        while pending.len() + line.len() > max_line {
            let take = max_line - pending.len();
            pending.extend_from_slice(&line[..take]);
            push_record(out, stamp, stream, TAG_PARTIAL, pending);
            pending.clear();
            line = &line[take..];
        }
        pending.extend_from_slice(line);
        push_record(out, stamp, stream, TAG_FULL, pending);
        pending.clear();
    }
    // No newline in what is left: keep it, cutting P records only when strictly over the limit
    // (a line of exactly the limit may still end in F).
    while pending.len() + rest.len() > max_line {
        let take = max_line - pending.len();
        pending.extend_from_slice(&rest[..take]);
        push_record(out, stamp, stream, TAG_PARTIAL, pending);
        pending.clear();
        rest = &rest[take..];
    }
    pending.extend_from_slice(rest);
}

fn push_record(out: &mut Vec<u8>, stamp: &[u8], stream: Stream, tag: &[u8], content: &[u8]) {
    out.extend_from_slice(stamp);
    out.push(b' ');
    out.extend_from_slice(stream.name());
    out.push(b' ');
    out.extend_from_slice(tag);
    out.push(b' ');
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// `2006-01-02T15:04:05.999999999Z` with all nine digits: Go's `time.RFC3339Nano` parses it.
pub(crate) fn format_rfc3339_nanos(t: SystemTime) -> Vec<u8> {
    let nanos = unix_nanos(t);
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
    .into_bytes()
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn records(chunks: &[&[u8]], max: usize) -> (Vec<String>, Vec<u8>) {
        let mut out = Vec::new();
        let mut pending = Vec::new();
        for chunk in chunks {
            encode_records(&mut out, b"T", Stream::Stdout, &mut pending, chunk, max);
        }
        let text = String::from_utf8(out).unwrap();
        (text.lines().map(str::to_owned).collect(), pending)
    }

    #[test]
    fn full_lines_across_chunks() {
        let (lines, pending) = records(&[b"hel", b"lo\nwor", b"ld\n", b"tail"], 100);
        assert_eq!(lines, ["T stdout F hello", "T stdout F world"]);
        assert_eq!(pending, b"tail");
    }

    #[test]
    fn long_line_is_split_into_partials() {
        let (lines, pending) = records(&[b"abcdefghij\n"], 4);
        assert_eq!(
            lines,
            ["T stdout P abcd", "T stdout P efgh", "T stdout F ij"]
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn line_of_exactly_the_limit_is_full() {
        let (lines, _) = records(&[b"abcd", b"\n"], 4);
        assert_eq!(lines, ["T stdout F abcd"]);
    }

    #[test]
    fn unterminated_overflow_emits_partials_early() {
        let (lines, pending) = records(&[b"abcdefghij"], 4);
        assert_eq!(lines, ["T stdout P abcd", "T stdout P efgh"]);
        assert_eq!(pending, b"ij");
    }

    #[test]
    fn empty_line_is_an_empty_full_record() {
        let (lines, _) = records(&[b"\n"], 4);
        assert_eq!(lines, ["T stdout F "]);
    }

    #[test]
    fn flush_writes_tail_as_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut log = ContainerLog::open(Some(&path), 100).unwrap();
        log.write(Stream::Stderr, b"a\nb", UNIX_EPOCH).unwrap();
        log.flush_partial(UNIX_EPOCH).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "1970-01-01T00:00:00.000000000Z stderr F a\n1970-01-01T00:00:00.000000000Z stderr F b\n"
        );
    }

    #[test]
    fn timestamps_match_chrono() {
        for secs in [
            0u64,
            951_782_400,
            1_700_000_000,
            4_102_444_799,
            1_709_251_199,
        ] {
            let t = UNIX_EPOCH + Duration::new(secs, 123_456_789);
            let ours = String::from_utf8(format_rfc3339_nanos(t)).unwrap();
            let theirs = chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            assert_eq!(ours, theirs);
        }
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        /// Output a container might write: lines, long lines, empty lines, binary.
        fn output() -> impl Strategy<Value = Vec<u8>> {
            let piece = prop_oneof![
                Just(b"\n".to_vec()),
                "[a-z ]{0,20}\n".prop_map(String::into_bytes),
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(Just(b'x'), 0..40),
            ];
            proptest::collection::vec(piece, 0..10).prop_map(|p| p.concat())
        }

        /// Splits `data` at arbitrary points.
        fn split(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
            cuts.push(0);
            cuts.push(data.len());
            cuts.sort_unstable();
            cuts.windows(2).map(|w| data[w[0]..w[1]].to_vec()).collect()
        }

        /// One parsed log record: the timestamp must be RFC 3339 with nine fraction digits.
        fn parse_record(line: &[u8]) -> Result<(Vec<u8>, bool, Vec<u8>), TestCaseError> {
            let text_end = line.iter().position(|b| *b == b' ').unwrap_or(line.len());
            let stamp = std::str::from_utf8(&line[..text_end]).unwrap();
            prop_assert_eq!(stamp.len(), 30, "{}", stamp);
            prop_assert!(
                chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
                "{}",
                stamp
            );
            let rest = &line[text_end + 1..];
            prop_assert!(
                rest.len() >= 9,
                "short record {:?}",
                String::from_utf8_lossy(line)
            );
            let (stream, rest) = rest.split_at(6);
            prop_assert!(stream == b"stdout" || stream == b"stderr");
            prop_assert_eq!(rest[0], b' ');
            let full = match rest[1] {
                b'F' => true,
                b'P' => false,
                other => return Err(TestCaseError::fail(format!("tag {other}"))),
            };
            prop_assert_eq!(rest[2], b' ');
            Ok((stream.to_vec(), full, rest[3..].to_vec()))
        }

        proptest! {
            // A log file per case.
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// Both streams, split arbitrarily and interleaved, through a real log file: every
            /// line is a valid CRI record, P records are exactly the limit long, F records at
            /// most, and each stream's contents stitched back together are its output.
            #[test]
            fn every_record_is_valid_and_contents_reassemble(
                out in output(),
                err in output(),
                out_cuts in proptest::collection::vec(any::<usize>(), 0..8),
                err_cuts in proptest::collection::vec(any::<usize>(), 0..8),
                max_line in 1usize..48,
                secs in 0u64..4_102_444_800,
                nanos in 0u32..1_000_000_000,
            ) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("c.log");
                let mut log = ContainerLog::open(Some(&path), max_line).unwrap();
                let now = UNIX_EPOCH + Duration::new(secs, nanos);
                let out_chunks = split(&out, &out_cuts);
                let err_chunks = split(&err, &err_cuts);
                for i in 0..out_chunks.len().max(err_chunks.len()) {
                    if let Some(c) = out_chunks.get(i) {
                        log.write(Stream::Stdout, c, now).unwrap();
                    }
                    if let Some(c) = err_chunks.get(i) {
                        log.write(Stream::Stderr, c, now).unwrap();
                    }
                    for p in &log.pending {
                        prop_assert!(p.len() <= max_line);
                    }
                }
                log.flush_partial(now).unwrap();
                let file = std::fs::read(&path).unwrap();
                prop_assert!(file.is_empty() || file.ends_with(b"\n"));
                let mut got: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
                let mut last_full = [true, true];
                for line in file.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let (stream, full, content) = parse_record(line)?;
                    let i = usize::from(stream == b"stderr");
                    if full {
                        prop_assert!(content.len() <= max_line);
                    } else {
                        prop_assert_eq!(content.len(), max_line);
                    }
                    got[i].extend_from_slice(&content);
                    if full {
                        got[i].push(b'\n');
                    }
                    last_full[i] = full;
                }
                // The last line of each stream is flushed as F: drop the newline it did not have.
                for (i, input) in [&out, &err].into_iter().enumerate() {
                    if !input.ends_with(b"\n") && !got[i].is_empty() {
                        prop_assert!(last_full[i]);
                        prop_assert_eq!(got[i].pop(), Some(b'\n'));
                    }
                    prop_assert_eq!(&got[i], input);
                }
            }
        }
    }
}
