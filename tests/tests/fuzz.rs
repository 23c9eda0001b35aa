//! Fuzzing of every parser that takes input from outside: config.json loading
//! and validation (with linux.resources and the device rules read as create
//! reads them), the `-p` grammar, `network create` requests, and the OCI
//! state on the network hook's stdin. Goal: no panic and no hang, whatever
//! the bytes.
//!
//! Why proptest and not cargo-fuzz: cargo-fuzz needs a nightly toolchain
//! (libFuzzer's sanitizer flags), and this project builds with stable only;
//! proptest runs in `cargo test`, on stable, with a persisted record of every
//! failure it finds (`fuzz.proptest-regressions`, replayed first). The inputs
//! are mutations of a corpus kept in the repo (tests/fuzz-corpus/<target>:
//! real configs of minirun, podman and Docker, real `-p` specs, requests and
//! states), mutated the way libFuzzer's byte mutators do: bit flips,
//! insertions, deletions, duplicated spans and "interesting" tokens spliced
//! in (boundary numbers, empty and huge strings, nulls, paths). Each target
//! runs a bounded number of cases (FUZZ_CASES, default 15000) so the whole
//! file takes a minute or so in `.ci/run`; a case that takes longer than
//! two seconds counts as a hang.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use minirun_tests::repo_dir;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Tokens that break parsers more often than random bytes do.
const INTERESTING: &[&str] = &[
    "-1",
    "0",
    "1",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "99999999999999999999999",
    "1e308",
    "-0",
    "null",
    "true",
    "\"\"",
    "[]",
    "{}",
    "\"/\"",
    "\"..\"",
    "\"../../etc\"",
    "\"\\u0000\"",
    ":",
    "-",
    ",",
    "/",
    "::",
    "[::1]",
    "0.0.0.0",
    "255.255.255.255",
    "/33",
    "=",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Flip one bit of the byte at a fraction of the length.
    Flip(u16, u8),
    Insert(u16, Vec<u8>),
    Delete(u16, u8),
    /// Copy a span to another place.
    Duplicate(u16, u8, u16),
    Token(u16, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<u16>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<u16>(), any::<u8>()).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<u16>(), any::<u8>(), any::<u16>())
            .prop_map(|(from, n, to)| Mutation::Duplicate(from, n, to)),
        (any::<u16>(), 0..INTERESTING.len()).prop_map(|(at, t)| Mutation::Token(at, t)),
    ]
}

/// A change to one node of a JSON document: what gets past the parser to
/// the validation behind it (byte mutations mostly break the syntax).
#[derive(Debug, Clone)]
enum JsonChange {
    Number(u16, usize),
    Text(u16, usize),
    Remove(u16),
    Null(u16),
    Empty(u16),
    DuplicateElement(u16),
}

const NUMBERS: &[&str] = &[
    "-1",
    "0",
    "1",
    "2",
    "255",
    "65535",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "0.5",
    "1e308",
];

fn long_text() -> String {
    "a".repeat(5000)
}

const TEXTS: &[&str] = &[
    "",
    "/",
    "..",
    "../../..",
    "a/b",
    "\0",
    "-1",
    "rwmx",
    "a",
    "*",
    "0-",
    "1-0",
    "c",
    "p",
    "RLIMIT_BOGUS",
    "CAP_BOGUS",
    "SCMP_ACT_BOGUS",
    "user",
    "bind",
    "LONG",
];

fn json_change() -> impl Strategy<Value = JsonChange> {
    prop_oneof![
        (any::<u16>(), 0..NUMBERS.len()).prop_map(|(a, t)| JsonChange::Number(a, t)),
        (any::<u16>(), 0..TEXTS.len()).prop_map(|(a, t)| JsonChange::Text(a, t)),
        any::<u16>().prop_map(JsonChange::Remove),
        any::<u16>().prop_map(JsonChange::Null),
        any::<u16>().prop_map(JsonChange::Empty),
        any::<u16>().prop_map(JsonChange::DuplicateElement),
    ]
}

/// Every node's JSON pointer, the root first.
fn pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                pointers(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The seed with `changes` made, or the seed's bytes if it is no JSON.
fn change_json(seed: &[u8], changes: &[JsonChange]) -> Vec<u8> {
    use serde_json::Value;
    let Ok(mut doc) = serde_json::from_slice::<Value>(seed) else {
        return seed.to_vec();
    };
    for c in changes {
        let mut all = Vec::new();
        pointers(&doc, String::new(), &mut all);
        let pick = |f: &u16| all[at(*f, all.len())].clone();
        // Numbers for numbers and text for text, mostly: a changed type only
        // tests the JSON decoder again.
        let of_kind = |f: &u16, number: bool| {
            let kind: Vec<&String> = all
                .iter()
                .filter(|p| {
                    doc.pointer(p)
                        .is_some_and(|v| if number { v.is_number() } else { v.is_string() })
                })
                .collect();
            (!kind.is_empty()).then(|| kind[at(*f, kind.len())].clone())
        };
        match c {
            JsonChange::Number(f, t) => {
                if let Some(n) = of_kind(f, true).and_then(|p| doc.pointer_mut(&p)) {
                    *n = serde_json::from_str(NUMBERS[*t]).unwrap_or(Value::Null);
                }
            }
            JsonChange::Text(f, t) => {
                if let Some(n) = of_kind(f, false).and_then(|p| doc.pointer_mut(&p)) {
                    let text = if TEXTS[*t] == "LONG" {
                        long_text()
                    } else {
                        TEXTS[*t].into()
                    };
                    *n = Value::String(text);
                }
            }
            JsonChange::Remove(f) => {
                let p = pick(f);
                if let Some((parent, key)) = p.rsplit_once('/') {
                    match doc.pointer_mut(parent) {
                        Some(Value::Object(m)) => {
                            m.remove(&key.replace("~1", "/").replace("~0", "~"));
                        }
                        Some(Value::Array(a)) => {
                            if let Ok(i) = key.parse::<usize>() {
                                if i < a.len() {
                                    a.remove(i);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            JsonChange::Null(f) => {
                if let Some(n) = doc.pointer_mut(&pick(f)) {
                    *n = Value::Null;
                }
            }
            JsonChange::Empty(f) => {
                if let Some(n) = doc.pointer_mut(&pick(f)) {
                    *n = match n {
                        Value::Array(_) => Value::Object(Default::default()),
                        _ => Value::Array(Vec::new()),
                    };
                }
            }
            JsonChange::DuplicateElement(f) => {
                if let Some(Value::Array(a)) = doc.pointer_mut(&pick(f)) {
                    if let Some(first) = a.first().cloned() {
                        a.push(first);
                    }
                }
            }
        }
    }
    serde_json::to_vec(&doc).unwrap_or_else(|_| seed.to_vec())
}

fn at(fraction: u16, len: usize) -> usize {
    (fraction as usize * len) / (u16::MAX as usize + 1)
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in mutations {
        match m {
            Mutation::Flip(f, bit) if !b.is_empty() => {
                let i = at(*f, b.len());
                b[i] ^= 1 << bit;
            }
            Mutation::Insert(f, bytes) => {
                let i = at(*f, b.len() + 1);
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete(f, n) if !b.is_empty() => {
                let i = at(*f, b.len());
                let end = (i + *n as usize + 1).min(b.len());
                b.drain(i..end);
            }
            Mutation::Duplicate(from, n, to) if !b.is_empty() => {
                let i = at(*from, b.len());
                let span: Vec<u8> = b[i..(i + *n as usize + 1).min(b.len())].to_vec();
                let j = at(*to, b.len() + 1);
                b.splice(j..j, span);
            }
            Mutation::Token(f, t) => {
                let i = at(*f, b.len() + 1);
                b.splice(i..i, INTERESTING[*t].bytes());
            }
            _ => {}
        }
    }
    b
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = repo_dir().join("tests/fuzz-corpus").join(target);
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds.into_iter().map(|(_, b)| b).collect()
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(15000)
}

/// Runs `target` on the seeds as they are, then on mutations of them.
fn fuzz(name: &str, target: impl Fn(&[u8])) {
    let seeds = corpus(name);
    for s in &seeds {
        target(s);
    }
    // Half the cases change JSON nodes (what gets past the parser), half
    // bytes (what tests the parser).
    let strategy = prop_oneof![
        (
            prop::sample::select(seeds.clone()),
            prop::collection::vec(json_change(), 1..6),
        )
            .prop_map(|(seed, changes)| change_json(&seed, &changes)),
        (
            prop::sample::select(seeds),
            prop::collection::vec(mutation(), 1..12),
        )
            .prop_map(|(seed, muts)| apply(&seed, &muts)),
    ];
    let config = Config {
        cases: cases(),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "tests/fuzz.proptest-regressions",
            ),
        )),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |input| {
        let started = Instant::now();
        target(&input);
        let took = started.elapsed();
        prop_assert!(
            took < Duration::from_secs(2),
            "{name}: took {took:?} (a hang) on {:?}",
            String::from_utf8_lossy(&input)
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// A bundle whose rootfs exists, for validation to look at.
fn scratch_bundle() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("minirun-fuzz-{}", std::process::id()));
    fs::create_dir_all(dir.join("rootfs")).unwrap();
    dir
}

#[test]
fn config_json_loading_and_validation() {
    let bundle = scratch_bundle();
    let (parsed, valid) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    fuzz("config", |bytes| {
        let Ok(spec) = minirun::spec::parse(bytes) else {
            return;
        };
        parsed.set(parsed.get() + 1);
        if minirun::spec::validate(&spec, &bundle).is_ok() {
            valid.set(valid.get() + 1);
        }
        let linux = spec.linux().as_ref();
        let _ = minirun::cgroups::Resources::for_create(
            linux.and_then(|l| l.resources().as_ref()),
            linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]),
        );
        if let Some(r) = linux.and_then(|l| l.resources().as_ref()) {
            let _ = minirun::cgroups::Resources::for_update(r);
        }
    });
    // How deep the mutations reach: past the JSON parser, past validation.
    eprintln!("config: {} parsed, {} valid", parsed.get(), valid.get());
    let _ = fs::remove_dir_all(bundle);
}

#[test]
fn publish_specs() {
    fuzz("ports", |bytes| {
        let _ = minirun_net::ports::parse_list(&String::from_utf8_lossy(bytes));
    });
}

/// `minirun network create` as its command line would give it.
fn create_request(line: &str) -> minirun_net::networks::CreateRequest {
    let mut req = minirun_net::networks::CreateRequest {
        name: String::new(),
        driver: String::new(),
        subnets: Vec::new(),
        gateways: Vec::new(),
        ip_ranges: Vec::new(),
        ipv6: false,
        ipv4: None,
        internal: false,
        mtu: None,
        options: Vec::new(),
        labels: Vec::new(),
        created: "2026-12-02T00:00:00Z".into(),
    };
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        let mut value = || words.next().unwrap_or_default().to_string();
        match w {
            "-d" | "--driver" => req.driver = value(),
            "--subnet" => req.subnets.push(value()),
            "--gateway" => req.gateways.push(value()),
            "--ip-range" => req.ip_ranges.push(value()),
            "--ipv6" => req.ipv6 = true,
            "--ipv4=false" => req.ipv4 = Some(false),
            "--internal" => req.internal = true,
            "--mtu" => req.mtu = value().parse().ok(),
            "-o" | "--opt" => req.options.push(value()),
            "--label" => req.labels.push(value()),
            name => req.name = name.to_string(),
        }
    }
    req
}

#[test]
fn network_create_requests() {
    let dir = std::env::temp_dir().join(format!("minirun-fuzz-net-{}", std::process::id()));
    let store = minirun_net::store::Store {
        run_dir: dir.join("run"),
        config_dir: dir.join("networks"),
    };
    fuzz("network-create", |bytes| {
        let req = create_request(&String::from_utf8_lossy(bytes));
        if let Ok(net) = minirun_net::networks::create(&store, &req, &Default::default()) {
            // Each request starts from no network: none of them conflicts.
            let _ = fs::remove_file(store.network_config(&net.name));
        }
    });
    let _ = fs::remove_dir_all(Path::new(&dir));
}

#[test]
fn the_hooks_oci_state() {
    use minirun_net::mode::{ALIASES_ANNOTATION, IP_ANNOTATION, NETWORK_ANNOTATION};
    fuzz("hook-state", |bytes| {
        let Ok(state) = minirun_net::state::HookState::read(bytes) else {
            return;
        };
        let _ = minirun_net::mode::from_annotations(&state.annotations);
        if let Some(list) = state.annotations.get(minirun_net::ports::PORTS_ANNOTATION) {
            let _ = minirun_net::ports::parse_list(list);
        }
        if let Some(n) = state.annotations.get(NETWORK_ANNOTATION) {
            let _ = minirun_net::networks::valid_name(n);
        }
        if let Some(ip) = state.annotations.get(IP_ANNOTATION) {
            let _ = ip.parse::<std::net::Ipv4Addr>();
        }
        if let Some(a) = state.annotations.get(ALIASES_ANNOTATION) {
            let _ = a.split(',').all(minirun_net::networks::valid_alias);
        }
    });
}
