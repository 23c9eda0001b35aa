use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use minirun::cli::{Cli, Update};
use minirun::container::lifecycle;
use oci_spec::runtime::{LinuxBlockIoBuilder, LinuxPidsBuilder, LinuxResources};

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
    let mut memory = r.memory().unwrap_or_default();
    let mut touched_memory = false;
    if let Some(v) = u.memory {
        memory.set_limit(Some(v));
        touched_memory = true;
    }
    if let Some(v) = u.memory_reservation {
        memory.set_reservation(Some(v));
        touched_memory = true;
    }
    if let Some(v) = u.memory_swap {
        memory.set_swap(Some(v));
        touched_memory = true;
    }
    if touched_memory {
        r.set_memory(Some(memory));
    }
    let mut cpu = r.cpu().clone().unwrap_or_default();
    let mut touched_cpu = false;
    if let Some(v) = u.cpu_shares {
        cpu.set_shares(Some(v));
        touched_cpu = true;
    }
    if let Some(v) = u.cpu_period {
        cpu.set_period(Some(v));
        touched_cpu = true;
    }
    if let Some(v) = u.cpu_quota {
        cpu.set_quota(Some(v));
        touched_cpu = true;
    }
    if let Some(v) = &u.cpuset_cpus {
        cpu.set_cpus(Some(v.clone()));
        touched_cpu = true;
    }
    if let Some(v) = &u.cpuset_mems {
        cpu.set_mems(Some(v.clone()));
        touched_cpu = true;
    }
    if touched_cpu {
        r.set_cpu(Some(cpu));
    }
    if let Some(v) = u.pids_limit {
        r.set_pids(Some(LinuxPidsBuilder::default().limit(v).build()?));
    }
    if let Some(v) = u.blkio_weight {
        r.set_block_io(Some(LinuxBlockIoBuilder::default().weight(v).build()?));
    }
    lifecycle::update(&cli.root, &u.id, &r)?;
    Ok(ExitCode::SUCCESS)
}
