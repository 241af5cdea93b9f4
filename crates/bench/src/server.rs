//! A `kubeboot server` child process on a temporary data dir, for `--self` runs: how long it
//! takes to become ready, and its CPU time and memory from `/proc`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use anyhow::{Context, Result, bail};

/// A server started by the bench.
pub struct SelfServer {
    child: ChildGuard,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The data dir.
    pub dir: PathBuf,
    /// From spawn to `/readyz` answering 200.
    pub ready_after: Duration,
    _tmp: tempfile::TempDir,
}

impl SelfServer {
    /// Starts `exe server` on loopback with a fresh data dir and waits for `/readyz`;
    /// with `cpus` (a `taskset -c` list), the server runs on those CPUs only.
    pub async fn start(exe: &std::path::Path, extra: &[&str], cpus: Option<&str>) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("cluster");
        let started = Instant::now();
        let mut command = match cpus {
            Some(list) => {
                crate::threads::parse_cpu_list(list)?;
                let mut c = Command::new("taskset");
                c.args(["--cpu-list", list]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let mut child: Child = command
            .args([
                "server",
                "--secure-port",
                "0",
                "--bind-address",
                "127.0.0.1",
                "--data-dir",
            ])
            .arg(&dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting kubeboot server")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let child = ChildGuard(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("kubeboot API server listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .context("the server did not print its address within 60s")?;
        let kc =
            kubeboot_pki::Kubeconfig::from_yaml(&std::fs::read_to_string(dir.join("admin.conf"))?)?;
        let client = kubeboot_client::Client::from_kubeconfig(&kc)?;
        for _ in 0..6000 {
            if let Ok(r) = client
                .send(kubeboot_client::Method::GET, "/readyz", None)
                .await
                && r.status.as_u16() == 200
            {
                return Ok(Self {
                    child,
                    url,
                    dir,
                    ready_after: started.elapsed(),
                    _tmp: tmp,
                });
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        bail!("the server never became ready")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// The admin kubeconfig.
    pub fn admin_kubeconfig(&self) -> Result<kubeboot_pki::Kubeconfig> {
        Ok(kubeboot_pki::Kubeconfig::from_yaml(
            &std::fs::read_to_string(self.dir.join("admin.conf"))?,
        )?)
    }
}

/// Stops the server process when dropped, on every path out (errors and panics too): asks
/// it to stop (SIGTERM, so that it gives up its leader Lease and a run against the same etcd
/// right after does not wait out the Lease), and kills it if it has not ended within 10 s.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let asked = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if asked {
            for _ in 0..1000 {
                if matches!(self.0.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Resident and peak memory of a process, in KiB (`VmRSS`, `VmHWM`).
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User+system CPU seconds of a process.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}
