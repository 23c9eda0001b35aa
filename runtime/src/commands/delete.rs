use anyhow::Context;
use minirun::cli::{Cli, Delete};
use minirun::container::{lifecycle, list_ids};

pub fn run(cli: &Cli, d: &Delete) -> anyhow::Result<u8> {
    if !d.regex {
        lifecycle::delete(&cli.root, &d.id, d.force)?;
        return Ok(0);
    }
    let pattern = regex::Regex::new(&d.id).with_context(|| format!("--regex {:?}", d.id))?;
    let ids = list_ids(&cli.root).with_context(|| format!("listing {}", cli.root.display()))?;
    let mut failed = 0;
    for id in ids.iter().filter(|id| pattern.is_match(id)) {
        if let Err(e) = lifecycle::delete(&cli.root, id, d.force) {
            minirun::log::error(&e.to_string());
            failed += 1;
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} container(s) matching {:?} were not deleted",
        d.id
    );
    Ok(0)
}
