//! The log backend (`--audit-log-path`): one JSON event per line, to a file made 0600 or to
//! standard output (`-`), rotated as kube-apiserver's (lumberjack) rotates it — when the
//! next line would pass `--audit-log-maxsize` megabytes the file is renamed
//! `<name>-<UTC 2006-01-02T15-04-05.000><ext>` and a new one begun; backups past
//! `--audit-log-maxbackup` or older than `--audit-log-maxage` days are removed. Lines are
//! written by a thread of their own, through a queue of 10,000 events. When the queue is
//! full (the disk far behind), `--audit-log-mode` decides as kube-apiserver's does:
//! `blocking` (the default) makes the request wait for room, so no event is lost; `batch`
//! drops the event and counts it. On shutdown the queue is written out before the server
//! exits.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime};

/// Where and how the log is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// The file, or `-` for standard output.
    pub path: PathBuf,
    /// Days a backup is kept (0: no limit).
    pub max_age_days: u32,
    /// Backups kept (0: all).
    pub max_backups: usize,
    /// Megabytes before the file is rotated (0: 100).
    pub max_size_mb: u64,
    /// What a full queue does to a request.
    pub mode: Mode,
}

/// How events reach the log when it is behind (kube-apiserver's `--audit-log-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The request waits for room in the queue: no event is dropped.
    #[default]
    Blocking,
    /// The event is dropped and counted.
    Batch,
}

impl Mode {
    /// Reads a `--audit-log-mode` value.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "blocking" => Ok(Self::Blocking),
            "batch" => Ok(Self::Batch),
            "blocking-strict" => Err(
                "blocking-strict is not supported: kubeboot records no RequestReceived stage whose failure could fail a request; use blocking".into(),
            ),
            other => Err(format!(
                "invalid audit log mode {other}, allowed modes are \"batch,blocking,blocking-strict\""
            )),
        }
    }
}

/// The writer of audit lines.
pub struct AuditLog {
    entries: SyncSender<Entry>,
    mode: Mode,
    dropped: Arc<AtomicU64>,
}

/// What the writer thread is given.
enum Entry {
    /// An event's line, written at a time.
    Line(SystemTime, Vec<u8>),
    /// Flush what came before, then say so.
    Flush(SyncSender<()>),
}

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("--audit-log-path {path}: {source}")]
pub struct LogError {
    path: String,
    #[source]
    source: std::io::Error,
}

impl AuditLog {
    /// Opens the log (creating it 0600) and starts its writer.
    pub fn open(options: LogOptions) -> Result<Self, LogError> {
        Self::open_with_queue(options, QUEUE)
    }

    fn open_with_queue(options: LogOptions, queue: usize) -> Result<Self, LogError> {
        let shown = options.path.display().to_string();
        let err = |source| LogError {
            path: shown.clone(),
            source,
        };
        let mode = options.mode;
        let sink = match options.path.as_os_str() == "-" {
            true => Sink::Stdout,
            false => {
                let file = open_private(&options.path).map_err(err)?;
                let size = file.metadata().map_err(err)?.len();
                Sink::File {
                    out: BufWriter::new(file),
                    size,
                    options,
                }
            }
        };
        let (entries, rx) = sync_channel(queue);
        let dropped = Arc::new(AtomicU64::new(0));
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_entries(sink, &rx))
            .map_err(err)?;
        Ok(Self {
            entries,
            mode,
            dropped,
        })
    }

    /// Queues one event line, written at `now`; when the queue is full, waits for room
    /// (`blocking`) or drops the line (`batch`).
    pub fn write(&self, now: SystemTime, line: Vec<u8>) {
        let lost = match self.entries.try_send(Entry::Line(now, line)) {
            Ok(()) => false,
            Err(TrySendError::Full(entry)) => match self.mode {
                Mode::Blocking => !send_waiting(&self.entries, entry),
                Mode::Batch => true,
            },
            Err(TrySendError::Disconnected(_)) => true,
        };
        if lost {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "the audit log is behind: events were dropped");
            }
        }
    }

    /// Waits, at most `limit`, until every line queued before this call is written and
    /// flushed; whether that happened.
    pub fn flush(&self, limit: Duration) -> bool {
        let (done, flushed) = sync_channel(1);
        send_waiting(&self.entries, Entry::Flush(done)) && flushed.recv_timeout(limit).is_ok()
    }
}

/// Sends `entry`, waiting for room. On a worker of a multi-threaded runtime the wait is
/// announced (`block_in_place`), so the worker's other tasks move to another thread.
fn send_waiting(entries: &SyncSender<Entry>, entry: Entry) -> bool {
    let send = || entries.send(entry).is_ok();
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(send),
        _ => send(),
    }
}

enum Sink {
    Stdout,
    File {
        out: BufWriter<File>,
        size: u64,
        options: LogOptions,
    },
}

fn write_entries(mut sink: Sink, rx: &Receiver<Entry>) {
    while let Ok(first) = rx.recv() {
        // A burst is written in large writes: flushed once the queue is empty.
        let mut next = Some(first);
        while let Some(entry) = next {
            match entry {
                Entry::Line(now, line) => {
                    if let Err(e) = sink.write(now, &line) {
                        tracing::warn!(error = %e, "writing the audit log failed");
                    }
                }
                Entry::Flush(done) => {
                    let _ = sink.flush();
                    let _ = done.send(());
                }
            }
            next = rx.try_recv().ok();
        }
        let _ = sink.flush();
    }
}

impl Sink {
    fn write(&mut self, now: SystemTime, line: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line)?;
                out.write_all(b"\n")
            }
            Sink::File { out, size, options } => {
                let len = line.len() as u64 + 1;
                if *size > 0 && *size + len > max_bytes(options) {
                    out.flush()?;
                    *out = BufWriter::new(rotate(options, now)?);
                    *size = 0;
                }
                out.write_all(line)?;
                out.write_all(b"\n")?;
                *size += len;
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout => std::io::stdout().flush(),
            Sink::File { out, .. } => out.flush(),
        }
    }
}

fn max_bytes(options: &LogOptions) -> u64 {
    let mb = if options.max_size_mb == 0 {
        100
    } else {
        options.max_size_mb
    };
    mb.saturating_mul(1024 * 1024)
}

/// Renames the log to its backup name, removes backups past the limits, opens a new log.
fn rotate(options: &LogOptions, now: SystemTime) -> std::io::Result<File> {
    std::fs::rename(&options.path, backup_name(&options.path, now))?;
    let backups = list_backups(&options.path);
    for old in backups_to_remove(backups, now, options.max_age_days, options.max_backups) {
        let _ = std::fs::remove_file(old);
    }
    open_private(&options.path)
}

/// Opens `path` for appending, created 0600 (its directory 0700 when it is made).
fn open_private(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// `<dir>/<stem>-<UTC 2006-01-02T15-04-05.000><ext>`.
pub fn backup_name(path: &Path, t: SystemTime) -> PathBuf {
    let (stem, ext) = stem_and_ext(path);
    path.with_file_name(format!("{stem}-{}{ext}", backup_time(t)))
}

/// The backups of `path` that the limits remove: past `max_backups` (newest kept), or
/// older than `max_age_days`.
pub fn backups_to_remove(
    mut backups: Vec<(PathBuf, SystemTime)>,
    now: SystemTime,
    max_age_days: u32,
    max_backups: usize,
) -> Vec<PathBuf> {
    backups.sort_by_key(|b| std::cmp::Reverse(b.1));
    let max_age = Duration::from_secs(u64::from(max_age_days) * 86_400);
    backups
        .into_iter()
        .enumerate()
        .filter(|(i, (_, t))| {
            (max_backups > 0 && *i >= max_backups)
                || (max_age_days > 0 && now.duration_since(*t).is_ok_and(|age| age > max_age))
        })
        .map(|(_, (p, _))| p)
        .collect()
}

/// The backups beside `path`, with the times their names carry.
fn list_backups(path: &Path) -> Vec<(PathBuf, SystemTime)> {
    let (stem, ext) = stem_and_ext(path);
    let prefix = format!("{stem}-");
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stamp = name.strip_prefix(&prefix)?.strip_suffix(&ext)?;
            Some((e.path(), parse_backup_time(stamp)?))
        })
        .collect()
}

fn stem_and_ext(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rfind('.').filter(|i| *i > 0) {
        Some(i) => (name[..i].to_owned(), name[i..].to_owned()),
        None => (name, String::new()),
    }
}

/// A backup's time stamp: the event time to the millisecond, with `-` for `:` (lumberjack's
/// `2006-01-02T15-04-05.000`).
fn backup_time(t: SystemTime) -> String {
    super::micro_time(t)[..23].replace(':', "-")
}

fn parse_backup_time(s: &str) -> Option<SystemTime> {
    let (date, clock) = s.split_once('T')?;
    let (clock, millis) = clock.split_once('.')?;
    let num = |p: &str| p.parse::<u16>().ok();
    let mut d = date.splitn(3, '-').map(num);
    let mut c = clock.splitn(3, '-').map(num);
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hour, minute, second) = (c.next()??, c.next()??, c.next()??);
    let date = time::Date::from_calendar_date(
        i32::from(year),
        time::Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms_milli(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        num(millis)?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .into(),
    )
}

/// Events queued before new ones are dropped.
const QUEUE: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn backups_are_named_as_lumberjack_names_them() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_868_520_123);
        for (path, want) in [
            (
                "/var/log/audit.log",
                "/var/log/audit-2025-12-04T17-15-20.123.log",
            ),
            ("audit", "audit-2025-12-04T17-15-20.123"),
            ("a.b.json", "a.b-2025-12-04T17-15-20.123.json"),
        ] {
            assert_eq!(
                backup_name(Path::new(path), t),
                PathBuf::from(want),
                "{path}"
            );
        }
        assert_eq!(parse_backup_time("2025-12-04T17-15-20.123"), Some(t));
    }

    #[test]
    fn backups_past_the_count_or_the_age_are_removed() {
        let now = SystemTime::UNIX_EPOCH + 100 * DAY;
        let backup = |days_ago: u32| (PathBuf::from(format!("b{days_ago}")), now - days_ago * DAY);
        let all = vec![backup(1), backup(5), backup(2), backup(40)];
        for (case, age, count, want) in [
            ("no limits", 0, 0, vec![]),
            ("the two newest", 0, 2, vec!["b5", "b40"]),
            ("a month", 30, 0, vec!["b40"]),
            ("both", 3, 3, vec!["b5", "b40"]),
        ] {
            let got = backups_to_remove(all.clone(), now, age, count);
            let got: Vec<_> = got.iter().map(|p| p.display().to_string()).collect();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn the_log_rotates_when_full_and_keeps_its_backups_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/audit.log");
        let options = LogOptions {
            path: path.clone(),
            max_age_days: 0,
            max_backups: 2,
            max_size_mb: 1,
            mode: Mode::Blocking,
        };
        let mut sink = Sink::File {
            out: BufWriter::new(open_private(&path).unwrap()),
            size: 0,
            options,
        };
        let line = vec![b'x'; 300 * 1024];
        let start = SystemTime::UNIX_EPOCH + 1000 * DAY;
        for i in 0..14u32 {
            sink.write(start + i * Duration::from_secs(1), &line)
                .unwrap();
        }
        sink.flush().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "the log and two backups: {names:?}");
        for name in &names {
            let p = path.parent().unwrap().join(name);
            let meta = std::fs::metadata(&p).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
            assert!(meta.len() <= 1024 * 1024, "{name} is at most 1 MiB");
        }
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_blocking_log_loses_no_event_however_far_behind_and_flushes_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let options = LogOptions {
            path: path.clone(),
            max_age_days: 0,
            max_backups: 0,
            max_size_mb: 0,
            mode: Mode::Blocking,
        };
        let log = Arc::new(AuditLog::open_with_queue(options, 1).unwrap());
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        log.write(
                            kubeboot_api::Clock::now(&kubeboot_api::SystemClock),
                            format!("{w}-{i}").into_bytes(),
                        );
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert!(log.flush(Duration::from_secs(30)), "flushed");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 8 * 500, "every event, none dropped");
        assert_eq!(log.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn modes_are_read_as_kube_apiserver_reads_them() {
        assert_eq!(Mode::parse("blocking"), Ok(Mode::Blocking));
        assert_eq!(Mode::parse("batch"), Ok(Mode::Batch));
        assert!(
            Mode::parse("blocking-strict")
                .unwrap_err()
                .contains("use blocking")
        );
        assert_eq!(
            Mode::parse("async").unwrap_err(),
            r#"invalid audit log mode async, allowed modes are "batch,blocking,blocking-strict""#
        );
    }
}
