//! Logs as Kubernetes components write them, to standard error: `--logging-format text`
//! (the default) or `json` (one object a line, as `--logging-format=json` gives), and `-v N`
//! verbosity on klog's scale — 0 to 3 what an operator needs, 4 debug, 5 and above trace.
//! Without `-v`, `RUST_LOG` chooses (a directive per module); without either, level 0.

use clap::{Args, ValueEnum};

/// The logging flags every command takes.
#[derive(Args, Clone, Debug)]
pub(crate) struct LoggingArgs {
    /// The log format: text or json.
    #[arg(long, global = true, value_enum, default_value_t = LoggingFormat::Text)]
    logging_format: LoggingFormat,
    /// The log verbosity, as klog's -v: 0-3 info, 4 debug, 5 and above trace.
    #[arg(short = 'v', long = "v", global = true, value_name = "N")]
    verbosity: Option<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LoggingFormat {
    Text,
    Json,
}

/// The `tracing` level of a klog verbosity.
fn level(verbosity: u8) -> &'static str {
    match verbosity {
        0..=3 => "info",
        4 => "debug",
        _ => "trace",
    }
}

/// Installs the process's logger.
pub(crate) fn init(args: &LoggingArgs) {
    let filter = match args.verbosity {
        Some(v) => tracing_subscriber::EnvFilter::new(level(v)),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match args.logging_format {
        LoggingFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LoggingFormat::Json => builder.json().flatten_event(true).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn klog_verbosity_maps_to_levels() {
        assert_eq!(level(0), "info");
        assert_eq!(level(2), "info");
        assert_eq!(level(4), "debug");
        assert_eq!(level(5), "trace");
        assert_eq!(level(10), "trace");
    }
}
