//! Real etcd clusters for tests: `etcd` processes (Debian's `etcd-server`) on free loopback
//! ports, each member with its own temporary data dir, killed and removed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

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

/// Where [`free_ports`] looks: below Linux's ephemeral range (32768–60999), so no outgoing
/// connection (etcd's own peer and client dials among them) can take a chosen port before
/// its member binds it.
const PORT_RANGE: std::ops::Range<u16> = 20000..32768;

/// How many times [`EtcdCluster::start_with`] starts afresh on new ports when a member
/// finds its port taken (another test chose it between our check and etcd's bind).
const START_ATTEMPTS: usize = 5;

/// `n` distinct loopback ports in [`PORT_RANGE`] that were free when chosen (all held open
/// until all are chosen), starting at a point that differs per process and per call so
/// that tests starting clusters at once rarely pick the same ones.
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    use std::hash::{BuildHasher, RandomState};
    let span = u64::from(PORT_RANGE.end - PORT_RANGE.start);
    let seed = RandomState::new().hash_one(std::process::id());
    let mut held = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    let mut steps = 0..span;
    while ports.len() < n {
        let Some(step) = steps.next() else {
            return Err(format!(
                "fewer than {n} free loopback ports in {}..{}",
                PORT_RANGE.start, PORT_RANGE.end
            ));
        };
        // In range: the offset is below `span`, which fits in u16.
        let port = PORT_RANGE.start + ((seed % span + step) % span) as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            ports.push(port);
        }
    }
    Ok(ports)
}

/// Numbers each cluster this process starts, for its own data dir: two attempts that chose
/// the same ports must not share (and, when one fails, remove) each other's directory.
static CLUSTERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Why one attempt at starting a cluster failed.
enum StartError {
    /// A member could not bind its port: worth trying again on other ports.
    PortTaken(String),
    Other(String),
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
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let ports = free_ports(2 * members)?;
            match Self::start_on(tls, &ports) {
                Ok(cluster) => return Ok(cluster),
                Err(StartError::PortTaken(log)) => last = log,
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(format!(
            "etcd found its port taken {START_ATTEMPTS} times; the end of the last log:\n{last}"
        ))
    }

    /// One attempt at [`EtcdCluster::start_with`], one member for each pair of ports:
    /// member `i` listens for clients on `free[2 * i]` and for peers on `free[2 * i + 1]`.
    fn start_on(tls: Option<&EtcdTls>, free: &[u16]) -> Result<Self, StartError> {
        let other = StartError::Other;
        let ports: Vec<(u16, u16)> = free.chunks(2).map(|p| (p[0], p[1])).collect();
        let dir = std::env::temp_dir().join(format!(
            "kubeboot-etcd-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| other(format!("{}: {e}", dir.display())))?;
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
                .map_err(|e| other(e.to_string()))?;
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
                    other(format!("starting etcd: {e} (install Debian's etcd-server, or run scripts/test which does)"))
                })?;
            cluster.members.push(Member {
                name,
                client_url,
                child: Some(child),
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(i) = cluster.exited_member() {
                let log = cluster.log_tail(i);
                return Err(if log.contains("address already in use") {
                    StartError::PortTaken(log)
                } else {
                    other(format!(
                        "etcd member m{i} exited; the end of its log:\n{log}"
                    ))
                });
            }
            if cluster.members.iter().all(|m| healthy(&m.client_url)) {
                return Ok(cluster);
            }
            if Instant::now() > deadline {
                return Err(other(format!(
                    "etcd did not become healthy in 30 s; the end of m0's log:\n{}",
                    cluster.log_tail(0)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first member whose process has exited, if any.
    fn exited_member(&mut self) -> Option<usize> {
        self.members.iter_mut().position(|m| {
            m.child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
        })
    }

    /// The last 15 lines of member `i`'s log.
    fn log_tail(&self, i: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join(format!("m{i}.log"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The case a retry is for: a port taken between the choice and etcd's bind is told
    /// apart from every other failure.
    #[test]
    fn a_member_whose_port_is_taken_is_a_port_taken_failure() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut ports = free_ports(1).expect("a free port");
        ports.insert(0, taken.local_addr().expect("addr").port());
        match EtcdCluster::start_on(None, &ports) {
            Err(StartError::PortTaken(log)) => assert!(log.contains("address already in use")),
            Err(StartError::Other(e)) => panic!("not told apart: {e}"),
            Ok(_) => panic!("etcd started on a taken port"),
        }
    }

    #[test]
    fn free_ports_are_distinct_and_below_the_ephemeral_range() {
        let ports = free_ports(6).expect("free ports");
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), 6);
        assert!(ports.iter().all(|p| PORT_RANGE.contains(p)), "{ports:?}");
    }
}
