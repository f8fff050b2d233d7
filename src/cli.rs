//! Command-line flags shared by the `genclip` and `genclip-engine` commands: `--name value`
//! (or `--name=value`) pairs, repeatable, switches (`--name` followed by another flag or
//! nothing: an empty value), and positional words.

use std::collections::VecDeque;

/// `--name value` pairs (repeatable) and positional words.
pub struct Flags {
    pub positional: Vec<String>,
    pairs: Vec<(String, String)>,
}

impl Flags {
    pub fn parse(args: &[String]) -> Flags {
        let mut flags = Flags {
            positional: Vec::new(),
            pairs: Vec::new(),
        };
        let mut rest: VecDeque<&String> = args.iter().collect();
        while let Some(arg) = rest.pop_front() {
            match arg.strip_prefix("--") {
                Some(name) => match name.split_once('=') {
                    Some((n, v)) => flags.pairs.push((n.to_string(), v.to_string())),
                    None => {
                        // A switch (`--dry-run`) is followed by the next flag or by nothing;
                        // a value that starts with `--` can still be given as `--name=--x`.
                        let value = match rest.front() {
                            Some(next) if next.starts_with("--") => String::new(),
                            _ => rest.pop_front().cloned().unwrap_or_default(),
                        };
                        flags.pairs.push((name.to_string(), value));
                    }
                },
                None => flags.positional.push(arg.clone()),
            }
        }
        flags
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn parsed<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.get(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| format!("--{name} {v}: not a valid value"))
            })
            .transpose()
    }

    pub fn check_known(&self, known: &[&str]) -> Result<(), String> {
        match self
            .pairs
            .iter()
            .find(|(n, _)| !known.contains(&n.as_str()))
        {
            Some((n, _)) => Err(format!("unknown option --{n} (see genclip --help)")),
            None => Ok(()),
        }
    }
}

/// A subcommand: its name and what runs it.
pub type Command = (&'static str, fn(&Flags) -> Result<(), String>);

/// The `main` of a command-line tool: dispatches `<tool> <command> [flags]` to `commands`,
/// answers `-h`/`--help`/`help` with `usage`, and reports an error as `<tool>: <error>` with
/// a failing exit status.
pub fn run(tool: &str, usage: &str, commands: &[Command]) -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("-h" | "--help" | "help") => {
            println!("{usage}");
            Ok(())
        }
        Some(name) => match commands.iter().find(|(command, _)| *command == name) {
            Some((_, handler)) => handler(&Flags::parse(&args[1..])),
            None => Err(format!("unknown command {name}\n\n{usage}")),
        },
        None => Err(format!("expected a command\n\n{usage}")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{tool}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Flags {
        Flags::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn values_switches_and_positionals() {
        let f = parse(&[
            "--dry-run",
            "--prompt",
            "a harbour",
            "--seed=-5",
            "--key",
            "a=0:1",
            "--key",
            "b=0:2",
            "word",
            "--last",
        ]);
        assert_eq!(f.get("dry-run"), Some(""));
        assert_eq!(f.get("prompt"), Some("a harbour"));
        assert_eq!(f.parsed::<i32>("seed").unwrap(), Some(-5));
        assert_eq!(f.all("key").collect::<Vec<_>>(), vec!["a=0:1", "b=0:2"]);
        assert_eq!(f.positional, vec!["word".to_string()]);
        assert_eq!(f.get("last"), Some(""));
        assert!(f
            .check_known(&["dry-run", "prompt", "seed", "key", "last"])
            .is_ok());
        assert!(f.check_known(&["prompt"]).is_err());
    }
}
