//! linux.resources read once, the way runc reads it, for `create` and `update`
//! alike. Clients send zeros that mean "leave it": Docker puts
//! `blockIO.weight: 0` and `cpu.shares: 0` in every config.json, and its
//! `update` sends `{"cpu":{"shares":0,"quota":0,"period":0},...}` for a change
//! of the memory limit. So a field that is absent, null, or zero where zero
//! cannot be a limit is "not set" here and leaves the cgroup's file alone;
//! only the set fields become writes (see `resources`). Values no kernel takes
//! are refused here, before anything exists, naming the field.

use oci_spec::runtime::LinuxResources;

use super::ResourceError;

/// The settable part of linux.resources, every field `None` (or empty) when
/// the config leaves it alone. Devices are read by `device_rules`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes, or -1 for no limit.
    pub memory: Option<i64>,
    /// Memory plus swap (v1's memsw), bytes or -1.
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub kernel_memory: Option<i64>,
    pub kernel_tcp_memory: Option<i64>,
    pub swappiness: Option<u64>,
    pub disable_oom_killer: bool,
    /// Refuse a memory limit below what the container uses now.
    pub check_before_update: bool,
    pub cpu_shares: Option<u64>,
    /// Microseconds per period, or -1 for no quota.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_burst: Option<u64>,
    pub cpu_idle: Option<i64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpu_rt_period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
    /// A number of tasks, or -1 for no limit.
    pub pids: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub blkio_leaf_weight: Option<u16>,
    pub blkio_weight_device: Vec<WeightDevice>,
    pub blkio_throttle: Vec<Throttle>,
    /// (page size, bytes or -1).
    pub hugepages: Vec<(String, i64)>,
    pub net_class_id: Option<u32>,
    /// (interface, priority).
    pub net_priorities: Vec<(String, u32)>,
    /// (device, handles, objects).
    pub rdma: Vec<(String, Option<u32>, Option<u32>)>,
    /// cgroup v2 files by name, sorted (the config's map has no order).
    pub unified: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
}

/// Which of the four throttles a `Throttle` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleKind {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

impl ThrottleKind {
    pub fn field(self) -> &'static str {
        match self {
            ThrottleKind::ReadBps => "throttleReadBpsDevice",
            ThrottleKind::WriteBps => "throttleWriteBpsDevice",
            ThrottleKind::ReadIops => "throttleReadIOPSDevice",
            ThrottleKind::WriteIops => "throttleWriteIOPSDevice",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    pub kind: ThrottleKind,
    pub major: i64,
    pub minor: i64,
    /// 0 takes the limit away.
    pub rate: u64,
}

fn nonzero<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

fn bad(field: &str, why: String) -> ResourceError {
    ResourceError::Invalid {
        field: format!("linux.resources.{field}"),
        why,
    }
}

/// Bytes or -1: anything else below zero is no limit a kernel takes.
fn bytes(field: &str, v: Option<i64>) -> Result<Option<i64>, ResourceError> {
    match nonzero(v) {
        Some(n) if n < -1 => Err(bad(
            field,
            format!("{n} is not a size (bytes, or -1 for none)"),
        )),
        v => Ok(v),
    }
}

impl Limits {
    /// Reads `r`, refusing values no kernel takes.
    pub fn from_spec(r: &LinuxResources) -> Result<Self, ResourceError> {
        let mut l = Limits::default();
        if let Some(m) = r.memory() {
            l.memory = bytes("memory.limit", m.limit())?;
            l.memory_swap = bytes("memory.swap", m.swap())?;
            l.memory_reservation = bytes("memory.reservation", m.reservation())?;
            l.kernel_memory = bytes("memory.kernel", m.kernel())?;
            l.kernel_tcp_memory = bytes("memory.kernelTCP", m.kernel_tcp())?;
            if let (Some(limit), Some(swap)) = (l.memory, l.memory_swap) {
                if limit > 0 && swap > 0 && swap < limit {
                    return Err(bad(
                        "memory.swap",
                        format!("{swap} is below memory.limit {limit} (swap is memory plus swap)"),
                    ));
                }
            }
            l.swappiness = match m.swappiness() {
                Some(s) if s > 100 => {
                    return Err(bad(
                        "memory.swappiness",
                        format!("{s} is out of range (0-100)"),
                    ))
                }
                s => s,
            };
            l.disable_oom_killer = m.disable_oom_killer() == Some(true);
            l.check_before_update = m.check_before_update() == Some(true);
            if m.use_hierarchy() == Some(false) {
                return Err(bad(
                    "memory.useHierarchy",
                    "false: memory cgroups are always hierarchical on this kernel".into(),
                ));
            }
        }
        if let Some(c) = r.cpu() {
            l.cpu_shares = nonzero(c.shares());
            l.cpu_quota = nonzero(c.quota()).map(|q| q.max(-1));
            l.cpu_period = nonzero(c.period());
            if let Some(p) = l.cpu_period {
                if !(1_000..=1_000_000).contains(&p) {
                    return Err(bad(
                        "cpu.period",
                        format!("{p} is out of range (1000-1000000 microseconds)"),
                    ));
                }
            }
            if let Some(q) = l.cpu_quota.filter(|q| *q > 0 && *q < 1_000) {
                return Err(bad(
                    "cpu.quota",
                    format!("{q} is below the smallest quota (1000 microseconds)"),
                ));
            }
            l.cpu_burst = nonzero(c.burst());
            l.cpu_idle = nonzero(c.idle());
            l.cpu_rt_runtime = nonzero(c.realtime_runtime());
            l.cpu_rt_period = nonzero(c.realtime_period());
            l.cpus = c.cpus().clone().filter(|s| !s.is_empty());
            l.mems = c.mems().clone().filter(|s| !s.is_empty());
        }
        if let Some(p) = r.pids() {
            l.pids = nonzero(Some(p.limit())).map(|n| n.max(-1));
        }
        if let Some(b) = r.block_io() {
            l.blkio_weight = nonzero(b.weight());
            l.blkio_leaf_weight = nonzero(b.leaf_weight());
            for (i, w) in b.weight_device().iter().flatten().enumerate() {
                let d = WeightDevice {
                    major: w.major(),
                    minor: w.minor(),
                    weight: nonzero(w.weight()),
                    leaf_weight: nonzero(w.leaf_weight()),
                };
                device_numbers(&format!("blockIO.weightDevice[{i}]"), d.major, d.minor)?;
                if d.weight.is_some() || d.leaf_weight.is_some() {
                    l.blkio_weight_device.push(d);
                }
            }
            for (kind, list) in [
                (ThrottleKind::ReadBps, b.throttle_read_bps_device()),
                (ThrottleKind::WriteBps, b.throttle_write_bps_device()),
                (ThrottleKind::ReadIops, b.throttle_read_iops_device()),
                (ThrottleKind::WriteIops, b.throttle_write_iops_device()),
            ] {
                for (i, t) in list.iter().flatten().enumerate() {
                    device_numbers(
                        &format!("blockIO.{}[{i}]", kind.field()),
                        t.major(),
                        t.minor(),
                    )?;
                    l.blkio_throttle.push(Throttle {
                        kind,
                        major: t.major(),
                        minor: t.minor(),
                        rate: t.rate(),
                    });
                }
            }
        }
        for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
            let size = h.page_size();
            if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad(
                    &format!("hugepageLimits[{i}].pageSize"),
                    format!("{size:?} is not a page size such as 2MB"),
                ));
            }
            let limit = bytes(&format!("hugepageLimits[{i}].limit"), Some(h.limit()))?;
            l.hugepages.push((size.clone(), limit.unwrap_or(0)));
        }
        if let Some(n) = r.network() {
            l.net_class_id = nonzero(n.class_id());
            for (i, p) in n.priorities().iter().flatten().enumerate() {
                if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                    return Err(bad(
                        &format!("network.priorities[{i}].name"),
                        format!("{:?} is not an interface name", p.name()),
                    ));
                }
                l.net_priorities.push((p.name().clone(), p.priority()));
            }
        }
        let mut rdma: Vec<_> = r.rdma().iter().flatten().collect();
        rdma.sort_by(|a, b| a.0.cmp(b.0));
        for (dev, limit) in rdma {
            if dev.is_empty() || dev.contains(char::is_whitespace) {
                return Err(bad("rdma", format!("{dev:?} is not a device name")));
            }
            if limit.hca_handles().is_some() || limit.hca_objects().is_some() {
                l.rdma
                    .push((dev.clone(), limit.hca_handles(), limit.hca_objects()));
            }
        }
        let mut unified: Vec<_> = r
            .unified()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        unified.sort();
        for (k, _) in &unified {
            if k.contains('/') || k.starts_with('.') || !k.contains('.') {
                return Err(ResourceError::UnifiedKey(k.clone()));
            }
        }
        l.unified = unified;
        Ok(l)
    }

    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

fn device_numbers(field: &str, major: i64, minor: i64) -> Result<(), ResourceError> {
    if !(0..=u32::MAX as i64).contains(&major) || !(0..=u32::MAX as i64).contains(&minor) {
        return Err(bad(
            field,
            format!("{major}:{minor} is not a device number"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(json: &str) -> Result<Limits, ResourceError> {
        Limits::from_spec(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn dockers_zeros_set_nothing() {
        // What Docker 20.10 puts in every config.json, and sends on every update.
        let create = limits(
            r#"{"memory":{"disableOOMKiller":false},"cpu":{"shares":0},"blockIO":{"weight":0}}"#,
        )
        .unwrap();
        assert!(create.is_empty(), "{create:?}");
        let update = limits(
            r#"{"memory":{"limit":0,"reservation":0,"swap":0,"kernel":0,"kernelTCP":0},
                "cpu":{"shares":0,"quota":0,"period":0,"realtimeRuntime":0,"realtimePeriod":0,"cpus":"","mems":""},
                "blockIO":{"weight":0},"pids":{"limit":0}}"#,
        )
        .unwrap();
        assert!(update.is_empty(), "{update:?}");
    }

    #[test]
    fn null_is_absent() {
        let l = limits(r#"{"memory":{"limit":null},"cpu":{"shares":null,"cpus":null}}"#).unwrap();
        assert!(l.is_empty());
    }

    #[test]
    fn set_values_are_kept() {
        let l = limits(
            r#"{"memory":{"limit":104857600,"swap":209715200,"swappiness":0,"disableOOMKiller":true},
                "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"},
                "pids":{"limit":-1},"blockIO":{"weight":300}}"#,
        )
        .unwrap();
        assert_eq!(l.memory, Some(104_857_600));
        assert_eq!(l.memory_swap, Some(209_715_200));
        assert_eq!(l.swappiness, Some(0), "swappiness 0 is a value, not unset");
        assert!(l.disable_oom_killer);
        assert_eq!(
            (l.cpu_shares, l.cpu_quota, l.cpu_period),
            (Some(512), Some(50_000), Some(100_000))
        );
        assert_eq!(l.cpus.as_deref(), Some("0"));
        assert_eq!(l.pids, Some(-1));
        assert_eq!(l.blkio_weight, Some(300));
    }

    #[test]
    fn minus_one_means_no_limit() {
        let l =
            limits(r#"{"memory":{"limit":-1},"cpu":{"quota":-5},"pids":{"limit":-7}}"#).unwrap();
        assert_eq!(l.memory, Some(-1));
        assert_eq!(l.cpu_quota, Some(-1), "any negative quota is none");
        assert_eq!(l.pids, Some(-1), "any negative pids limit is none");
    }

    #[test]
    fn values_no_kernel_takes_are_refused_by_name() {
        let cases = [
            (r#"{"memory":{"limit":-5}}"#, "linux.resources.memory.limit"),
            (
                r#"{"memory":{"limit":200,"swap":100}}"#,
                "linux.resources.memory.swap",
            ),
            (
                r#"{"memory":{"swappiness":101}}"#,
                "linux.resources.memory.swappiness",
            ),
            (r#"{"cpu":{"period":10}}"#, "linux.resources.cpu.period"),
            (r#"{"cpu":{"quota":10}}"#, "linux.resources.cpu.quota"),
            (
                r#"{"hugepageLimits":[{"pageSize":"../x","limit":1}]}"#,
                "linux.resources.hugepageLimits[0].pageSize",
            ),
            (
                r#"{"blockIO":{"throttleReadBpsDevice":[{"major":-1,"minor":0,"rate":1}]}}"#,
                "linux.resources.blockIO.throttleReadBpsDevice[0]",
            ),
        ];
        for (json, field) in cases {
            let e = limits(json).unwrap_err().to_string();
            assert!(e.starts_with(field), "{json}: {e}");
        }
        assert!(matches!(
            limits(r#"{"unified":{"../x":"1"}}"#),
            Err(ResourceError::UnifiedKey(_))
        ));
    }

    #[test]
    fn unified_is_sorted() {
        let l = limits(r#"{"unified":{"pids.max":"5","memory.high":"100000"}}"#).unwrap();
        assert_eq!(l.unified[0].0, "memory.high");
    }
}
