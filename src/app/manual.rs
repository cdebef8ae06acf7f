//! The manual pages and shell completions, generated from the command-line definition that
//! `main` parses, so they can never describe flags the binary does not have. Owns
//! `clap_mangen` and `clap_complete`; knows nothing of what the commands do.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
pub use clap_complete::Shell;

/// Writes `zerotouch.1` and one page per subcommand (`zerotouch-serve.1`, …) into `dir`, or
/// the main page alone to `out` when there is no `dir`.
pub fn man_pages(
    command: clap::Command,
    dir: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    // The VERSION section takes the long version when there is one; a page that changed with
    // every commit would be a page nobody can diff, so it names the release only.
    let command = command.long_version(None::<&str>);
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))
        }
        None => clap_mangen::Man::new(command)
            .render(out)
            .context("cannot write the manual page"),
    }
}

/// Writes the completion script for `shell` to `out`.
pub fn completions(mut command: clap::Command, shell: Shell, out: &mut dyn Write) {
    let name = command.get_name().to_owned();
    clap_complete::generate(shell, &mut command, name, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("zerotouch")
            .version("1.2.3")
            .long_version("1.2.3\ncommit: abc")
            .subcommand(clap::Command::new("serve").about("Serve phones."))
    }

    #[test]
    fn the_man_page_names_the_release_not_the_commit() {
        let mut page = Vec::new();
        man_pages(command(), None, &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains("v1.2.3"), "{page}");
        assert!(!page.contains("commit"), "{page}");
        assert!(page.contains("serve"), "{page}");
    }

    #[test]
    fn a_directory_gets_one_page_per_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        man_pages(command(), Some(dir.path()), &mut std::io::sink()).unwrap();
        assert!(dir.path().join("zerotouch.1").is_file());
        assert!(dir.path().join("zerotouch-serve.1").is_file());
    }

    #[test]
    fn completions_offer_the_subcommands() {
        let mut script = Vec::new();
        completions(command(), Shell::Bash, &mut script);
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("serve"), "{script}");
    }
}
