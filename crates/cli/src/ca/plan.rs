//! The plan of a rotation over several data dirs (one per server of a control plane):
//! which phases `--phase all` runs from where the dirs stand, the one CA they rotate to,
//! and when finishing is allowed. Pure rules over each dir's state, table-tested.

use anyhow::{Result, bail};
use clap::ValueEnum;
use kubeboot_apiserver::ca_rotation::{Phase, Rotation};
use kubeboot_apiserver::datadir::DataDir;

use super::describe;

/// The phase an operator asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum PhaseArg {
    Prepare,
    Switch,
    Finish,
    All,
}

/// Where one data dir's rotation stands, as the plan for several dirs needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct DirState {
    pub(super) phase: Phase,
    /// A switch stopped half-way.
    switch_under_way: bool,
    /// The certificate of the CA the dir rotates to ([`Rotation::target`]).
    target: Option<String>,
    /// The certificate of the CA that signs.
    signing: String,
}

impl DirState {
    fn of(r: &Rotation) -> Self {
        Self {
            phase: r.phase(),
            switch_under_way: r.switch_under_way(),
            target: r.target().map(|c| c.cert_pem().to_owned()),
            signing: r.signing().cert_pem().to_owned(),
        }
    }

    /// Rotated already to `target` and finished.
    pub(super) fn finished_with(&self, target: &str) -> bool {
        self.phase == Phase::Idle && self.signing == target
    }
}

/// The phases `--phase all` runs, from where the data dirs stand: a rotation switched
/// (even half-way) in any dir is carried on; otherwise prepare runs (again: it is
/// idempotent, and publishes the bundle a stopped prepare may not have), then the nodes
/// get their time to trust the new CA before the switch.
pub(super) fn phases_for_all(states: &[DirState]) -> &'static [PhaseArg] {
    use PhaseArg::{Finish, Prepare, Switch};
    if states
        .iter()
        .any(|s| s.phase == Phase::Switched || s.switch_under_way)
    {
        &[Switch, Finish]
    } else {
        &[Prepare, Switch, Finish]
    }
}

/// The one CA the data dirs rotate to; refused when they name different ones.
pub(super) fn common_target(dirs: &[DataDir], states: &[DirState]) -> Result<Option<String>> {
    let mut target: Option<(&DataDir, &String)> = None;
    for (dir, s) in dirs.iter().zip(states) {
        let Some(t) = &s.target else { continue };
        match target {
            Some((first, seen)) if seen != t => bail!(
                "{} and {} rotate to different CAs ({} and {}): give the data dirs of one control plane, or complete one rotation before the other",
                first.root.display(),
                dir.root.display(),
                describe(seen),
                describe(t)
            ),
            Some(_) => {}
            None => target = Some((dir, t)),
        }
    }
    Ok(target.map(|(_, t)| t.clone()))
}

/// Refuses a finish while a data dir does not sign with the new CA yet: finishing the
/// others would publish a bundle without the CA that dir still serves with.
pub(super) fn check_finish(
    dirs: &[DataDir],
    states: &[DirState],
    target: Option<&str>,
) -> Result<()> {
    for (dir, s) in dirs.iter().zip(states) {
        let ready = match s.phase {
            Phase::Switched => true,
            Phase::Idle => target.is_none_or(|t| s.finished_with(t)),
            Phase::Prepared => false,
        };
        if !ready {
            bail!(
                "{} does not sign with the new CA yet: run --phase switch on every data dir first",
                dir.root.display()
            );
        }
    }
    Ok(())
}

pub(super) fn states(dirs: &[DataDir]) -> Result<Vec<DirState>> {
    dirs.iter()
        .map(|d| Ok(DirState::of(&Rotation::read(d)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::{Idle, Prepared, Switched};
    use PhaseArg::{Finish, Prepare, Switch};

    fn st(phase: Phase, target: Option<&str>, signing: &str) -> DirState {
        DirState {
            phase,
            switch_under_way: false,
            target: target.map(str::to_owned),
            signing: signing.into(),
        }
    }

    #[test]
    fn phase_all_carries_on_the_rotation_where_the_data_dirs_stand() {
        let idle = || st(Idle, None, "old");
        let prepared = || st(Prepared, Some("new"), "old");
        let switched = || st(Switched, Some("new"), "new");
        let finished = || st(Idle, None, "new");
        let half = || DirState {
            switch_under_way: true,
            ..prepared()
        };
        let all = &[Prepare, Switch, Finish][..];
        let cases: &[(&[DirState], &[PhaseArg])] = &[
            (&[idle()], all),
            // A prepare that stopped before publishing the bundle runs again; the nodes
            // get their time to trust the new CA before the switch.
            (&[prepared()], all),
            (&[half()], &[Switch, Finish]),
            (&[switched()], &[Switch, Finish]),
            (&[idle(), idle()], all),
            (&[prepared(), idle()], all),
            (&[switched(), prepared()], &[Switch, Finish]),
            // A finish stopped after the first dir: the rest is switched and finished.
            (&[finished(), switched()], &[Switch, Finish]),
        ];
        for (states, want) in cases {
            assert_eq!(phases_for_all(states), *want, "{states:?}");
        }
    }

    #[test]
    fn data_dirs_rotating_to_different_cas_or_not_switched_are_refused() {
        let dirs = [DataDir::new("cp1"), DataDir::new("cp2")];
        let a = st(Prepared, Some("a"), "old");
        let b = st(Prepared, Some("b"), "old");
        let why = common_target(&dirs, &[a.clone(), b])
            .unwrap_err()
            .to_string();
        assert!(why.contains("cp1 and cp2 rotate to different CAs"), "{why}");
        let idle = st(Idle, None, "old");
        assert_eq!(
            common_target(&dirs, &[idle.clone(), a.clone()])
                .unwrap()
                .as_deref(),
            Some("a")
        );
        let switched = st(Switched, Some("a"), "a");
        let why = check_finish(&dirs, &[switched.clone(), a], Some("a"))
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("cp2 does not sign with the new CA yet"),
            "{why}"
        );
        let finished = st(Idle, None, "a");
        assert!(check_finish(&dirs, &[finished, switched.clone()], Some("a")).is_ok());
        assert!(check_finish(&dirs, &[idle.clone(), switched], Some("a")).is_err());
        assert!(check_finish(&dirs, &[idle.clone(), idle], None).is_ok());
    }
}
