//! Bashu's services as separate processes, one per target as the pods run them: started on free
//! ports, waited for until ready, and their resident memory read from `/proc`.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// One running `bashu --target <target>`; killed when dropped.
pub(crate) struct Service {
    pub(crate) target: &'static str,
    pub(crate) http_port: u16,
    pub(crate) grpc_port: u16,
    child: tokio::process::Child,
}

/// The `bashu` binary beside this one (`make bench` builds both in release), or
/// `BENCH_BASHU_BINARY` (not `BASHU_…`: bashu reads every such variable as configuration).
pub(crate) fn bashu_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("BENCH_BASHU_BINARY") {
        return Ok(path.into());
    }
    let here = std::env::current_exe()?;
    let beside = here.with_file_name("bashu");
    if !beside.is_file() {
        bail!("{} not found: build it (cargo build --release -p bashu) or set BENCH_BASHU_BINARY", beside.display());
    }
    Ok(beside)
}

impl Service {
    /// Starts `target` against `nats` under `prefix` with the bench's settings plus `settings`,
    /// and waits until its `/readyz` answers 200.
    pub(crate) async fn start(
        binary: &Path,
        target: &'static str,
        nats: &str,
        prefix: &str,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let (http_port, grpc_port) = (bashu_test_support::free_port(), bashu_test_support::free_port());
        let child = tokio::process::Command::new(binary)
            .args(["--target", target])
            .env("BASHU_NATS__URL", nats)
            .env("BASHU_NATS__PREFIX", prefix)
            .env("BASHU_HTTP__LISTEN", format!("127.0.0.1:{http_port}"))
            .env("BASHU_GRPC__LISTEN", format!("127.0.0.1:{grpc_port}"))
            // The bench is one county sending as fast as it is answered: no rate limit.
            .env("BASHU_INGEST__RATE_PER_MINUTE", "100000000")
            .env("BASHU_INGEST__RATE_BURST", "1000000")
            .env("RUST_LOG", "warn")
            .envs(settings.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut service = Self { target, http_port, grpc_port, child };
        service.wait_ready().await?;
        Ok(service)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = bashu::http_client();
        let url = format!("http://127.0.0.1:{}/readyz", self.http_port);
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait()? {
                bail!("bashu --target {} exited while starting: {status}", self.target);
            }
            if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("bashu --target {} was not ready within a minute", self.target)
    }

    /// Resident memory now, in bytes (`VmRSS`).
    pub(crate) fn resident_bytes(&self) -> Option<u64> {
        resident_bytes(self.child.id()?)
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resident memory of one service, idle and at its highest under load, in MiB.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Memory {
    pub(crate) target: &'static str,
    pub(crate) idle_mib: f64,
    pub(crate) load_peak_mib: f64,
}

/// Samples the resident memory of some processes every 50 ms until stopped, keeping the peak.
pub(crate) struct PeakSampler {
    peaks: Arc<Mutex<Vec<u64>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl PeakSampler {
    pub(crate) fn start(pids: Vec<u32>) -> Self {
        let peaks = Arc::new(Mutex::new(vec![0; pids.len()]));
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (peaks, stop) = (peaks.clone(), stop.clone());
            async move {
                while !stop.is_cancelled() {
                    for (index, pid) in pids.iter().enumerate() {
                        let now = resident_bytes(*pid).unwrap_or(0);
                        let mut peaks = peaks.lock().expect("peaks");
                        peaks[index] = peaks[index].max(now);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Self { peaks, stop, task }
    }

    /// The peak of each process, in the order given.
    pub(crate) async fn stop(self) -> Vec<u64> {
        self.stop.cancel();
        let _ = self.task.await;
        self.peaks.lock().expect("peaks").clone()
    }
}

/// CPU time a process has used so far (user and system), from `/proc/<pid>/stat`. Linux counts it
/// in clock ticks of 1/100 s (`CLK_TCK` is 100 on every Linux the project runs on).
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let (user, system): (u64, u64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    Some((user + system) as f64 / 100.0)
}

pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
