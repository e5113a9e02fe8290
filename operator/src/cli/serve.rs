//! `vmlisub serve`: the read-only artifact server over a cache directory,
//! so that Glance web-download or KubeVirt CDI can import images that
//! `vmlisub sync` verified. It serves everyone who can reach it (there is
//! no cluster to check tokens against): bind it where only the importers
//! can connect.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::server::artifacts::Artifacts;
use crate::store::CacheStore;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The image cache written by `vmlisub sync` (or the operator).
    #[arg(long, env = "VMLISUB_CACHE_DIR", default_value = "/var/cache/vmimages")]
    pub cache_dir: PathBuf,

    /// Address to listen on (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub limits: super::ServerLimitArgs,
}

pub fn run(args: &ServeArgs) -> ExitCode {
    let store = match CacheStore::open(&args.cache_dir) {
        Ok(store) => store,
        Err(err) => return super::fail(&err),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2);
    let runtime = match super::runtime(builder) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(listener) => listener,
            Err(err) => {
                eprintln!("error: listen: cannot listen on {}: {err}", args.listen);
                return ExitCode::from(1);
            }
        };
        match listener.local_addr() {
            Ok(address) => println!(
                "serving {} on http://{address}/images/",
                args.cache_dir.display()
            ),
            Err(err) => eprintln!("error: listen: {err}"),
        }
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let served = Arc::new(Artifacts::images(store));
        match crate::server::http::serve(listener, served, args.limits.limits()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: listen: {err}");
                ExitCode::from(1)
            }
        }
    })
}
