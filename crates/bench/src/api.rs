//! `kubeboot bench api`: the API path alone. Durable creates one after another, then for
//! each way a client authenticates (its client certificate, a bootstrap token) creates,
//! gets, list pages and watched updates by many clients at once, each with its rate and
//! latency; optionally the server's memory with many objects stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use anyhow::{Result, bail};
use kubeboot_client::Client;
use kubeboot_pki::Kubeconfig;
use serde_json::{Value, json};

use crate::flows::{Token, run_concurrent, token_client};
use crate::stats::{Summary, rate, summarize};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Creates one after another.
    pub sequential: usize,
    /// Creates, and then gets, by `concurrency` clients at once, for each identity.
    pub concurrent: usize,
    /// List pages (of [`LIST_PAGE`] objects) by `concurrency` clients, for each identity.
    pub lists: usize,
    /// Updates each seen through a watch, by `concurrency` watchers, for each identity.
    pub watch_events: usize,
    /// Number of concurrent clients.
    pub concurrency: usize,
    /// Total ConfigMaps to have stored at the end (0: no fill).
    pub fill: usize,
}

/// Objects in one list page: kubectl's default `--chunk-size`.
pub const LIST_PAGE: usize = 500;

/// How long a watcher waits for the event of its update before counting it as an error.
const EVENT_WAIT: Duration = Duration::from_secs(30);

/// The group a bench token's bearer is in, and which the bench namespace's Role is bound to.
const TOKEN_GROUP: &str = "system:bootstrappers:kubeboot:bench";

/// One measured phase.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Phase {
    /// What ran.
    pub name: String,
    /// The user the server took the clients for.
    pub user: String,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Latency of each operation.
    pub latency: Summary,
    /// Failed operations.
    pub errors: usize,
}

/// A way of authenticating, and the client that uses it.
struct Identity {
    /// `certificate` or `token` (`kubeconfig` for an admin kubeconfig without a certificate).
    how: &'static str,
    client: Client,
    user: String,
}

/// Runs the phases against the server `admin_kc` is an admin of.
pub async fn run(
    admin_kc: &Kubeconfig,
    opts: &Options,
    mut after_phase: impl FnMut(&Phase),
) -> Result<Vec<Phase>> {
    let admin = Client::from_kubeconfig(admin_kc)?;
    let ns = format!("bench-{}", std::process::id());
    let _ = admin
        .create::<Value>("/api/v1/namespaces", &json!({"metadata": {"name": ns}}))
        .await?;
    // The admin kubeconfig's own credential: a client certificate, as kubeadm's admin.conf
    // has, or whatever else it holds.
    let how = match kubeboot_client::kubeconfig_client_cert(admin_kc)? {
        Some(_) => "certificate",
        None => "kubeconfig",
    };
    let by_cert = Identity {
        how,
        user: admin.username().await?,
        client: admin.clone(),
    };
    let by_token = bench_token(admin_kc, &admin, &ns).await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let mut phases = Vec::new();
    let mut record = |p: Phase| {
        after_phase(&p);
        phases.push(p);
    };
    if opts.sequential > 0 {
        record(creates(&by_cert, &path, "seq", opts.sequential, 1).await);
    }
    for who in [&by_cert, &by_token] {
        let prefix = who.how;
        if opts.concurrent > 0 {
            record(creates(who, &path, prefix, opts.concurrent, opts.concurrency).await);
            record(gets(who, &path, prefix, opts.concurrent, opts.concurrency).await);
        }
        if opts.lists > 0 {
            record(lists(who, &path, opts.lists, opts.concurrency).await);
        }
        if opts.watch_events > 0 {
            record(watches(who, &path, opts.watch_events, opts.concurrency).await);
        }
    }
    let stored = opts.sequential
        + 2 * opts.concurrent
        + 2 * watcher_count(opts.watch_events, opts.concurrency);
    if opts.fill > stored {
        record(
            creates(
                &by_cert,
                &path,
                "fill",
                opts.fill - stored,
                opts.concurrency,
            )
            .await,
        );
    }
    Ok(phases)
}

/// A client authenticating with a new bootstrap token whose bearer may use ConfigMaps in
/// `ns`: a Role there, bound to the token's extra group. It waits until the server's
/// authorizer has taken the binding in.
async fn bench_token(admin_kc: &Kubeconfig, admin: &Client, ns: &str) -> Result<Identity> {
    let rbac = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}");
    admin
        .create::<Value>(
            &format!("{rbac}/roles"),
            &json!({"metadata": {"name": "kubeboot-bench"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "list", "watch", "update", "patch", "delete"]}]}),
        )
        .await?;
    admin
        .create::<Value>(
            &format!("{rbac}/rolebindings"),
            &json!({"metadata": {"name": "kubeboot-bench"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kubeboot-bench"}, "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": TOKEN_GROUP}]}),
        )
        .await?;
    let client = token_client(
        admin_kc,
        admin,
        Token {
            usages: &["authentication"],
            groups: &[TOKEN_GROUP],
        },
    )
    .await?;
    let probe = format!("/api/v1/namespaces/{ns}/configmaps?limit=1");
    let prober = client.clone().with_timeout(Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < deadline {
        match prober.get::<Value>(&probe).await {
            Ok(_) => {
                return Ok(Identity {
                    how: "token",
                    user: client.username().await?,
                    client,
                });
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "the bench's bootstrap token was not allowed to list ConfigMaps in {ns} within 10 s (the server must authenticate bootstrap tokens and authorize with RBAC): {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    )
}

fn phase(
    op: &str,
    count: usize,
    clients: usize,
    who: &Identity,
    measured: (f64, Summary, usize),
) -> Phase {
    let (ops_per_sec, latency, errors) = measured;
    Phase {
        name: format!("{op} x{count}, {} client(s), {}", clients.max(1), who.how),
        user: who.user.clone(),
        ops_per_sec,
        latency,
        errors,
    }
}

async fn creates(who: &Identity, path: &str, prefix: &str, count: usize, clients: usize) -> Phase {
    let (client, path, prefix) = (who.client.clone(), path.to_owned(), prefix.to_owned());
    let measured = run_concurrent(count, clients, move |i| {
        let (client, path) = (client.clone(), path.clone());
        let body = json!({"metadata": {"name": format!("{prefix}-{i}")}, "data": {"index": i.to_string(), "payload": "x".repeat(64)}});
        async move { client.create::<Value>(&path, &body).await.is_ok() }
    })
    .await;
    phase("create", count, clients, who, measured)
}

/// Gets of the objects `creates` made with the same prefix, in turn.
async fn gets(who: &Identity, path: &str, prefix: &str, count: usize, clients: usize) -> Phase {
    let (client, path, prefix) = (who.client.clone(), path.to_owned(), prefix.to_owned());
    let measured = run_concurrent(count, clients, move |i| {
        let (client, one) = (client.clone(), format!("{path}/{prefix}-{i}"));
        async move { client.get::<Value>(&one).await.is_ok() }
    })
    .await;
    phase("get", count, clients, who, measured)
}

/// First pages of the list, [`LIST_PAGE`] objects each (fewer only when that is all).
async fn lists(who: &Identity, path: &str, count: usize, clients: usize) -> Phase {
    let (client, page) = (who.client.clone(), format!("{path}?limit={LIST_PAGE}"));
    let measured = run_concurrent(count, clients, move |_| {
        let (client, page) = (client.clone(), page.clone());
        async move {
            let Ok(list) = client.get::<Value>(&page).await else {
                return false;
            };
            let items = list
                .get("items")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let more = list.pointer("/metadata/continue").is_some();
            items == LIST_PAGE || (items > 0 && items < LIST_PAGE && !more)
        }
    })
    .await;
    phase(
        &format!("list {LIST_PAGE} a page"),
        count,
        clients,
        who,
        measured,
    )
}

/// The watchers of a watch phase: one per client, and no more than there are events (each
/// watcher makes one ConfigMap).
fn watcher_count(events: usize, clients: usize) -> usize {
    events.min(clients.max(1))
}

/// Each watcher watches one ConfigMap by name and updates it, one update after another:
/// the latency is from sending an update to its event arriving on the watch (the rate
/// counts each watcher's create and watch too).
async fn watches(who: &Identity, path: &str, events: usize, clients: usize) -> Phase {
    let watchers = watcher_count(events, clients);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..watchers {
        let (client, path, next) = (who.client.clone(), path.to_owned(), next.clone());
        let name = format!("{}-watch-{w}", who.how);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let Some(mut watch) = create_and_watch(&client, &path, &name).await else {
                return lat;
            };
            let one = format!("{path}/{name}");
            loop {
                let claimed = next.fetch_add(1, Ordering::Relaxed);
                if claimed >= events {
                    return lat;
                }
                // Unique across watchers and attempts: no event is taken for another.
                let n = (claimed + 1).to_string();
                let sent = Instant::now();
                let patch = json!({"data": {"n": n}});
                if client.merge_patch::<Value>(&one, &patch).await.is_err() {
                    continue;
                }
                let seen = tokio::time::timeout(EVENT_WAIT, async {
                    while let Some(Ok(ev)) = watch.recv().await {
                        let str_at = |p: &str| ev.pointer(p).and_then(Value::as_str);
                        if str_at("/type") == Some("MODIFIED")
                            && str_at("/object/metadata/name") == Some(name.as_str())
                            && str_at("/object/data/n") == Some(n.as_str())
                        {
                            return true;
                        }
                    }
                    false
                })
                .await;
                if seen != Ok(true) {
                    // The watch ended or stalled: this watcher stops.
                    return lat;
                }
                lat.push(sent.elapsed());
            }
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap_or_default());
    }
    // Whatever was not seen through a watch failed, the updates no watcher was left to make
    // included.
    let errors = events.saturating_sub(lat.len());
    let measured = (
        rate(lat.len(), started.elapsed()),
        summarize(&mut lat),
        errors,
    );
    phase("watched update", events, watchers, who, measured)
}

/// Creates the ConfigMap `name` and watches it by name from the version it was created at.
async fn create_and_watch(
    client: &Client,
    path: &str,
    name: &str,
) -> Option<tokio::sync::mpsc::Receiver<Result<Value, kubeboot_client::ClientError>>> {
    let created: Value = client
        .create(
            path,
            &json!({"metadata": {"name": name}, "data": {"n": "0"}}),
        )
        .await
        .ok()?;
    let rv = created.pointer("/metadata/resourceVersion")?.as_str()?;
    client
        .watch(&format!(
            "{path}?fieldSelector=metadata.name%3D{name}&resourceVersion={rv}"
        ))
        .await
        .ok()
}
