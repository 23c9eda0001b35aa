use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use minirun::cli::{Cli, Update};
use minirun::container::lifecycle;
use oci_spec::runtime::{LinuxPidsBuilder, LinuxResources};

pub fn run(cli: &Cli, u: &Update) -> anyhow::Result<ExitCode> {
    let mut r: LinuxResources = match &u.resources {
        Some(path) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(path)
                    .with_context(|| format!("--resources {}", path.display()))?;
            }
            serde_json::from_str(&text).with_context(|| {
                format!("--resources {}: not linux.resources JSON", path.display())
            })?
        }
        None => LinuxResources::default(),
    };
    if u.memory.is_some()
        || u.memory_reservation.is_some()
        || u.memory_swap.is_some()
        || u.kernel_memory.is_some()
        || u.kernel_memory_tcp.is_some()
    {
        let mut m = r.memory().unwrap_or_default();
        if u.memory.is_some() {
            m.set_limit(u.memory);
        }
        if u.memory_reservation.is_some() {
            m.set_reservation(u.memory_reservation);
        }
        if u.memory_swap.is_some() {
            m.set_swap(u.memory_swap);
        }
        if u.kernel_memory.is_some() {
            m.set_kernel(u.kernel_memory);
        }
        if u.kernel_memory_tcp.is_some() {
            m.set_kernel_tcp(u.kernel_memory_tcp);
        }
        r.set_memory(Some(m));
    }
    if u.cpu_shares.is_some()
        || u.cpu_period.is_some()
        || u.cpu_quota.is_some()
        || u.cpu_rt_period.is_some()
        || u.cpu_rt_runtime.is_some()
        || u.cpuset_cpus.is_some()
        || u.cpuset_mems.is_some()
    {
        let mut c = r.cpu().clone().unwrap_or_default();
        if u.cpu_shares.is_some() {
            c.set_shares(u.cpu_shares);
        }
        if u.cpu_period.is_some() {
            c.set_period(u.cpu_period);
        }
        if u.cpu_quota.is_some() {
            c.set_quota(u.cpu_quota);
        }
        if u.cpu_rt_period.is_some() {
            c.set_realtime_period(u.cpu_rt_period);
        }
        if u.cpu_rt_runtime.is_some() {
            c.set_realtime_runtime(u.cpu_rt_runtime);
        }
        if u.cpuset_cpus.is_some() {
            c.set_cpus(u.cpuset_cpus.clone());
        }
        if u.cpuset_mems.is_some() {
            c.set_mems(u.cpuset_mems.clone());
        }
        r.set_cpu(Some(c));
    }
    if let Some(v) = u.pids_limit {
        r.set_pids(Some(LinuxPidsBuilder::default().limit(v).build()?));
    }
    if let Some(v) = u.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(v));
        r.set_block_io(Some(b));
    }
    lifecycle::update(&cli.root, &u.id, &r)?;
    Ok(ExitCode::SUCCESS)
}
