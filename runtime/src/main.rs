//! `minirun`: runc's command line over the `minirun` library.

#![no_main]

use clap::Parser;
use minirun::cli::{Cli, Command, LogFormat};
use minirun::log;

mod commands;

/// C's entry point; Rust's runtime set-up is skipped (see
/// `minirun_net::process_start`): this process starts twice per container.
#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    minirun_net::process_start::prepare();
    minirun::trace::from_env();
    minirun::trace::point("main");
    // process::exit, unlike a return to C, flushes Rust's stdout first.
    std::process::exit(status().into())
}

fn status() -> u8 {
    // The sealed re-exec before clap's parse, which the new process makes
    // anyway; a failure here is met again after the parse, where it is logged.
    if minirun::sealed_exe::wanted_by(std::env::args_os().skip(1)) {
        let _ = minirun::sealed_exe::ensure();
    }
    let cli = Cli::parse();
    minirun::trace::point("parsed");
    let format = match cli.log_format {
        LogFormat::Text => log::Format::Text,
        LogFormat::Json => log::Format::Json,
    };
    if let Err(e) = log::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("minirun: opening log file: {e}");
        return 1;
    }
    // Only the verbs that run this binary inside a container need the sealed
    // copy; clap's reading of the verb is the authority.
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        if let Err(e) = minirun::sealed_exe::ensure() {
            log::error(&format!(
                "re-executing from a sealed copy of the runtime: {e}"
            ));
            return 1;
        }
        minirun::trace::point("sealed");
    }
    let result = match &cli.command {
        Command::Create(c) => commands::create::run(&cli, c),
        Command::Start(s) => commands::start::run(&cli, s),
        Command::Run(r) => commands::run::run(&cli, r),
        Command::State(s) => commands::state::run(&cli, s),
        Command::Kill(k) => commands::kill::run(&cli, k),
        Command::Delete(d) => commands::delete::run(&cli, d),
        Command::List(l) => commands::list::run(&cli, l),
        Command::Ps(p) => commands::ps::run(&cli, p),
        Command::Pause(a) => commands::pause::pause(&cli, a),
        Command::Resume(a) => commands::pause::resume(&cli, a),
        Command::Update(u) => commands::update::run(&cli, u),
        Command::Exec(e) => commands::exec::run(&cli, e),
        Command::Spec(s) => commands::spec::run(s),
        Command::Features => commands::features::run(),
        Command::Network(n) => commands::network::run(&cli, n),
        Command::Cluster(c) => commands::cluster::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            log::error(&e.to_string());
            1
        }
    }
}
