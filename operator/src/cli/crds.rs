//! `vmlisub crds`: print the CustomResourceDefinitions generated from the
//! Rust types, so that `crds/` can never drift from the code (a test
//! compares them).

use std::process::ExitCode;

use clap::Args;
use kube::CustomResourceExt;

use crate::api::{Endorser, ImageListSubscription, ImageSubscription};

#[derive(Debug, Args)]
pub struct CrdsArgs {}

/// The three CRDs as one multi-document YAML stream.
pub fn render() -> Result<String, String> {
    let mut out = String::new();
    for crd in [
        Endorser::crd(),
        ImageListSubscription::crd(),
        ImageSubscription::crd(),
    ] {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd).map_err(|err| err.to_string())?);
    }
    Ok(out)
}

pub fn run(_args: &CrdsArgs) -> ExitCode {
    match render() {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: crd-render: {err}");
            ExitCode::from(1)
        }
    }
}
