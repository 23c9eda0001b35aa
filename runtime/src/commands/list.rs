use minirun::cli::{Cli, List, ListFormat};
use minirun::container::{list_ids, Container};

pub fn run(cli: &Cli, l: &List) -> anyhow::Result<u8> {
    let containers: Vec<Container> = list_ids(&cli.root)?
        .iter()
        .filter_map(|id| Container::load(&cli.root, id).ok())
        .collect();
    if l.quiet {
        for c in &containers {
            out!("{}", c.state.id);
        }
        return Ok(0);
    }
    match l.format {
        ListFormat::Json => {
            let all: Vec<_> = containers.iter().map(|c| c.state.public_json()).collect();
            out!("{}", serde_json::to_string(&all)?);
        }
        ListFormat::Table => {
            let mut rows =
                vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
            for c in &containers {
                let s = &c.state;
                let pid = if s.status == minirun::container::Status::Stopped {
                    0
                } else {
                    s.pid
                };
                rows.push([
                    s.id.clone(),
                    pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    if s.owner.is_empty() {
                        "root".into()
                    } else {
                        s.owner.clone()
                    },
                ]);
            }
            let widths: Vec<usize> = (0..6)
                .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
                .collect();
            for r in &rows {
                let line: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                out!("{}", line.join("   ").trim_end());
            }
        }
    }
    Ok(0)
}
