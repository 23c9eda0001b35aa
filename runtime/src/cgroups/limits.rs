//! linux.resources read once, the way runc reads it, for `create` and `update`
//! alike. Clients send zeros that mean "leave it": Docker puts
//! `blockIO.weight: 0` and `cpu.shares: 0` in every config.json, and its
//! `update` sends `{"cpu":{"shares":0,"quota":0,"period":0},...}` for a change
//! of the memory limit. So a field that is absent, null, or zero where zero
//! cannot be a limit is "not set" here and leaves the cgroup's file alone;
//! only the set fields become writes (see `resources`). Values no kernel takes
//! are refused here, before anything exists, naming the field.
//!
//! As runc 1.1 does, kernel memory limits are ignored (with a warning): Linux
//! stopped enforcing memory.kmem.limit_in_bytes in 5.16 and takes writes to
//! it without effect. useHierarchy is ignored too (always on since 4.x).
//! Fields newer than runc 1.1 (cpu burst and idle, checkBeforeUpdate) are
//! applied as later runc versions do.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitError {
    #[error("linux.resources.{field}: {why}")]
    Invalid { field: String, why: String },
    #[error("linux.resources.unified[{0:?}]: not a cgroup file name")]
    UnifiedKey(String),
}

fn invalid(field: &str, why: String) -> LimitError {
    LimitError::Invalid {
        field: field.to_string(),
        why,
    }
}

/// The settable part of linux.resources, every field `None` (or empty) when
/// the config leaves it alone. Devices are read by `device_rules`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes, or -1 for no limit.
    pub memory: Option<i64>,
    /// Memory plus swap (v1's memsw), bytes or -1.
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub swappiness: Option<u64>,
    pub disable_oom_killer: bool,
    /// Refuse a memory limit below what the container uses now.
    pub check_before_update: bool,
    /// Between 2 and 262144.
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
    /// Set fields that are ignored, for a warning.
    pub ignored: Vec<&'static str>,
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

const PIDS_MAX: i64 = 1 << 22;

fn nonzero<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

/// Bytes or -1: anything else below zero is no limit a kernel takes.
fn bytes(field: &str, v: Option<i64>) -> Result<Option<i64>, LimitError> {
    match nonzero(v) {
        Some(n) if n < -1 => Err(invalid(
            field,
            format!("{n} is not a size (bytes, or -1 for none)"),
        )),
        v => Ok(v),
    }
}

/// A block IO weight: 10 to 1000, as the runtime spec says and CFQ took.
fn weight(field: &str, v: Option<u16>) -> Result<Option<u16>, LimitError> {
    match nonzero(v) {
        Some(w) if !(10..=1000).contains(&w) => {
            Err(invalid(field, format!("{w} is out of range (10-1000)")))
        }
        v => Ok(v),
    }
}

fn device_numbers(field: &str, major: i64, minor: i64) -> Result<(), LimitError> {
    let range = 0..=i64::from(u32::MAX);
    if !range.contains(&major) || !range.contains(&minor) {
        return Err(invalid(
            field,
            format!("{major}:{minor} is not a device number"),
        ));
    }
    Ok(())
}

impl Limits {
    /// Reads `r`, refusing values no kernel takes.
    pub fn from_spec(r: &LinuxResources) -> Result<Self, LimitError> {
        let mut l = Limits::default();
        if let Some(m) = r.memory() {
            l.read_memory(m)?;
        }
        if let Some(c) = r.cpu() {
            l.read_cpu(c)?;
        }
        if let Some(p) = r.pids() {
            l.pids = nonzero(Some(p.limit())).map(|n| n.max(-1));
            // pids.max takes no more than PID_MAX_LIMIT (2^22).
            if let Some(n) = l.pids.filter(|n| *n > PIDS_MAX) {
                return Err(invalid(
                    "pids.limit",
                    format!("{n} is above the most the kernel takes ({PIDS_MAX}; -1 for no limit)"),
                ));
            }
        }
        if let Some(b) = r.block_io() {
            l.read_block_io(b)?;
        }
        l.read_the_rest(r)?;
        Ok(l)
    }

    fn read_memory(&mut self, m: &LinuxMemory) -> Result<(), LimitError> {
        self.memory = bytes("memory.limit", m.limit())?;
        self.memory_swap = bytes("memory.swap", m.swap())?;
        self.memory_reservation = bytes("memory.reservation", m.reservation())?;
        if let (Some(limit), Some(swap)) = (self.memory, self.memory_swap) {
            if limit > 0 && swap > 0 && swap < limit {
                return Err(invalid(
                    "memory.swap",
                    format!("{swap} is below memory.limit {limit} (swap is memory plus swap)"),
                ));
            }
        }
        if nonzero(m.kernel()).is_some() {
            self.ignored.push("memory.kernel");
        }
        if nonzero(m.kernel_tcp()).is_some() {
            self.ignored.push("memory.kernelTCP");
        }
        // u64::MAX is Go's -1 in a uint64: "not set", as for runc.
        self.swappiness = match m.swappiness() {
            Some(u64::MAX) | None => None,
            Some(s) if s > 100 => {
                return Err(invalid(
                    "memory.swappiness",
                    format!("{s} is out of range (0-100)"),
                ))
            }
            s => s,
        };
        self.disable_oom_killer = m.disable_oom_killer() == Some(true);
        self.check_before_update = m.check_before_update() == Some(true);
        Ok(())
    }

    fn read_cpu(&mut self, c: &LinuxCpu) -> Result<(), LimitError> {
        self.cpu_shares = nonzero(c.shares());
        if let Some(s) = self.cpu_shares.filter(|s| !(2..=262_144).contains(s)) {
            return Err(invalid(
                "cpu.shares",
                format!("{s} is out of range (2-262144)"),
            ));
        }
        self.cpu_quota = nonzero(c.quota()).map(|q| q.max(-1));
        if let Some(q) = self.cpu_quota.filter(|q| *q > 0 && *q < 1_000) {
            return Err(invalid(
                "cpu.quota",
                format!("{q} is below the smallest quota (1000 microseconds)"),
            ));
        }
        self.cpu_period = nonzero(c.period());
        if let Some(p) = self.cpu_period.filter(|p| !(1_000..=1_000_000).contains(p)) {
            return Err(invalid(
                "cpu.period",
                format!("{p} is out of range (1000-1000000 microseconds)"),
            ));
        }
        self.cpu_burst = nonzero(c.burst());
        self.cpu_idle = nonzero(c.idle());
        self.cpu_rt_runtime = nonzero(c.realtime_runtime());
        self.cpu_rt_period = nonzero(c.realtime_period());
        self.cpus = c.cpus().clone().filter(|s| !s.is_empty());
        self.mems = c.mems().clone().filter(|s| !s.is_empty());
        Ok(())
    }

    fn read_block_io(&mut self, b: &LinuxBlockIo) -> Result<(), LimitError> {
        self.blkio_weight = weight("blockIO.weight", b.weight())?;
        self.blkio_leaf_weight = weight("blockIO.leafWeight", b.leaf_weight())?;
        for (i, w) in b.weight_device().iter().flatten().enumerate() {
            device_numbers(&format!("blockIO.weightDevice[{i}]"), w.major(), w.minor())?;
            weight(&format!("blockIO.weightDevice[{i}].weight"), w.weight())?;
            weight(
                &format!("blockIO.weightDevice[{i}].leafWeight"),
                w.leaf_weight(),
            )?;
            let d = WeightDevice {
                major: w.major(),
                minor: w.minor(),
                weight: nonzero(w.weight()),
                leaf_weight: nonzero(w.leaf_weight()),
            };
            if d.weight.is_some() || d.leaf_weight.is_some() {
                self.blkio_weight_device.push(d);
            }
        }
        for (kind, list) in [
            (ThrottleKind::ReadBps, b.throttle_read_bps_device()),
            (ThrottleKind::WriteBps, b.throttle_write_bps_device()),
            (ThrottleKind::ReadIops, b.throttle_read_iops_device()),
            (ThrottleKind::WriteIops, b.throttle_write_iops_device()),
        ] {
            for (i, t) in list.iter().flatten().enumerate() {
                let field = format!("blockIO.{}[{i}]", kind.field());
                device_numbers(&field, t.major(), t.minor())?;
                self.blkio_throttle.push(Throttle {
                    kind,
                    major: t.major(),
                    minor: t.minor(),
                    rate: t.rate(),
                });
            }
        }
        Ok(())
    }

    /// Hugepages, network classes and priorities, rdma, unified.
    fn read_the_rest(&mut self, r: &LinuxResources) -> Result<(), LimitError> {
        for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
            let size = h.page_size();
            if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(invalid(
                    &format!("hugepageLimits[{i}].pageSize"),
                    format!("{size:?} is not a page size such as 2MB"),
                ));
            }
            let limit = bytes(&format!("hugepageLimits[{i}].limit"), Some(h.limit()))?;
            self.hugepages.push((size.clone(), limit.unwrap_or(0)));
        }
        if let Some(n) = r.network() {
            self.net_class_id = nonzero(n.class_id());
            for (i, p) in n.priorities().iter().flatten().enumerate() {
                if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                    return Err(invalid(
                        &format!("network.priorities[{i}].name"),
                        format!("{:?} is not an interface name", p.name()),
                    ));
                }
                self.net_priorities.push((p.name().clone(), p.priority()));
            }
        }
        let mut rdma: Vec<_> = r.rdma().iter().flatten().collect();
        rdma.sort_by(|a, b| a.0.cmp(b.0));
        for (dev, limit) in rdma {
            if dev.is_empty() || dev.contains(char::is_whitespace) {
                return Err(invalid("rdma", format!("{dev:?} is not a device name")));
            }
            if limit.hca_handles().is_some() || limit.hca_objects().is_some() {
                self.rdma
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
        if let Some((k, _)) = unified
            .iter()
            .find(|(k, _)| k.contains('/') || k.starts_with('.') || !k.contains('.'))
        {
            return Err(LimitError::UnifiedKey(k.clone()));
        }
        self.unified = unified;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(json: &str) -> Result<Limits, LimitError> {
        Limits::from_spec(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn dockers_zeros_set_nothing() {
        // What Docker 20.10 puts in every config.json, and sends on every update.
        let create = limits(
            r#"{"memory":{"disableOOMKiller":false},"cpu":{"shares":0},"blockIO":{"weight":0}}"#,
        )
        .unwrap();
        assert_eq!(create, Limits::default());
        let update = limits(
            r#"{"memory":{"limit":0,"reservation":0,"swap":0,"kernel":0,"kernelTCP":0},
                "cpu":{"shares":0,"quota":0,"period":0,"realtimeRuntime":0,"realtimePeriod":0,"cpus":"","mems":""},
                "blockIO":{"weight":0},"pids":{"limit":0}}"#,
        )
        .unwrap();
        assert_eq!(update, Limits::default());
    }

    #[test]
    fn null_is_absent() {
        let l = limits(
            r#"{"memory":{"limit":null,"swappiness":18446744073709551615},"cpu":{"shares":null,"cpus":null}}"#,
        )
        .unwrap();
        assert_eq!(
            l,
            Limits::default(),
            "Go's uint64 -1 swappiness is unset too"
        );
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
    fn kernel_memory_is_ignored_and_said() {
        let l =
            limits(r#"{"memory":{"kernel":1048576,"kernelTCP":0,"useHierarchy":false}}"#).unwrap();
        assert_eq!(l.ignored, ["memory.kernel"]);
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
            (r#"{"cpu":{"shares":1}}"#, "linux.resources.cpu.shares"),
            (
                r#"{"pids":{"limit":4294967296}}"#,
                "linux.resources.pids.limit",
            ),
            (
                r#"{"blockIO":{"weight":5}}"#,
                "linux.resources.blockIO.weight",
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
            assert!(e.starts_with(&format!("{field}: ")), "{json}: {e}");
        }
        assert!(matches!(
            limits(r#"{"unified":{"../x":"1"}}"#),
            Err(LimitError::UnifiedKey(_))
        ));
    }

    #[test]
    fn unified_is_sorted() {
        let l = limits(r#"{"unified":{"pids.max":"5","memory.high":"100000"}}"#).unwrap();
        assert_eq!(l.unified[0].0, "memory.high");
    }
}
