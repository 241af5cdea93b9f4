//! The progress of a benchmark run, as it goes.

/// How far a run is: a bar redrawn in place on a terminal, a line a second otherwise.
pub(super) struct Progress {
    total: usize,
    started: tokio::time::Instant,
    last: std::sync::Mutex<tokio::time::Instant>,
    terminal: bool,
}

impl Progress {
    pub(super) fn new(total: usize) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            total,
            started: now,
            last: std::sync::Mutex::new(now),
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }

    pub(super) fn update(&self, done: usize) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let every = if self.terminal {
            std::time::Duration::from_millis(100)
        } else {
            std::time::Duration::from_secs(1)
        };
        if done != self.total && last.elapsed() < every {
            return;
        }
        *last = tokio::time::Instant::now();
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        if self.terminal {
            eprint!(
                "\r{} {done}/{} admitted, {rate:.0} nodes/s ",
                progress_bar(done, self.total, 30),
                self.total
            );
            if done == self.total {
                eprintln!();
            }
        } else {
            eprintln!("admitted {done}/{} ({rate:.0} nodes/s)", self.total);
        }
    }
}

/// `[#####.....]`: `width` cells, filled in proportion to `done` of `total`.
fn progress_bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bar_fills_in_proportion() {
        assert_eq!(super::progress_bar(0, 10, 10), "[..........]");
        assert_eq!(super::progress_bar(5, 10, 10), "[#####.....]");
        assert_eq!(super::progress_bar(10, 10, 10), "[##########]");
        assert_eq!(super::progress_bar(0, 0, 4), "[####]");
    }
}
