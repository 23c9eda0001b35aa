//! `Limits` as the files of cgroup v1 controllers or of cgroup v2, in the
//! order the kernel needs them, as runc writes them: memory and memory+swap
//! by the direction of the change (the kernel wants limit <= memsw at every
//! step), the cfs period before the quota and the rt period before the rt
//! runtime (each retried after its partner when the kernel refuses it first).
//! A file this kernel lacks (blkio.weight without CFQ, cpu.rt_* without RT
//! group scheduling) is an error only for a value that is set, and the error
//! names the field. Planning reads the cgroup through a `Probe` and writes
//! nothing, so it is unit-tested and an `update` is refused before any file
//! changes.

use super::limits::{Limits, ThrottleKind};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResourceError {
    #[error("linux.resources.unified needs cgroup v2; this host uses cgroup v1")]
    UnifiedOnV1,
    #[error("linux.resources.{field} is set, but {why}")]
    Unavailable { field: String, why: String },
}

fn unavailable(field: &str, why: impl Into<String>) -> ResourceError {
    ResourceError::Unavailable {
        field: field.to_string(),
        why: why.into(),
    }
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The config field the value comes from, below linux.resources.
    pub field: String,
    /// The v1 controller whose directory holds the file; "" on v2.
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    /// The kernel may refuse this (EINVAL) until the next write has landed:
    /// then it is written again after that one.
    pub retry_after_next: bool,
}

/// What planning may ask of the cgroup it plans for. `controller` is the v1
/// controller ("" on v2).
pub trait Probe {
    /// The controller is mounted (v1); on v2 always true.
    fn mounted(&self, controller: &str) -> bool;
    /// The container's directory has this file.
    fn has(&self, controller: &str, file: &str) -> bool;
    /// The file's content now.
    fn read(&self, controller: &str, file: &str) -> Option<String>;
}

struct Planner<'a> {
    probe: &'a dyn Probe,
    v2: bool,
    writes: Vec<Write>,
    /// Files whose write is dropped where the kernel lacks them (v2's
    /// memory.swap.max without swap, for "no limit" or "none").
    optional: Option<&'static str>,
}

impl<'a> Planner<'a> {
    fn new(probe: &'a dyn Probe, v2: bool) -> Self {
        Planner {
            probe,
            v2,
            writes: Vec::new(),
            optional: None,
        }
    }

    /// A write of `file`; `controller` is the v1 one (v2 has none).
    fn put(&mut self, field: &str, controller: &'static str, file: &str, value: String) {
        self.writes.push(Write {
            field: field.to_string(),
            controller: if self.v2 { "" } else { controller },
            file: file.to_string(),
            value,
            retry_after_next: false,
        });
    }

    /// A pair of cpu files the kernel checks against each other (period and
    /// quota): the first is written first and, if refused, again after the
    /// second.
    fn put_cpu_pair(
        &mut self,
        first: (&str, &str, Option<String>),
        second: (&str, &str, Option<String>),
    ) {
        if let Some(v) = first.2 {
            self.put(first.0, "cpu", first.1, v);
            self.writes.last_mut().expect("just put").retry_after_next = second.2.is_some();
        }
        if let Some(v) = second.2 {
            self.put(second.0, "cpu", second.1, v);
        }
    }

    fn current_u64(&self, controller: &str, file: &str) -> Option<u64> {
        self.probe.read(controller, file)?.trim().parse().ok()
    }

    /// The writes, each file checked to exist.
    fn finish(self) -> Result<Vec<Write>, ResourceError> {
        let mut writes = Vec::with_capacity(self.writes.len());
        for w in self.writes {
            if !self.v2 && !self.probe.mounted(w.controller) {
                return Err(unavailable(
                    &w.field,
                    format!(
                        "the {} cgroup controller is not mounted on this host",
                        w.controller
                    ),
                ));
            }
            if !self.probe.has(w.controller, &w.file) {
                if self.optional == Some(w.file.as_str()) {
                    continue;
                }
                return Err(unavailable(
                    &w.field,
                    if self.v2 {
                        let ctl = w.file.split('.').next().unwrap_or(&w.file);
                        format!("the container's cgroup has no {} (is the {ctl} controller enabled in the parent's cgroup.subtree_control?)", w.file)
                    } else {
                        format!(
                            "this kernel's {} controller has no {}",
                            w.controller, w.file
                        )
                    },
                ));
            }
            writes.push(w);
        }
        Ok(writes)
    }
}

/// "max" for -1, the number otherwise (v2's spelling of no limit).
fn v2_number(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// The writes for a cgroup v1 host, in order; each file checked to exist.
pub fn v1_writes(l: &Limits, probe: &dyn Probe) -> Result<Vec<Write>, ResourceError> {
    if !l.unified.is_empty() {
        return Err(ResourceError::UnifiedOnV1);
    }
    let mut p = Planner::new(probe, false);
    if let Some(cpus) = &l.cpus {
        p.put("cpu.cpus", "cpuset", "cpuset.cpus", cpus.clone());
    }
    if let Some(mems) = &l.mems {
        p.put("cpu.mems", "cpuset", "cpuset.mems", mems.clone());
    }
    v1_memory(l, &mut p)?;
    if let Some(s) = l.cpu_shares {
        p.put("cpu.shares", "cpu", "cpu.shares", s.to_string());
    }
    let text = |v: Option<u64>| v.map(|v| v.to_string());
    p.put_cpu_pair(
        ("cpu.period", "cpu.cfs_period_us", text(l.cpu_period)),
        (
            "cpu.quota",
            "cpu.cfs_quota_us",
            l.cpu_quota.map(|v| v.to_string()),
        ),
    );
    if let Some(b) = l.cpu_burst {
        p.put("cpu.burst", "cpu", "cpu.cfs_burst_us", b.to_string());
    }
    if l.cpu_idle.is_some() {
        return Err(unavailable(
            "cpu.idle",
            "cgroup v1 has no idle scheduling class for a cgroup (cpu.idle is v2's)",
        ));
    }
    p.put_cpu_pair(
        (
            "cpu.realtimePeriod",
            "cpu.rt_period_us",
            text(l.cpu_rt_period),
        ),
        (
            "cpu.realtimeRuntime",
            "cpu.rt_runtime_us",
            l.cpu_rt_runtime.map(|v| v.to_string()),
        ),
    );
    if let Some(n) = l.pids {
        p.put("pids.limit", "pids", "pids.max", v2_number(n));
    }
    v1_block_io(l, &mut p);
    for (i, (size, limit)) in l.hugepages.iter().enumerate() {
        p.put(
            &format!("hugepageLimits[{i}]"),
            "hugetlb",
            &format!("hugetlb.{size}.limit_in_bytes"),
            limit.to_string(),
        );
    }
    if let Some(id) = l.net_class_id {
        p.put(
            "network.classID",
            "net_cls",
            "net_cls.classid",
            id.to_string(),
        );
    }
    for (i, (name, prio)) in l.net_priorities.iter().enumerate() {
        p.put(
            &format!("network.priorities[{i}]"),
            "net_prio",
            "net_prio.ifpriomap",
            format!("{name} {prio}"),
        );
    }
    rdma(l, &mut p);
    p.finish()
}

fn v1_memory(l: &Limits, p: &mut Planner) -> Result<(), ResourceError> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    // No memory limit and no swap said: no swap limit either (as runc), if
    // this kernel accounts swap at all.
    let swap = match (l.memory, l.memory_swap) {
        (Some(-1), None) if p.probe.has("memory", MEMSW) => Some(-1),
        (_, s) => s,
    };
    check_usage(l, p, "memory.usage_in_bytes")?;
    let writes = [
        l.memory.map(|v| ("memory.limit", LIMIT, v)),
        swap.map(|v| ("memory.swap", MEMSW, v)),
    ];
    // Raising: memsw first, or the new limit is above the old memsw.
    let swap_first = match (l.memory, swap) {
        (Some(_), Some(s)) => {
            s == -1
                || p.current_u64("memory", LIMIT)
                    .is_some_and(|cur| cur < s as u64)
        }
        _ => false,
    };
    let order: &[usize] = if swap_first { &[1, 0] } else { &[0, 1] };
    for (field, file, v) in order.iter().filter_map(|&i| writes[i]) {
        p.put(field, "memory", file, v.to_string());
    }
    if let Some(v) = l.memory_reservation {
        p.put(
            "memory.reservation",
            "memory",
            "memory.soft_limit_in_bytes",
            v.to_string(),
        );
    }
    if let Some(s) = l.swappiness {
        p.put(
            "memory.swappiness",
            "memory",
            "memory.swappiness",
            s.to_string(),
        );
    }
    if l.disable_oom_killer {
        p.put(
            "memory.disableOOMKiller",
            "memory",
            "memory.oom_control",
            "1".into(),
        );
    }
    Ok(())
}

/// checkBeforeUpdate: a limit below what the container uses now is refused
/// instead of making the kernel reclaim (or OOM-kill) to meet it.
fn check_usage(l: &Limits, p: &Planner, usage_file: &str) -> Result<(), ResourceError> {
    let (true, Some(limit)) = (l.check_before_update, l.memory.filter(|m| *m > 0)) else {
        return Ok(());
    };
    match p.current_u64(if p.v2 { "" } else { "memory" }, usage_file) {
        Some(used) if used > limit as u64 => Err(unavailable(
            "memory.limit",
            format!("{limit} is below the {used} bytes the container uses now (checkBeforeUpdate)"),
        )),
        _ => Ok(()),
    }
}

fn v1_block_io(l: &Limits, p: &mut Planner) {
    // CFQ's files, or BFQ's where CFQ is gone (as runc picks them).
    let bfq = !p.probe.has("blkio", "blkio.weight") && p.probe.has("blkio", "blkio.bfq.weight");
    let (weight, weight_device) = if bfq {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    if let Some(w) = l.blkio_weight {
        p.put("blockIO.weight", "blkio", weight, w.to_string());
    }
    if let Some(w) = l.blkio_leaf_weight {
        p.put(
            "blockIO.leafWeight",
            "blkio",
            "blkio.leaf_weight",
            w.to_string(),
        );
    }
    for (i, d) in l.blkio_weight_device.iter().enumerate() {
        let field = format!("blockIO.weightDevice[{i}]");
        if let Some(w) = d.weight {
            let value = format!("{}:{} {w}", d.major, d.minor);
            p.put(&format!("{field}.weight"), "blkio", weight_device, value);
        }
        if let Some(w) = d.leaf_weight {
            let value = format!("{}:{} {w}", d.major, d.minor);
            p.put(
                &format!("{field}.leafWeight"),
                "blkio",
                "blkio.leaf_weight_device",
                value,
            );
        }
    }
    for t in &l.blkio_throttle {
        let file = match t.kind {
            ThrottleKind::ReadBps => "blkio.throttle.read_bps_device",
            ThrottleKind::WriteBps => "blkio.throttle.write_bps_device",
            ThrottleKind::ReadIops => "blkio.throttle.read_iops_device",
            ThrottleKind::WriteIops => "blkio.throttle.write_iops_device",
        };
        let value = format!("{}:{} {}", t.major, t.minor, t.rate);
        p.put(&format!("blockIO.{}", t.kind.field()), "blkio", file, value);
    }
}

/// rdma.max, naming only the limits given: the other stays as it is.
fn rdma(l: &Limits, p: &mut Planner) {
    for (dev, handles, objects) in &l.rdma {
        let mut value = dev.clone();
        if let Some(h) = handles {
            value.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = objects {
            value.push_str(&format!(" hca_object={o}"));
        }
        p.put(&format!("rdma[{dev:?}]"), "rdma", "rdma.max", value);
    }
}

/// The writes for a pure cgroup v2 host, in order; each file checked to
/// exist (device rules are an eBPF program, see `device_filter`).
pub fn v2_writes(l: &Limits, probe: &dyn Probe) -> Result<Vec<Write>, ResourceError> {
    v2_refuse_v1_only(l)?;
    let mut p = Planner::new(probe, true);
    if let Some(cpus) = &l.cpus {
        p.put("cpu.cpus", "", "cpuset.cpus", cpus.clone());
    }
    if let Some(mems) = &l.mems {
        p.put("cpu.mems", "", "cpuset.mems", mems.clone());
    }
    v2_memory(l, &mut p)?;
    v2_cpu(l, &mut p);
    if let Some(n) = l.pids {
        p.put("pids.limit", "", "pids.max", v2_number(n));
    }
    v2_io(l, &mut p)?;
    for (i, (size, limit)) in l.hugepages.iter().enumerate() {
        let file = format!("hugetlb.{size}.max");
        p.put(
            &format!("hugepageLimits[{i}]"),
            "",
            &file,
            v2_number(*limit),
        );
    }
    rdma(l, &mut p);
    // Last, so the config's own file names have the final word.
    for (k, v) in &l.unified {
        p.put(&format!("unified[{k:?}]"), "", k, v.clone());
    }
    p.finish()
}

/// Settings v2 has no file for: refused rather than dropped (runc's v2
/// driver drops them; Docker and podman do not send them on v2).
fn v2_refuse_v1_only(l: &Limits) -> Result<(), ResourceError> {
    for (field, set) in [
        ("memory.swappiness", l.swappiness.is_some()),
        ("memory.disableOOMKiller", l.disable_oom_killer),
        ("network.classID", l.net_class_id.is_some()),
        ("network.priorities", !l.net_priorities.is_empty()),
        ("blockIO.leafWeight", l.blkio_leaf_weight.is_some()),
        ("cpu.realtimePeriod", l.cpu_rt_period.is_some()),
        ("cpu.realtimeRuntime", l.cpu_rt_runtime.is_some()),
    ] {
        if set {
            return Err(unavailable(field, "cgroup v2 has no such setting"));
        }
    }
    Ok(())
}

fn v2_memory(l: &Limits, p: &mut Planner) -> Result<(), ResourceError> {
    check_usage(l, p, "memory.current")?;
    // v1's memsw is memory plus swap; v2's swap.max is swap alone.
    let swap = match (l.memory, l.memory_swap) {
        (Some(-1), None) | (_, Some(-1)) => Some("max".to_string()),
        (_, None) => None,
        (Some(m), Some(s)) if m > 0 => Some((s - m).to_string()),
        (_, Some(_)) => {
            return Err(unavailable(
                "memory.swap",
                "a swap limit on cgroup v2 needs memory.limit with it (swap.max is memory.swap - memory.limit)",
            ))
        }
    };
    if let Some(s) = swap {
        if s == "max" || s == "0" {
            p.optional = Some("memory.swap.max");
        }
        p.put("memory.swap", "", "memory.swap.max", s);
    }
    if let Some(m) = l.memory {
        p.put("memory.limit", "", "memory.max", v2_number(m));
    }
    if let Some(r) = l.memory_reservation {
        p.put("memory.reservation", "", "memory.low", v2_number(r));
    }
    Ok(())
}

fn v2_cpu(l: &Limits, p: &mut Planner) {
    if let Some(s) = l.cpu_shares {
        // runc's and crun's mapping from shares (2..262144) to weight (1..10000).
        p.put(
            "cpu.shares",
            "",
            "cpu.weight",
            (1 + ((s - 2) * 9999) / 262_142).to_string(),
        );
    }
    if l.cpu_quota.is_some() || l.cpu_period.is_some() {
        // cpu.max is "quota period"; a period alone keeps the quota there is.
        let quota = match l.cpu_quota {
            Some(q) => v2_number(q),
            None => p
                .probe
                .read("", "cpu.max")
                .and_then(|s| s.split_whitespace().next().map(str::to_string))
                .unwrap_or_else(|| "max".into()),
        };
        let value = match l.cpu_period {
            Some(period) => format!("{quota} {period}"),
            None => quota,
        };
        let field = if l.cpu_quota.is_some() {
            "cpu.quota"
        } else {
            "cpu.period"
        };
        p.put(field, "", "cpu.max", value);
    }
    if let Some(b) = l.cpu_burst {
        p.put("cpu.burst", "", "cpu.max.burst", b.to_string());
    }
    if let Some(i) = l.cpu_idle {
        p.put("cpu.idle", "", "cpu.idle", i.to_string());
    }
}

fn v2_io(l: &Limits, p: &mut Planner) -> Result<(), ResourceError> {
    // BFQ takes blkio's weights as they are; io.weight has its own range and
    // takes per-device weights only where iocost is on, which it is not by
    // default: those need BFQ.
    let bfq = p.probe.has("", "io.bfq.weight");
    if let Some(w) = l.blkio_weight {
        if bfq {
            p.put("blockIO.weight", "", "io.bfq.weight", w.to_string());
        } else {
            let weight = 1 + (u64::from(w.clamp(10, 1000)) - 10) * 9999 / 990;
            p.put("blockIO.weight", "", "io.weight", weight.to_string());
        }
    }
    for (i, d) in l.blkio_weight_device.iter().enumerate() {
        let Some(w) = d.weight else { continue };
        let field = format!("blockIO.weightDevice[{i}].weight");
        if !bfq {
            return Err(unavailable(
                &field,
                "per-device weights on cgroup v2 need the BFQ scheduler (io.bfq.weight)",
            ));
        }
        p.put(
            &field,
            "",
            "io.bfq.weight",
            format!("{}:{} {w}", d.major, d.minor),
        );
    }
    for t in &l.blkio_throttle {
        let key = match t.kind {
            ThrottleKind::ReadBps => "rbps",
            ThrottleKind::WriteBps => "wbps",
            ThrottleKind::ReadIops => "riops",
            ThrottleKind::WriteIops => "wiops",
        };
        let rate = if t.rate == 0 {
            "max".to_string()
        } else {
            t.rate.to_string()
        };
        let value = format!("{}:{} {key}={rate}", t.major, t.minor);
        p.put(&format!("blockIO.{}", t.kind.field()), "", "io.max", value);
    }
    Ok(())
}

/// What to write to put a file back as it was before `written` went in,
/// from its content then (`old`). Files that hold one line per device or
/// interface are put back for the key written only; None: nothing to undo.
pub fn restore_value(file: &str, old: &str, written: &str) -> Option<String> {
    let old = old.trim();
    let keyed = file.starts_with("blkio.throttle.")
        || file.ends_with("weight_device")
        || matches!(
            file,
            "net_prio.ifpriomap" | "io.max" | "io.weight" | "io.bfq.weight" | "rdma.max"
        );
    if file == "memory.oom_control" {
        return old
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill_disable "))
            .map(str::to_string);
    }
    if !keyed {
        return Some(old.to_string());
    }
    let key = written.split_whitespace().next()?;
    let line = old
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key));
    Some(match (line, file) {
        (Some(line), _) => line.to_string(),
        // A plain weight set the "default" line.
        (None, "io.weight" | "io.bfq.weight") if !written.contains(':') => old
            .lines()
            .find_map(|l| l.strip_prefix("default "))
            .unwrap_or(old)
            .to_string(),
        (None, "io.weight" | "io.bfq.weight") => format!("{key} default"),
        (None, "io.max") => format!("{key} rbps=max wbps=max riops=max wiops=max"),
        (None, "rdma.max") => format!("{key} hca_handle=max hca_object=max"),
        (None, _) => format!("{key} 0"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A cgroup described by its files: "controller/file" → content.
    struct Fake(HashMap<String, String>);

    impl Fake {
        fn v1() -> Self {
            let mut m = HashMap::new();
            for (f, v) in [
                ("memory/memory.limit_in_bytes", "9223372036854771712"),
                ("memory/memory.memsw.limit_in_bytes", "9223372036854771712"),
                ("memory/memory.soft_limit_in_bytes", "9223372036854771712"),
                ("memory/memory.usage_in_bytes", "5000000"),
                ("memory/memory.swappiness", "60"),
                (
                    "memory/memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\n",
                ),
                ("cpu/cpu.shares", "1024"),
                ("cpu/cpu.cfs_period_us", "100000"),
                ("cpu/cpu.cfs_quota_us", "-1"),
                ("cpu/cpu.rt_period_us", "1000000"),
                ("cpu/cpu.rt_runtime_us", "0"),
                ("cpuset/cpuset.cpus", "0-1"),
                ("pids/pids.max", "max"),
                ("blkio/blkio.throttle.read_bps_device", ""),
            ] {
                m.insert(f.to_string(), v.to_string());
            }
            Fake(m)
        }

        fn v2() -> Self {
            let mut m = HashMap::new();
            for (f, v) in [
                ("memory.max", "max"),
                ("memory.swap.max", "max"),
                ("memory.low", "0"),
                ("memory.current", "5000000"),
                ("cpu.weight", "100"),
                ("cpu.max", "max 100000"),
                ("pids.max", "max"),
                ("io.weight", "default 100"),
                ("io.max", ""),
            ] {
                m.insert(format!("/{f}"), v.to_string());
            }
            Fake(m)
        }

        fn set(mut self, key: &str, value: &str) -> Self {
            self.0.insert(key.to_string(), value.to_string());
            self
        }

        fn without(mut self, key: &str) -> Self {
            self.0.remove(key);
            self
        }
    }

    impl Probe for Fake {
        fn mounted(&self, controller: &str) -> bool {
            controller.is_empty()
                || self
                    .0
                    .keys()
                    .any(|k| k.starts_with(&format!("{controller}/")))
        }
        fn has(&self, controller: &str, file: &str) -> bool {
            self.0.contains_key(&format!("{controller}/{file}"))
        }
        fn read(&self, controller: &str, file: &str) -> Option<String> {
            self.0.get(&format!("{controller}/{file}")).cloned()
        }
    }

    fn limits(json: &str) -> Limits {
        Limits::from_spec(&serde_json::from_str(json).unwrap()).unwrap()
    }

    fn files(w: &[Write]) -> Vec<String> {
        w.iter()
            .map(|w| format!("{}={}", w.file, w.value))
            .collect()
    }

    #[test]
    fn dockers_create_config_writes_nothing_even_without_blkio_weight() {
        let l = limits(
            r#"{"memory":{"disableOOMKiller":false},"cpu":{"shares":0},"blockIO":{"weight":0}}"#,
        );
        assert_eq!(v1_writes(&l, &Fake::v1()).unwrap(), vec![]);
        assert_eq!(v2_writes(&l, &Fake::v2()).unwrap(), vec![]);
    }

    #[test]
    fn a_set_value_whose_file_is_missing_is_an_error_naming_the_field() {
        let l = limits(r#"{"blockIO":{"weight":500}}"#);
        let e = v1_writes(&l, &Fake::v1()).unwrap_err().to_string();
        assert_eq!(
            e,
            "linux.resources.blockIO.weight is set, but this kernel's blkio controller has no blkio.weight"
        );
        let bfq = Fake::v1().set("blkio/blkio.bfq.weight", "100");
        assert_eq!(
            files(&v1_writes(&l, &bfq).unwrap()),
            ["blkio.bfq.weight=500"]
        );
        let l = limits(r#"{"memory":{"kernel":1048576}}"#);
        assert_eq!(
            v1_writes(&l, &Fake::v1()).unwrap(),
            vec![],
            "ignored, as runc does"
        );
        let l = limits(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":1}]}"#);
        assert_eq!(
            v1_writes(&l, &Fake::v1()).unwrap_err().to_string(),
            "linux.resources.hugepageLimits[0] is set, but the hugetlb cgroup controller is not mounted on this host"
        );
    }

    #[test]
    fn memory_and_memsw_follow_the_direction_of_the_change() {
        let l = limits(r#"{"memory":{"limit":209715200,"swap":209715200}}"#);
        // Raising from 100M: memsw first, or the limit would pass it.
        let up = Fake::v1()
            .set("memory/memory.limit_in_bytes", "104857600")
            .set("memory/memory.memsw.limit_in_bytes", "104857600");
        assert_eq!(
            files(&v1_writes(&l, &up).unwrap()),
            [
                "memory.memsw.limit_in_bytes=209715200",
                "memory.limit_in_bytes=209715200"
            ]
        );
        // Lowering from 400M: the limit first, or memsw would go below it.
        let down = Fake::v1()
            .set("memory/memory.limit_in_bytes", "419430400")
            .set("memory/memory.memsw.limit_in_bytes", "419430400");
        assert_eq!(
            files(&v1_writes(&l, &down).unwrap()),
            [
                "memory.limit_in_bytes=209715200",
                "memory.memsw.limit_in_bytes=209715200"
            ]
        );
        // A new cgroup (no limit yet): the limit first.
        assert_eq!(
            files(&v1_writes(&l, &Fake::v1()).unwrap())[0],
            "memory.limit_in_bytes=209715200"
        );
    }

    #[test]
    fn no_memory_limit_means_no_swap_limit_where_swap_is_accounted() {
        let l = limits(r#"{"memory":{"limit":-1}}"#);
        assert_eq!(
            files(&v1_writes(&l, &Fake::v1()).unwrap()),
            ["memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=-1"]
        );
        let no_swap = Fake::v1().without("memory/memory.memsw.limit_in_bytes");
        assert_eq!(
            files(&v1_writes(&l, &no_swap).unwrap()),
            ["memory.limit_in_bytes=-1"]
        );
        assert_eq!(
            files(&v2_writes(&l, &Fake::v2()).unwrap()),
            ["memory.swap.max=max", "memory.max=max"]
        );
        let v2_no_swap = Fake::v2().without("/memory.swap.max");
        assert_eq!(
            files(&v2_writes(&l, &v2_no_swap).unwrap()),
            ["memory.max=max"]
        );
    }

    #[test]
    fn period_before_quota_retried_after_it() {
        let l = limits(r#"{"cpu":{"shares":512,"quota":50000,"period":100000}}"#);
        let w = v1_writes(&l, &Fake::v1()).unwrap();
        assert_eq!(
            files(&w),
            [
                "cpu.shares=512",
                "cpu.cfs_period_us=100000",
                "cpu.cfs_quota_us=50000"
            ]
        );
        assert!(w[1].retry_after_next && !w[2].retry_after_next);
        let alone = v1_writes(&limits(r#"{"cpu":{"period":50000}}"#), &Fake::v1()).unwrap();
        assert!(!alone[0].retry_after_next);
        assert_eq!(
            files(&v2_writes(&l, &Fake::v2()).unwrap()),
            ["cpu.weight=20", "cpu.max=50000 100000"]
        );
    }

    #[test]
    fn v2_quota_or_period_alone_keeps_the_other() {
        let quota = limits(r#"{"cpu":{"quota":50000}}"#);
        assert_eq!(
            files(&v2_writes(&quota, &Fake::v2()).unwrap()),
            ["cpu.max=50000"]
        );
        let period = limits(r#"{"cpu":{"period":50000}}"#);
        let limited = Fake::v2().set("/cpu.max", "20000 100000");
        assert_eq!(
            files(&v2_writes(&period, &limited).unwrap()),
            ["cpu.max=20000 50000"]
        );
    }

    #[test]
    fn v2_weight_from_shares() {
        assert_eq!(
            files(&v2_writes(&limits(r#"{"cpu":{"shares":1024}}"#), &Fake::v2()).unwrap()),
            ["cpu.weight=39"]
        );
        assert_eq!(
            files(&v2_writes(&limits(r#"{"cpu":{"shares":2}}"#), &Fake::v2()).unwrap()),
            ["cpu.weight=1"]
        );
    }

    #[test]
    fn v2_swap_is_memsw_less_memory() {
        let l = limits(r#"{"memory":{"limit":100,"swap":300}}"#);
        assert_eq!(
            files(&v2_writes(&l, &Fake::v2()).unwrap()),
            ["memory.swap.max=200", "memory.max=100"]
        );
        let e = v2_writes(&limits(r#"{"memory":{"swap":300}}"#), &Fake::v2()).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.memory.swap"),
            "{e}"
        );
    }

    #[test]
    fn check_before_update_refuses_a_limit_under_usage() {
        let l = limits(r#"{"memory":{"limit":4000000,"checkBeforeUpdate":true}}"#);
        assert!(v1_writes(&l, &Fake::v1()).is_err());
        assert!(v2_writes(&l, &Fake::v2()).is_err());
        let l = limits(r#"{"memory":{"limit":6000000,"checkBeforeUpdate":true}}"#);
        assert!(v1_writes(&l, &Fake::v1()).is_ok());
    }

    #[test]
    fn unified_only_on_v2_and_last() {
        let l = limits(r#"{"unified":{"memory.high":"1000000"},"pids":{"limit":5}}"#);
        assert_eq!(v1_writes(&l, &Fake::v1()), Err(ResourceError::UnifiedOnV1));
        let v2 = Fake::v2().set("/memory.high", "max");
        assert_eq!(
            files(&v2_writes(&l, &v2).unwrap()),
            ["pids.max=5", "memory.high=1000000"]
        );
        assert!(v2_writes(&l, &Fake::v2()).is_err(), "memory.high missing");
    }

    #[test]
    fn v2_io_weight_converted_without_bfq() {
        let l = limits(
            r#"{"blockIO":{"weight":1000,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":0}]}}"#,
        );
        assert_eq!(
            files(&v2_writes(&l, &Fake::v2()).unwrap()),
            ["io.weight=10000", "io.max=8:0 rbps=max"]
        );
    }

    #[test]
    fn v2_device_weights_need_bfq() {
        let l = limits(r#"{"blockIO":{"weightDevice":[{"major":8,"minor":0,"weight":500}]}}"#);
        let e = v2_writes(&l, &Fake::v2()).unwrap_err().to_string();
        assert!(e.contains("need the BFQ scheduler"), "{e}");
        let bfq = Fake::v2().set("/io.bfq.weight", "default 100");
        assert_eq!(
            files(&v2_writes(&l, &bfq).unwrap()),
            ["io.bfq.weight=8:0 500"]
        );
    }

    #[test]
    fn rdma_names_only_the_limits_given() {
        let l = limits(r#"{"rdma":{"mlx4_0":{"hcaHandles":2}}}"#);
        let v2 = Fake::v2().set("/rdma.max", "");
        assert_eq!(
            files(&v2_writes(&l, &v2).unwrap()),
            ["rdma.max=mlx4_0 hca_handle=2"]
        );
    }

    #[test]
    fn restore_values() {
        assert_eq!(
            restore_value("cpu.shares", "1024\n", "2"),
            Some("1024".into())
        );
        assert_eq!(
            restore_value(
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\n",
                "1"
            ),
            Some("0".into())
        );
        assert_eq!(
            restore_value(
                "blkio.throttle.read_bps_device",
                "8:0 100\n8:16 200\n",
                "8:16 5"
            ),
            Some("8:16 200".into())
        );
        assert_eq!(
            restore_value("blkio.throttle.read_bps_device", "", "8:16 5"),
            Some("8:16 0".into())
        );
        assert_eq!(
            restore_value("io.max", "", "8:0 rbps=5"),
            Some("8:0 rbps=max wbps=max riops=max wiops=max".into())
        );
        assert_eq!(
            restore_value("io.weight", "default 100\n", "200"),
            Some("100".into())
        );
        assert_eq!(
            restore_value("net_prio.ifpriomap", "lo 0\neth0 3\n", "eth0 5"),
            Some("eth0 3".into())
        );
    }
}
