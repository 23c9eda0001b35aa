//! linux.resources.devices as runc applies them. The config's rules come
//! first, then the devices every container may use (runc's list: mknod of any
//! char or block device, the standard nodes, ptys and tun/tap; a standard
//! node the config lists in linux.devices is left to the config), and the
//! whole list is played through a model of the kernel's v1 device controller
//! (`State`): a default (allow or deny everything) and exceptions. That final
//! state is what the cgroup gets: on v1 as the fewest allow/deny writes that
//! take the cgroup's current state (its devices.list) there, on v2 as the
//! eBPF program (`device_filter`). A config without rules gets the default
//! list alone: everything denied but the standard devices, as with runc.
//!
//! Like runc, a deny that would punch a hole in a wildcard exception is
//! refused rather than silently ignored as v1 would.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("linux.resources.devices[{index}]: {why}")]
pub struct RuleError {
    pub index: usize,
    pub why: String,
}

/// Device node kind as the cgroup sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Every kind (`a`): only with wildcard numbers.
    All,
    Block,
    Char,
}

/// Access bits, as in the kernel: mknod, read, write.
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
pub const ALL_ACCESS: u8 = MKNOD | READ | WRITE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// None: any (`*`).
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    /// A rule in the v1 syntax ("c 1:3 rwm", "b *:* m", "a"), as devices.list
    /// shows them.
    pub fn from_v1(allow: bool, text: &str) -> Option<Rule> {
        let mut parts = text.split_whitespace();
        let kind = match parts.next()? {
            "a" => Kind::All,
            "b" => Kind::Block,
            "c" => Kind::Char,
            _ => return None,
        };
        let (major, minor) = match parts.next() {
            None => ("*", "*"),
            Some(n) => n.split_once(':')?,
        };
        let num = |n: &str| -> Option<Option<u32>> {
            if n == "*" {
                Some(None)
            } else {
                n.parse().ok().map(Some)
            }
        };
        Some(Rule {
            allow,
            kind,
            major: num(major)?,
            minor: num(minor)?,
            access: parse_access(parts.next().unwrap_or("rwm"))?,
        })
    }

    /// The file a v1 cgroup takes the rule in.
    pub fn v1_file(&self) -> &'static str {
        if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }

    /// The v1 text for devices.allow / devices.deny ("c 1:3 rwm", "a").
    pub fn v1_text(&self) -> String {
        if self.kind == Kind::All {
            return "a".into();
        }
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            if self.kind == Kind::Block { 'b' } else { 'c' },
            num(self.major),
            num(self.minor),
            access_text(self.access)
        )
    }
}

pub fn access_text(access: u8) -> String {
    [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
        .iter()
        .filter(|(bit, _)| access & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

fn parse_access(text: &str) -> Option<u8> {
    text.chars().try_fold(0, |a, c| {
        Some(
            a | match c {
                'r' => READ,
                'w' => WRITE,
                'm' => MKNOD,
                _ => return None,
            },
        )
    })
}

/// runc's devices allowed to every container, after the config's rules;
/// the path, when there is one, is the node a config may list itself.
type Default = (Option<&'static str>, Kind, Option<u32>, Option<u32>, u8);
const DEFAULTS: [Default; 11] = [
    (None, Kind::Char, None, None, MKNOD),
    (None, Kind::Block, None, None, MKNOD),
    (Some("/dev/null"), Kind::Char, Some(1), Some(3), ALL_ACCESS),
    (
        Some("/dev/random"),
        Kind::Char,
        Some(1),
        Some(8),
        ALL_ACCESS,
    ),
    (Some("/dev/full"), Kind::Char, Some(1), Some(7), ALL_ACCESS),
    (Some("/dev/tty"), Kind::Char, Some(5), Some(0), ALL_ACCESS),
    (Some("/dev/zero"), Kind::Char, Some(1), Some(5), ALL_ACCESS),
    (
        Some("/dev/urandom"),
        Kind::Char,
        Some(1),
        Some(9),
        ALL_ACCESS,
    ),
    // /dev/pts/*, /dev/ptmx
    (None, Kind::Char, Some(136), None, ALL_ACCESS),
    (None, Kind::Char, Some(5), Some(2), ALL_ACCESS),
    // tun/tap
    (None, Kind::Char, Some(10), Some(200), ALL_ACCESS),
];

/// The rule list of a config: its linux.resources.devices in order, then the
/// defaults (less a standard node `linux_devices` lists).
pub fn from_spec(
    rules: &[LinuxDeviceCgroup],
    linux_devices: &[LinuxDevice],
) -> Result<Vec<Rule>, RuleError> {
    let mut out = Vec::with_capacity(rules.len() + DEFAULTS.len());
    for (index, d) in rules.iter().enumerate() {
        let bad = |why: String| RuleError { index, why };
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => Kind::All,
            Some(LinuxDeviceType::B) => Kind::Block,
            Some(LinuxDeviceType::C) => Kind::Char,
            Some(t) => {
                return Err(bad(format!(
                    "type {:?}: the device cgroup knows a, b and c",
                    t.as_str()
                )))
            }
        };
        let access = match d.access().as_deref() {
            None | Some("") => return Err(bad("access is empty".into())),
            Some(a) => parse_access(a)
                .ok_or_else(|| bad(format!("access {a:?}: only r, w and m are device access")))?,
        };
        let number = |n: Option<i64>, what: &str| match n {
            None | Some(-1) => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| bad(format!("{what} {n} is not a device number"))),
        };
        let (major, minor) = (number(d.major(), "major")?, number(d.minor(), "minor")?);
        if kind == Kind::All && (major.is_some() || minor.is_some()) {
            return Err(bad(
                "type a (all devices) takes no major or minor number".into()
            ));
        }
        out.push(Rule {
            allow: d.allow(),
            kind,
            major,
            minor,
            access,
        });
    }
    for (path, kind, major, minor, access) in DEFAULTS {
        if path.is_some_and(|p| linux_devices.iter().any(|d| d.path().as_os_str() == p)) {
            continue;
        }
        out.push(Rule {
            allow: true,
            kind,
            major,
            minor,
            access,
        });
    }
    Ok(out)
}

type Key = (Kind, Option<u32>, Option<u32>);

/// The kernel's v1 device controller: a default and exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub default_allow: bool,
    exceptions: BTreeMap<Key, u8>,
}

impl State {
    /// A list played from "everything denied", as runc starts a container's.
    pub fn from_rules(rules: &[Rule]) -> Result<Self, RuleError> {
        let mut s = State {
            default_allow: false,
            exceptions: BTreeMap::new(),
        };
        for (index, r) in rules.iter().enumerate() {
            s.apply(r).map_err(|why| RuleError {
                index,
                why: why.to_string(),
            })?;
        }
        Ok(s)
    }

    /// A v1 cgroup's devices.list: "a *:* rwm" is allow-all (the list cannot
    /// show a blacklist's exceptions); otherwise each line is allowed. None
    /// for a line that is no rule.
    pub fn from_list(text: &str) -> Option<Self> {
        let mut s = State {
            default_allow: false,
            exceptions: BTreeMap::new(),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r = Rule::from_v1(true, line)?;
            if r.kind == Kind::All {
                s.default_allow = true;
                s.exceptions.clear();
                return Some(s);
            }
            *s.exceptions.entry((r.kind, r.major, r.minor)).or_default() |= r.access;
        }
        Some(s)
    }

    fn apply(&mut self, r: &Rule) -> Result<(), &'static str> {
        if r.kind == Kind::All {
            self.default_allow = r.allow;
            self.exceptions.clear();
            return Ok(());
        }
        let key = (r.kind, r.major, r.minor);
        // An exception is something the default does not give: an allow in
        // a deny-all state, a deny in an allow-all one.
        if r.allow != self.default_allow {
            *self.exceptions.entry(key).or_default() |= r.access;
            return Ok(());
        }
        // Taking access back. v1 would silently keep what a wider wildcard
        // exception gives: refuse that instead.
        for wider in [
            (r.kind, None, r.minor),
            (r.kind, r.major, None),
            (r.kind, None, None),
        ] {
            if wider != key
                && self
                    .exceptions
                    .get(&wider)
                    .is_some_and(|a| a & r.access != 0)
            {
                return Err("this rule would take access from part of a wider wildcard rule, which the device cgroup cannot do");
            }
        }
        if let Some(a) = self.exceptions.get_mut(&key) {
            *a &= !r.access;
            if *a == 0 {
                self.exceptions.remove(&key);
            }
        }
        Ok(())
    }

    /// The state as rules: the default first, then the exceptions (a list
    /// that, played from anything, gives this state).
    pub fn rules(&self) -> Vec<Rule> {
        let mut out = vec![Rule {
            allow: self.default_allow,
            kind: Kind::All,
            major: None,
            minor: None,
            access: ALL_ACCESS,
        }];
        out.extend(
            self.exceptions
                .iter()
                .map(|(&(kind, major, minor), &access)| Rule {
                    allow: !self.default_allow,
                    kind,
                    major,
                    minor,
                    access,
                }),
        );
        out
    }

    /// The v1 writes that take a cgroup from `self` to `target`: the fewest,
    /// except that a blacklist (whose exceptions devices.list hides) or a
    /// change of default is started over with "a".
    pub fn transition(&self, target: &State) -> Vec<Rule> {
        if self.default_allow || self.default_allow != target.default_allow {
            return target.rules();
        }
        let mut out = Vec::new();
        for (&(kind, major, minor), &old) in &self.exceptions {
            let dropped = old & !target.exceptions.get(&(kind, major, minor)).unwrap_or(&0);
            if dropped != 0 {
                out.push(Rule {
                    allow: target.default_allow,
                    kind,
                    major,
                    minor,
                    access: dropped,
                });
            }
        }
        for (&(kind, major, minor), &new) in &target.exceptions {
            let gained = new & !self.exceptions.get(&(kind, major, minor)).unwrap_or(&0);
            if gained != 0 {
                out.push(Rule {
                    allow: !target.default_allow,
                    kind,
                    major,
                    minor,
                    access: gained,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    fn texts(rules: &[Rule]) -> Vec<String> {
        rules
            .iter()
            .map(|r| format!("{} {}", if r.allow { "allow" } else { "deny" }, r.v1_text()))
            .collect()
    }

    /// What Docker 20.10 sends: deny all, the standard nodes, deny fuse.
    const DOCKER: &str = r#"[{"allow":false,"access":"rwm"},
        {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
        {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
        {"allow":true,"type":"c","major":5,"minor":1,"access":"rwm"},
        {"allow":false,"type":"c","major":10,"minor":229,"access":"rwm"}]"#;

    #[test]
    fn dockers_rules_get_runcs_defaults() {
        let rules = from_spec(&spec_rules(DOCKER), &[]).unwrap();
        let state = State::from_rules(&rules).unwrap();
        let got = texts(&state.rules());
        assert_eq!(got[0], "deny a");
        for want in [
            "allow c *:* m",
            "allow b *:* m",
            "allow c 10:200 rwm",
            "allow c 5:1 rwm",
            "allow c 136:* rwm",
            "allow c 1:3 rwm",
        ] {
            assert!(got.contains(&want.to_string()), "{want}: {got:?}");
        }
        assert!(!got.iter().any(|r| r.contains("10:229")), "{got:?}");
    }

    #[test]
    fn no_rules_is_deny_all_but_the_defaults() {
        let state = State::from_rules(&from_spec(&[], &[]).unwrap()).unwrap();
        assert!(!state.default_allow);
        assert_eq!(state.rules().len(), 1 + 11);
    }

    #[test]
    fn a_listed_standard_node_is_the_configs() {
        let null: LinuxDevice =
            serde_json::from_str(r#"{"path":"/dev/null","type":"c","major":1,"minor":3}"#).unwrap();
        let rules = from_spec(&[], &[null]).unwrap();
        assert!(!texts(&rules).contains(&"allow c 1:3 rwm".to_string()));
    }

    #[test]
    fn later_rules_win_and_access_is_per_bit() {
        let rules = from_spec(
            &spec_rules(
                r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":8,"minor":0,"access":"rw"},
                    {"allow":false,"type":"b","major":8,"minor":0,"access":"w"}]"#,
            ),
            &[],
        )
        .unwrap();
        let state = State::from_rules(&rules).unwrap();
        assert!(texts(&state.rules()).contains(&"allow b 8:0 r".to_string()));
        let allow_all = State::from_rules(
            &from_spec(&spec_rules(r#"[{"allow":true,"access":"rwm"}]"#), &[]).unwrap(),
        )
        .unwrap();
        assert!(allow_all.default_allow);
        assert_eq!(
            allow_all.rules().len(),
            1,
            "defaults add nothing to allow-all"
        );
    }

    #[test]
    fn a_hole_in_a_wildcard_is_refused() {
        let rules = spec_rules(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":136,"access":"rwm"},
                {"allow":false,"type":"c","major":136,"minor":3,"access":"r"}]"#,
        );
        let e = State::from_rules(&from_spec(&rules, &[]).unwrap()).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.devices[2]"),
            "{e}"
        );
    }

    #[test]
    fn bad_rules_are_refused_by_index() {
        for (json, index) in [
            (r#"[{"allow":true,"type":"p","access":"rwm"}]"#, 0),
            (r#"[{"allow":true,"type":"c","access":""}]"#, 0),
            (
                r#"[{"allow":true},{"allow":true,"type":"c","access":"rx"}]"#,
                0,
            ),
            (r#"[{"allow":true,"type":"a","major":1,"access":"r"}]"#, 0),
        ] {
            match from_spec(&spec_rules(json), &[]) {
                Err(RuleError { index: i, .. }) => assert_eq!(i, index, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
    }

    #[test]
    fn transitions() {
        let target = State::from_rules(&from_spec(&spec_rules(DOCKER), &[]).unwrap()).unwrap();
        // A new cgroup under an allow-all parent: start over with "a".
        let fresh = State::from_list("a *:* rwm\n").unwrap();
        let t = fresh.transition(&target);
        assert_eq!(texts(&t[..1]), ["deny a"]);
        assert_eq!(t.len(), target.rules().len());
        // Already there: nothing to write.
        let listed: String = target.rules()[1..]
            .iter()
            .map(|r| format!("{}\n", r.v1_text()))
            .collect();
        let current = State::from_list(&listed).unwrap();
        assert_eq!(State::from_list("c 1:3 rwm\nx 1:2 r\n"), None, "not a rule");
        assert_eq!(current, target);
        assert!(current.transition(&target).is_empty());
        // One exception fewer and one wider: only those two writes.
        let mut less = target.clone();
        less.exceptions.remove(&(Kind::Char, Some(10), Some(200)));
        less.exceptions.insert((Kind::Char, Some(1), Some(3)), READ);
        assert_eq!(
            texts(&target.transition(&less)),
            ["deny c 1:3 wm", "deny c 10:200 rwm"]
        );
        assert_eq!(
            texts(&less.transition(&target)),
            ["allow c 1:3 wm", "allow c 10:200 rwm"]
        );
    }
}
