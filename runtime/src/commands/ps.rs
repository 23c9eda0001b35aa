use std::process::Command;

use minirun::cli::{Cli, Ps};
use minirun::container::lifecycle;

/// runc's `ps`: json prints the pids; table runs ps and keeps the header and
/// the container's lines.
pub fn run(cli: &Cli, p: &Ps) -> anyhow::Result<u8> {
    let pids = lifecycle::processes(&cli.root, &p.id)?;
    match p.format.as_str() {
        "json" => out!("{}", serde_json::to_string(&pids)?),
        "table" => {
            let args = if p.ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                p.ps_args.clone()
            };
            let out = Command::new("ps").args(&args).output()?;
            anyhow::ensure!(
                out.status.success(),
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let pid_col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| anyhow::anyhow!("ps {}: no PID column", args.join(" ")))?;
            out!("{header}");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(pid_col)
                    .and_then(|f| f.parse::<i32>().ok());
                if pid.is_some_and(|pid| pids.contains(&pid)) {
                    out!("{line}");
                }
            }
        }
        other => anyhow::bail!("--format {other:?}: expected table or json"),
    }
    Ok(0)
}
