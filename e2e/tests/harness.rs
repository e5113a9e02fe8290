//! Self-tests of the harness helpers that need no cluster.

use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use vmlisub_e2e::{Process, crate_path, read_yaml_documents};

#[tokio::test]
async fn process_guard_captures_output_and_stops_the_process() -> Result<()> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo starting; echo ready >&2; exec sleep 60"]);
    let mut proc = Process::spawn("sleeper", cmd)?;
    proc.wait_for_log("ready", Duration::from_secs(10)).await?;
    ensure!(
        proc.logs().contains("starting"),
        "stdout not captured: {:?}",
        proc.logs()
    );
    let status = proc.terminate(Duration::from_secs(10)).await?;
    ensure!(
        !status.success(),
        "sleep should have died of SIGTERM: {status}"
    );
    Ok(())
}

#[tokio::test]
async fn wait_for_log_fails_when_the_process_exits() -> Result<()> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo bye; exit 3"]);
    let mut proc = Process::spawn("quitter", cmd)?;
    let started = std::time::Instant::now();
    let result = proc.wait_for_log("never", Duration::from_secs(30)).await;
    let Err(err) = result else {
        bail!("expected an error")
    };
    ensure!(
        format!("{err:#}").contains("exited"),
        "unexpected error: {err:#}"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "did not fail fast"
    );
    Ok(())
}

#[test]
fn smoke_crd_parses() -> Result<()> {
    let docs = read_yaml_documents(crate_path("testdata/smoke-crd.yaml"))?;
    ensure!(docs.len() == 1);
    ensure!(docs[0]["kind"] == "CustomResourceDefinition");
    ensure!(docs[0]["spec"]["versions"][0]["subresources"]["status"].is_object());
    Ok(())
}

#[test]
fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> Result<()> {
    let ports: Vec<u16> = (0..200)
        .map(|_| vmlisub_e2e::operator::free_port())
        .collect::<Result<_>>()?;
    let distinct: std::collections::BTreeSet<&u16> = ports.iter().collect();
    ensure!(distinct.len() == ports.len(), "a port handed out twice");
    ensure!(
        ports.iter().all(|p| (20_000..32_000).contains(p)),
        "{ports:?}"
    );
    // Free: the operator can bind it.
    for port in ports.iter().take(20) {
        std::net::TcpListener::bind(("127.0.0.1", *port))?;
    }
    Ok(())
}
