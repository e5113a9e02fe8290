//! The `vmlisub` command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = vmlisub::cli::Cli::parse();
    // The operator logs at info unless told otherwise; the CLI commands only
    // print their one-line verdicts.
    let level = cli.log_level.clone().or_else(|| {
        (matches!(cli.command, vmlisub::cli::Command::Operator(_))
            && std::env::var_os("RUST_LOG").is_none())
        .then(|| "info,kube=warn".to_string())
    });
    vmlisub::cli::init_logging(level.as_deref(), cli.log_format == "json");
    vmlisub::cli::run(cli)
}
