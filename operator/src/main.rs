//! The `vmlisub` command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = vmlisub::cli::Cli::parse();
    vmlisub::cli::init_logging(cli.log_level.as_deref());
    vmlisub::cli::run(cli)
}
