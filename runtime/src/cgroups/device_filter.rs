//! linux.resources.devices on cgroup v2: there is no devices.allow file, the
//! rules are an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the
//! container's cgroup. The program is built here from the rules of the final
//! state `device_rules` works out (the same the v1 files get), later rules
//! overriding earlier ones: it checks them from the last to the first and the
//! first that matches decides; nothing matching is a deny.
//!
//! Matching follows the v1 semantics: an allow rule matches a request whose
//! access is a subset of its own, a deny rule one that asks for any of its
//! access bits.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::device_rules::{Kind, Rule, ALL_ACCESS};

// Instruction classes, sizes, modes, operations (linux/bpf_common.h, bpf.h).
const LDX_MEM_W: u8 = 0x61;
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_X: u8 = 0xbc;
const ALU64_MOV_K: u8 = 0xb7;
const JMP_JEQ_K: u8 = 0x15;
const JMP_JNE_K: u8 = 0x55;
const JMP_EXIT: u8 = 0x95;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_ALL: i32 = ALL_ACCESS as i32;

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// The program for `rules`, in order (a `device_rules::State`'s rules: the
/// default first, then the exceptions).
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    // r1: the context {access_type, major, minor}; r2 type, r3 access,
    // r4 major, r5 minor.
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        // Each test jumps past the block when it does not match; the
        // offsets are filled in once the block's length is known.
        let mut block: Vec<Insn> = Vec::new();
        let mut skips: Vec<usize> = Vec::new();
        let mut skip_unless = |block: &mut Vec<Insn>, code: u8, reg: u8, imm: i32| {
            skips.push(block.len());
            block.push(insn(code, reg, 0, 0, imm));
        };
        match rule.kind {
            Kind::All => {}
            Kind::Block => skip_unless(&mut block, JMP_JNE_K, 2, DEV_BLOCK),
            Kind::Char => skip_unless(&mut block, JMP_JNE_K, 2, DEV_CHAR),
        }
        if let Some(m) = rule.major {
            skip_unless(&mut block, JMP_JNE_K, 4, m as i32);
        }
        if let Some(m) = rule.minor {
            skip_unless(&mut block, JMP_JNE_K, 5, m as i32);
        }
        let access = rule.access as i32;
        if rule.kind != Kind::All && access != ACC_ALL {
            block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
            if rule.allow {
                // Any access the rule does not give: not this rule.
                block.push(insn(ALU32_AND_K, 1, 0, 0, !access & ACC_ALL));
                skip_unless(&mut block, JMP_JNE_K, 1, 0);
            } else {
                // None of the access the rule takes away: not this rule.
                block.push(insn(ALU32_AND_K, 1, 0, 0, access));
                skip_unless(&mut block, JMP_JEQ_K, 1, 0);
            }
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, rule.allow as i32));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        let matches_all = skips.is_empty();
        for i in skips {
            block[i].off = (len - i - 1) as i16;
        }
        p.extend(block);
        if matches_all {
            // Nothing after a rule that matches everything is reachable, and
            // the verifier refuses unreachable code.
            return p;
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    rest: [u8; 64],
}

#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    rest: [u8; 44],
}

fn bpf<T>(cmd: libc::c_int, attr: &T) -> io::Result<i64> {
    // SAFETY: `attr` is a bpf_attr prefix of the size given, zero-padded.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;

#[repr(C)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
    rest: [u8; 52],
}

#[repr(C)]
struct InfoByFd {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
    rest: [u8; 48],
}

/// The program's id (the first words of struct bpf_prog_info: type, id).
fn program_id(prog: &OwnedFd) -> io::Result<u32> {
    let mut info = [0u32; 2];
    let attr = InfoByFd {
        bpf_fd: prog.as_raw_fd() as u32,
        info_len: std::mem::size_of_val(&info) as u32,
        info: info.as_mut_ptr() as u64,
        rest: [0; 48],
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &attr)?;
    Ok(info[1])
}

/// Takes program `id` off the cgroup `cgroup` (a cgroup minirun did not make,
/// and so does not remove, keeps its programs otherwise). Gone is fine.
pub fn detach(id: u32, cgroup: &std::path::Path) -> io::Result<()> {
    let by_id = GetFdById {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
        rest: [0; 52],
    };
    let prog = match bpf(BPF_PROG_GET_FD_BY_ID, &by_id) {
        Ok(fd) => {
            // SAFETY: a fresh descriptor from the kernel.
            unsafe { OwnedFd::from_raw_fd(fd as i32) }
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let dir = match std::fs::File::open(cgroup) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let attr = ProgAttach {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
        replace_bpf_fd: 0,
        rest: [0; 44],
    };
    match bpf(BPF_PROG_DETACH, &attr) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        r => r.map(drop),
    }
}

/// Loads the program and attaches it to the cgroup directory `cgroup`;
/// returns its id, for `detach`.
pub fn attach(program: &[Insn], cgroup: &std::path::Path) -> io::Result<u32> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..7].copy_from_slice(b"minirun");
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        rest: [0; 64],
    };
    let prog = match bpf(BPF_PROG_LOAD, &load) {
        Ok(fd) => fd,
        Err(e) => {
            // Again with the verifier's log, to say why.
            let mut log = vec![0u8; 64 * 1024];
            let with_log = ProgLoad {
                log_level: 1,
                log_size: log.len() as u32,
                log_buf: log.as_mut_ptr() as u64,
                ..load
            };
            let _ = bpf(BPF_PROG_LOAD, &with_log);
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "loading the program: {e}{}{text}",
                    if text.is_empty() { "" } else { ": " }
                ),
            ));
        }
    };
    // SAFETY: a fresh descriptor from the kernel.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let dir = std::fs::File::open(cgroup)?;
    let attach = ProgAttach {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
        rest: [0; 44],
    };
    // The attachment holds the program from here on; our fd may close.
    bpf(BPF_PROG_ATTACH, &attach)
        .map_err(|e| io::Error::new(e.kind(), format!("attaching the program: {e}")))?;
    program_id(&prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on one request, as the kernel would.
    fn eval(p: &[Insn], typ: i32, access: i32, major: i32, minor: i32) -> i64 {
        let ctx = [((access << 16) | typ) as u32, major as u32, minor as u32];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = ctx[i.off as usize / 4] as u64,
                ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                ALU32_MOV_X => r[dst] = r[src] as u32 as u64,
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP_JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
                JMP_JEQ_K if r[dst] == i.imm as i64 as u64 => pc += i.off as usize,
                JMP_JNE_K | JMP_JEQ_K => {}
                JMP_EXIT => return r[0] as i64,
                c => panic!("unknown instruction {c:#x}"),
            }
        }
    }

    const ACC_MKNOD: i32 = super::super::device_rules::MKNOD as i32;
    const ACC_READ: i32 = super::super::device_rules::READ as i32;
    const ACC_WRITE: i32 = super::super::device_rules::WRITE as i32;

    fn rules(r: &[(bool, &str)]) -> Vec<Rule> {
        r.iter()
            .map(|(allow, text)| Rule::from_v1(*allow, text).unwrap())
            .collect()
    }

    #[test]
    fn later_rules_override_earlier_ones() {
        let p = program(&rules(&[
            (false, "a"),
            (true, "c 1:3 rwm"),
            (true, "c 136:* rw"),
            (false, "c 1:3 w"),
        ]));
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(eval(&p, DEV_CHAR, ACC_READ, 1, 3), 1, "read of null");
        assert_eq!(eval(&p, DEV_CHAR, rw, 1, 3), 0, "write of null taken away");
        assert_eq!(eval(&p, DEV_CHAR, rw, 136, 7), 1, "any pty");
        assert_eq!(
            eval(&p, DEV_CHAR, ACC_MKNOD, 136, 7),
            0,
            "no mknod of a pty"
        );
        assert_eq!(
            eval(&p, DEV_BLOCK, ACC_READ, 1, 3),
            0,
            "block 1:3 is another device"
        );
        assert_eq!(
            eval(&p, DEV_CHAR, ACC_READ, 10, 200),
            0,
            "denied by default"
        );
    }

    #[test]
    fn an_allow_all_allows_and_nothing_denies() {
        let p = program(&rules(&[(true, "a")]));
        assert_eq!(eval(&p, DEV_BLOCK, ACC_ALL, 8, 0), 1);
        assert_eq!(
            p.len(),
            6 + 2,
            "one rule that matches all, nothing after it"
        );
        let p = program(&rules(&[
            (false, "c 1:3 rwm"),
            (true, "a"),
            (true, "c 1:5 r"),
        ]));
        assert_eq!(p.len(), 6 + 8 + 2, "the earlier rule is unreachable");
        let p = program(&[]);
        assert_eq!(eval(&p, DEV_CHAR, ACC_READ, 1, 3), 0);
    }

    #[test]
    fn dockers_defaults_allow_mknod_of_anything_and_tun() {
        use super::super::device_rules::{from_spec, State};
        let spec: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow":false,"access":"rwm"}]"#).unwrap();
        let state = State::from_rules(&from_spec(&spec, &[]).unwrap()).unwrap();
        let p = program(&state.rules());
        assert_eq!(eval(&p, DEV_BLOCK, ACC_MKNOD, 8, 0), 1, "mknod of a disk");
        assert_eq!(eval(&p, DEV_BLOCK, ACC_READ, 8, 0), 0, "but no reading it");
        assert_eq!(eval(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 10, 200), 1, "tun");
        assert_eq!(eval(&p, DEV_CHAR, ACC_READ, 10, 229), 0, "fuse");
    }
}
