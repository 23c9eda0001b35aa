use std::io::Read;

use anyhow::Context;
use minirun::cli::{Cli, Update};
use minirun::container::lifecycle;
use oci_spec::runtime::{LinuxPidsBuilder, LinuxResources};

pub fn run(cli: &Cli, u: &Update) -> anyhow::Result<u8> {
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
    // A flag given replaces the file's value; the rest stays as it was.
    let mut m = r.memory().unwrap_or_default();
    m.set_limit(u.memory.or(m.limit()));
    m.set_reservation(u.memory_reservation.or(m.reservation()));
    m.set_swap(u.memory_swap.or(m.swap()));
    m.set_kernel(u.kernel_memory.or(m.kernel()));
    m.set_kernel_tcp(u.kernel_memory_tcp.or(m.kernel_tcp()));
    r.set_memory(Some(m));
    let mut c = r.cpu().clone().unwrap_or_default();
    c.set_shares(u.cpu_shares.or(c.shares()));
    c.set_period(u.cpu_period.or(c.period()));
    c.set_quota(u.cpu_quota.or(c.quota()));
    c.set_realtime_period(u.cpu_rt_period.or(c.realtime_period()));
    c.set_realtime_runtime(u.cpu_rt_runtime.or(c.realtime_runtime()));
    c.set_cpus(u.cpuset_cpus.clone().or_else(|| c.cpus().clone()));
    c.set_mems(u.cpuset_mems.clone().or_else(|| c.mems().clone()));
    r.set_cpu(Some(c));
    if let Some(v) = u.pids_limit {
        r.set_pids(Some(LinuxPidsBuilder::default().limit(v).build()?));
    }
    if let Some(v) = u.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(v));
        r.set_block_io(Some(b));
    }
    lifecycle::update(&cli.root, &u.id, &r)?;
    Ok(0)
}
