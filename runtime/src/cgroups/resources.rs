//! linux.resources as the files of cgroup v1 controllers or of cgroup v2.
//! The translation is pure (and unit-tested); `CgroupPaths` writes the result.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

/// One write: (v1 controller, or "" for v2; file; value).
pub type Write = (&'static str, String, String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResourceError {
    #[error("linux.resources.unified needs cgroup v2; this host uses cgroup v1")]
    UnifiedOnV1,
    #[error("linux.resources.unified[{0:?}]: not a cgroup file name")]
    UnifiedKey(String),
    #[error("linux.resources.devices[{index}]: {why}")]
    DeviceRule { index: usize, why: String },
}

/// Devices every container may use whatever its rules say (the runtime makes
/// them): null, zero, full, tty, random, urandom, /dev/pts/*, /dev/ptmx.
const DEFAULT_ALLOWED: [&str; 8] = [
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
];

fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let typ = match d.typ() {
        None | Some(LinuxDeviceType::A) => 'a',
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
        Some(LinuxDeviceType::P) => 'p',
    };
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let access = d
        .access()
        .clone()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "rwm".into());
    if typ == 'a' && d.major().is_none() && d.minor().is_none() {
        return "a".into();
    }
    format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
}

/// The writes for a v1 host. Devices: the rules in order, then the defaults and
/// the configured `linux.devices` allowed (`extra_devices`).
pub fn v1_writes(
    r: &LinuxResources,
    extra_devices: &[String],
) -> Result<Vec<Write>, ResourceError> {
    let mut w: Vec<Write> = Vec::new();
    let mut put = |c: &'static str, f: &str, v: String| w.push((c, f.to_string(), v));
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(ResourceError::UnifiedOnV1);
    }
    if let Some(p) = r.pids() {
        put(
            "pids",
            "pids.max",
            if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            },
        );
    }
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit() {
            put("memory", "memory.limit_in_bytes", l.to_string());
        }
        if let Some(s) = m.swap() {
            put("memory", "memory.memsw.limit_in_bytes", s.to_string());
        }
        if let Some(res) = m.reservation() {
            put("memory", "memory.soft_limit_in_bytes", res.to_string());
        }
        if let Some(sw) = m.swappiness() {
            put("memory", "memory.swappiness", sw.to_string());
        }
        if m.disable_oom_killer() == Some(true) {
            put("memory", "memory.oom_control", "1".into());
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares() {
            put("cpu", "cpu.shares", s.to_string());
        }
        if let Some(p) = c.period() {
            put("cpu", "cpu.cfs_period_us", p.to_string());
        }
        if let Some(q) = c.quota() {
            put("cpu", "cpu.cfs_quota_us", q.to_string());
        }
        if let Some(p) = c.realtime_period() {
            put("cpu", "cpu.rt_period_us", p.to_string());
        }
        if let Some(q) = c.realtime_runtime() {
            put("cpu", "cpu.rt_runtime_us", q.to_string());
        }
        if let Some(cpus) = c.cpus().as_ref().filter(|s| !s.is_empty()) {
            put("cpuset", "cpuset.cpus", cpus.clone());
        }
        if let Some(mems) = c.mems().as_ref().filter(|s| !s.is_empty()) {
            put("cpuset", "cpuset.mems", mems.clone());
        }
    }
    if let Some(b) = r.block_io() {
        if let Some(wt) = b.weight() {
            put("blkio", "blkio.weight", wt.to_string());
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        put(
            "hugetlb",
            &format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            h.limit().to_string(),
        );
    }
    for (allow, rule) in device_rules(r, extra_devices)? {
        let file = if allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        put("devices", file, rule);
    }
    Ok(w)
}

/// The device rules (allow, v1 rule text) in order: the config's, then the
/// defaults and the configured `linux.devices` allowed (`extra_devices`). Empty
/// when the config has none: the cgroup then controls no devices.
pub fn device_rules(
    r: &LinuxResources,
    extra_devices: &[String],
) -> Result<Vec<(bool, String)>, ResourceError> {
    let devices = r.devices().as_deref().unwrap_or(&[]);
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    for (index, d) in devices.iter().enumerate() {
        let bad = |why: String| ResourceError::DeviceRule { index, why };
        if d.typ() == Some(LinuxDeviceType::P) {
            return Err(bad(
                "type p: fifos are not devices the cgroup controls".into()
            ));
        }
        if let Some(a) = d.access().as_deref() {
            if let Some(c) = a.chars().find(|c| !"rwm".contains(*c)) {
                return Err(bad(format!("access {a:?}: {c:?} is not r, w or m")));
            }
        }
    }
    Ok(devices
        .iter()
        .map(|d| (d.allow(), device_rule(d)))
        .chain(
            DEFAULT_ALLOWED
                .iter()
                .map(|s| s.to_string())
                .chain(extra_devices.iter().cloned())
                .map(|rule| (true, rule)),
        )
        .collect())
}

/// The writes for a pure v2 host (device rules there are an eBPF program, see
/// `device_filter`).
pub fn v2_writes(r: &LinuxResources) -> Result<Vec<Write>, ResourceError> {
    let mut w: Vec<Write> = Vec::new();
    let mut put = |f: &str, v: String| w.push(("", f.to_string(), v));
    if let Some(p) = r.pids() {
        put(
            "pids.max",
            if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            },
        );
    }
    if let Some(m) = r.memory() {
        let max = |v: i64| {
            if v < 0 {
                "max".to_string()
            } else {
                v.to_string()
            }
        };
        if let Some(l) = m.limit() {
            put("memory.max", max(l));
        }
        if let (Some(s), Some(l)) = (m.swap(), m.limit()) {
            // v1's memsw counts memory + swap; v2's swap.max only swap.
            put(
                "memory.swap.max",
                if s < 0 {
                    "max".into()
                } else {
                    (s - l).max(0).to_string()
                },
            );
        }
        if let Some(res) = m.reservation() {
            put("memory.low", max(res));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s > 0) {
            // The mapping runc and crun use from shares (2..262144) to weight (1..10000).
            put(
                "cpu.weight",
                (1 + ((s.clamp(2, 262_144) - 2) * 9999) / 262_142).to_string(),
            );
        }
        if c.quota().is_some() || c.period().is_some() {
            let quota = c
                .quota()
                .filter(|q| *q > 0)
                .map_or("max".to_string(), |q| q.to_string());
            put(
                "cpu.max",
                format!("{quota} {}", c.period().unwrap_or(100_000)),
            );
        }
        if let Some(cpus) = c.cpus().as_ref().filter(|s| !s.is_empty()) {
            put("cpuset.cpus", cpus.clone());
        }
        if let Some(mems) = c.mems().as_ref().filter(|s| !s.is_empty()) {
            put("cpuset.mems", mems.clone());
        }
    }
    if let Some(wt) = r.block_io().as_ref().and_then(|b| b.weight()) {
        put("io.bfq.weight", wt.to_string());
    }
    for h in r.hugepage_limits().iter().flatten() {
        put(
            &format!("hugetlb.{}.max", h.page_size()),
            h.limit().to_string(),
        );
    }
    for (k, v) in r.unified().iter().flatten() {
        if k.contains('/') || k.starts_with('.') || !k.contains('.') {
            return Err(ResourceError::UnifiedKey(k.clone()));
        }
        put(k, v.clone());
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn v1_pids_memory_cpu() {
        let r = res(
            r#"{"pids":{"limit":10},"memory":{"limit":1048576},"cpu":{"shares":512,"quota":50000,"period":100000}}"#,
        );
        let w = v1_writes(&r, &[]).unwrap();
        assert!(w.contains(&("pids", "pids.max".into(), "10".into())));
        assert!(w.contains(&("memory", "memory.limit_in_bytes".into(), "1048576".into())));
        assert!(w.contains(&("cpu", "cpu.cfs_quota_us".into(), "50000".into())));
        let period = w.iter().position(|x| x.1 == "cpu.cfs_period_us").unwrap();
        let quota = w.iter().position(|x| x.1 == "cpu.cfs_quota_us").unwrap();
        assert!(
            period < quota,
            "period first, or a quota above the old period is refused"
        );
    }

    #[test]
    fn v1_devices_deny_all_then_defaults() {
        let r = res(
            r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":200,"access":"rw"}]}"#,
        );
        let w = v1_writes(&r, &["b 8:0 rwm".into()]).unwrap();
        assert_eq!(w[0], ("devices", "devices.deny".into(), "a".into()));
        assert_eq!(
            w[1],
            ("devices", "devices.allow".into(), "c 10:200 rw".into())
        );
        assert!(w.contains(&("devices", "devices.allow".into(), "c 1:3 rwm".into())));
        assert_eq!(w.last().unwrap().2, "b 8:0 rwm");
    }

    #[test]
    fn unified_only_on_v2() {
        let r = res(r#"{"unified":{"memory.high":"1000000"}}"#);
        assert_eq!(v1_writes(&r, &[]), Err(ResourceError::UnifiedOnV1));
        assert_eq!(
            v2_writes(&r).unwrap(),
            vec![("", "memory.high".into(), "1000000".into())]
        );
        let bad = res(r#"{"unified":{"../x":"1"}}"#);
        assert!(v2_writes(&bad).is_err());
    }

    #[test]
    fn v2_shares_to_weight() {
        let r = res(r#"{"cpu":{"shares":1024}}"#);
        assert_eq!(
            v2_writes(&r).unwrap(),
            vec![("", "cpu.weight".into(), "39".into())]
        );
    }
}
