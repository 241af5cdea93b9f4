//! Where a process's CPU time goes, by thread name (`/proc/<pid>/task/*/stat`), and CPU
//! sets (`0-7,12`) for pinning the server and the load generator apart with `taskset`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU ticks of each thread of a process at one moment, by thread id.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// `tid -> (name, ticks)`.
    threads: BTreeMap<u32, (String, u64)>,
}

/// The CPU time of the threads of one name over an interval.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ThreadCpu {
    /// The thread name (`comm`, at most 15 bytes).
    pub name: String,
    /// How many threads of that name ran.
    pub threads: usize,
    /// Their CPU seconds (user and system).
    pub cpu_seconds: f64,
    /// Their share of the process's CPU over the interval.
    pub share: f64,
}

/// Reads the CPU ticks of every thread of `pid` (threads that end between listing and
/// reading are skipped).
pub fn snapshot(pid: u32) -> Snapshot {
    let mut threads = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Snapshot::default();
    };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(task.path().join("stat"))
            && let Some(parsed) = parse_stat(&stat)
        {
            threads.insert(tid, parsed);
        }
    }
    Snapshot { threads }
}

/// The name (`comm`) and user+system ticks of one `stat` line. The name is in parentheses
/// and may itself hold spaces and parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the name: state(0) ... utime(11) stime(12).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// The CPU each thread name used between two snapshots, most first. A thread that started
/// in between counts from zero.
pub fn between(before: &Snapshot, after: &Snapshot) -> Vec<ThreadCpu> {
    let mut by_name: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for (tid, (name, ticks)) in &after.threads {
        let earlier = before.threads.get(tid).map_or(0, |(_, t)| *t);
        let used = ticks.saturating_sub(earlier);
        let entry = by_name.entry(name).or_default();
        if used > 0 {
            entry.0 += 1;
        }
        entry.1 += used;
    }
    let total: u64 = by_name.values().map(|(_, t)| t).sum();
    let mut rows: Vec<ThreadCpu> = by_name
        .into_iter()
        .filter(|(_, (_, ticks))| *ticks > 0)
        .map(|(name, (threads, ticks))| ThreadCpu {
            name: name.to_owned(),
            threads,
            cpu_seconds: ticks as f64 / TICKS_PER_SECOND,
            share: ticks as f64 / total.max(1) as f64,
        })
        .collect();
    rows.sort_by(|a, b| b.cpu_seconds.total_cmp(&a.cpu_seconds));
    rows
}

/// The one thread that used the most CPU between two snapshots: its name and its share of
/// the process's CPU (a serial bottleneck shows as one thread near 100 %).
pub fn busiest(before: &Snapshot, after: &Snapshot) -> Option<(String, f64)> {
    let used = |tid: &u32, ticks: u64| {
        ticks.saturating_sub(before.threads.get(tid).map_or(0, |(_, t)| *t))
    };
    let total: u64 = after
        .threads
        .iter()
        .map(|(tid, (_, t))| used(tid, *t))
        .sum();
    let (tid, (name, ticks)) = after
        .threads
        .iter()
        .max_by_key(|(tid, (_, t))| used(tid, *t))?;
    Some((name.clone(), used(tid, *ticks) as f64 / total.max(1) as f64))
}

/// Checks a CPU list as `taskset -c` takes it (`0-7`, `0,2,4-6`) and returns its CPUs.
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let number = |s: &str| -> Result<usize> {
            s.trim()
                .parse()
                .with_context(|| format!("CPU list {list:?}: {s:?} is not a CPU number"))
        };
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (number(from)?, number(to)?);
                if from > to {
                    bail!("CPU list {list:?}: the range {part:?} runs backwards");
                }
                cpus.extend(from..=to);
            }
            None => cpus.push(number(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The CPUs a process may run on (`Cpus_allowed_list` in `/proc/<pid>/status`), as a list
/// like `0-7`.
pub fn cpus_allowed(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_owned())
}

/// Pins every thread of this process (and the threads it starts later) to `cpus`.
pub fn pin_self(cpus: &str) -> Result<()> {
    parse_cpu_list(cpus)?;
    let pid = std::process::id().to_string();
    let out = std::process::Command::new("taskset")
        .args(["--all-tasks", "--cpu-list", "--pid", cpus, &pid])
        .output()
        .context("running taskset (util-linux) to pin the load generator")?;
    if !out.status.success() {
        bail!(
            "taskset could not pin the load generator to CPUs {cpus}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_the_thread_name_and_its_user_and_system_ticks() {
        let cases: &[(&str, Option<(&str, u64)>)] = &[
            (
                "4242 (sqlite-writer) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0",
                Some(("sqlite-writer", 175)),
            ),
            (
                "7 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 3 4 0 0",
                Some(("a (b) c", 7)),
            ),
            ("7 (short) R 1 2", None),
            ("no parentheses 1 2 3", None),
            ("7 (x) R 1 2 3 4 5 6 7 8 9 10 many 4", None),
        ];
        for (line, want) in cases {
            let got = parse_stat(line);
            let want = want.map(|(n, t)| (n.to_owned(), t));
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn cpu_is_summed_by_thread_name_over_the_interval_most_first() {
        let snap = |rows: &[(u32, &str, u64)]| Snapshot {
            threads: rows
                .iter()
                .map(|(tid, n, t)| (*tid, ((*n).to_owned(), *t)))
                .collect(),
        };
        let before = snap(&[(1, "main", 50), (2, "worker", 10), (3, "worker", 10)]);
        // Thread 4 started in between; thread 1 did nothing; thread 5 ended (absent).
        let after = snap(&[
            (1, "main", 50),
            (2, "worker", 110),
            (3, "worker", 60),
            (4, "writer", 50),
        ]);
        let rows = between(&before, &after);
        assert_eq!(busiest(&before, &after), Some(("worker".into(), 0.5)));
        assert_eq!(
            rows,
            vec![
                ThreadCpu {
                    name: "worker".into(),
                    threads: 2,
                    cpu_seconds: 1.5,
                    share: 0.75
                },
                ThreadCpu {
                    name: "writer".into(),
                    threads: 1,
                    cpu_seconds: 0.5,
                    share: 0.25
                },
            ]
        );
    }

    #[test]
    fn a_cpu_list_is_read_as_taskset_reads_it() {
        assert_eq!(parse_cpu_list("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_cpu_list("8,0-1,8").unwrap(), vec![0, 1, 8]);
        assert_eq!(parse_cpu_list("5").unwrap(), vec![5]);
        for bad in ["", "a", "3-1", "1-", "0,,1"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?} accepted");
        }
    }
}
