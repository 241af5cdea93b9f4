//! Real etcd clusters for tests: `etcd` processes (Debian's `etcd-server`) on free loopback
//! ports, each member with its own temporary data dir, killed and removed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One member.
struct Member {
    name: String,
    client_url: String,
    child: Option<Child>,
}

/// TLS for the members' client URLs: their serving certificate (valid for 127.0.0.1) and
/// the CA whose client certificates they require.
#[derive(Clone, Debug)]
pub struct EtcdTls {
    /// `--trusted-ca-file`: clients must present a certificate from this CA.
    pub ca: PathBuf,
    /// `--cert-file`.
    pub cert: PathBuf,
    /// `--key-file`.
    pub key: PathBuf,
}

/// A running etcd cluster on loopback.
pub struct EtcdCluster {
    members: Vec<Member>,
    dir: PathBuf,
}

/// `n` distinct free loopback ports (all held open until all are chosen).
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let held = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| e.to_string())?;
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string()))
        .collect()
}

/// Whether a member answers `/health` as healthy (over TLS: whether it accepts connections).
fn healthy(client_url: &str) -> bool {
    if let Some(addr) = client_url.strip_prefix("https://") {
        return TcpStream::connect(addr).is_ok();
    }
    let Some(addr) = client_url.strip_prefix("http://") else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.take(4096).read_to_string(&mut out);
    out.contains("\"health\":\"true\"")
}

impl EtcdCluster {
    /// Starts `members` etcd members forming one cluster and waits (at most 30 s) until
    /// every member is healthy.
    pub fn start(members: usize) -> Result<Self, String> {
        Self::start_with(members, None)
    }

    /// As [`EtcdCluster::start`], with `https` client URLs requiring client certificates
    /// when `tls` is given.
    pub fn start_with(members: usize, tls: Option<&EtcdTls>) -> Result<Self, String> {
        let free = free_ports(2 * members)?;
        let ports: Vec<(u16, u16)> = free.chunks(2).map(|p| (p[0], p[1])).collect();
        let dir =
            std::env::temp_dir().join(format!("kubeboot-etcd-{}-{}", std::process::id(), free[0]));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let initial = initial.join(",");
        let token = format!("kubeboot-test-{}", free[0]);
        let mut cluster = Self {
            members: Vec::new(),
            dir,
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("m{i}");
            let scheme = if tls.is_some() { "https" } else { "http" };
            let client_url = format!("{scheme}://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let log = std::fs::File::create(cluster.dir.join(format!("{name}.log")))
                .map_err(|e| e.to_string())?;
            let mut cmd = Command::new("etcd");
            if let Some(t) = tls {
                cmd.arg("--cert-file")
                    .arg(&t.cert)
                    .arg("--key-file")
                    .arg(&t.key)
                    .arg("--trusted-ca-file")
                    .arg(&t.ca)
                    .arg("--client-cert-auth");
            }
            let child = cmd
                .args(["--name", &name])
                .arg("--data-dir")
                .arg(cluster.dir.join(&name))
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", &token])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| {
                    format!("starting etcd: {e} (install Debian's etcd-server, or run scripts/test which does)")
                })?;
            cluster.members.push(Member {
                name,
                client_url,
                child: Some(child),
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster
            .members
            .iter()
            .all(|m| m.child.is_none() || healthy(&m.client_url))
        {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(cluster.dir.join("m0.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                return Err(format!(
                    "etcd did not become healthy in 30 s; the end of m0's log:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(cluster)
    }

    /// The client URLs of all members (killed ones included, as a client would have them).
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// `--etcd-servers` for all members.
    pub fn servers_flag(&self) -> String {
        self.endpoints().join(",")
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The name of member `i` (`m0`, `m1`, …).
    pub fn name(&self, i: usize) -> &str {
        &self.members[i].name
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
