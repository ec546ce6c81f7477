//! Parsing the command line, and usage errors that never echo what was typed.
//!
//! clap's own messages quote the offending argument (`unexpected argument 's3cret' found`,
//! `invalid value 'T0P' for …`), and an operator who types a secret where a key was expected
//! would see it again on screen, in CI logs and in `2>` files. Here a usage error names only
//! what the command defines (options, argument names, subcommands, accepted values) and the
//! position of the offending argument, never its text.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

use crate::cli::Cli;
use crate::exit::Failure;

/// The outcome of parsing the command line.
#[derive(Debug)]
pub enum Parsed {
    /// A command to run.
    Run(Box<Cli>),
    /// Text the user asked for (`--help`, `--version`): printed on stdout, exit 0.
    Show(String),
    /// A usage error (exit 2).
    Usage(UsageError),
}

/// A usage error: a one-line message that quotes nothing typed, and the usage line(s).
#[derive(Debug)]
pub struct UsageError {
    /// The failure (exit 2), its message one line.
    pub failure: Failure,
    /// clap's usage text (`Usage: kms put [OPTIONS] <KEY>`), built from the definitions only.
    pub usage: String,
    /// The command whose help to suggest (`kms put`).
    pub command: String,
}

impl UsageError {
    /// The text form for stderr.
    pub fn text(&self) -> String {
        let mut out = format!("kms: {}\n", self.failure.message);
        if !self.usage.is_empty() {
            out.push('\n');
            out.push_str(self.usage.trim_end());
            out.push('\n');
        }
        out.push_str(&format!(
            "\nFor more information, try '{} --help'.\n",
            self.command
        ));
        out
    }
}

/// Whether `--json` is among the arguments (before a `--`), for reporting a usage error in
/// the requested form before the command line is understood.
pub fn json_requested(argv: &[OsString]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// Parses `argv` (program name first).
pub fn parse(argv: &[OsString]) -> Parsed {
    let mut command = Cli::command();
    let result = command
        .try_get_matches_from_mut(argv)
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches));
    match result {
        Ok(cli) => Parsed::Run(Box::new(cli)),
        Err(err) => match err.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                Parsed::Show(err.render().to_string())
            }
            _ => Parsed::Usage(usage_error(&err, argv, &command)),
        },
    }
}

fn usage_error(err: &clap::Error, argv: &[OsString], root: &clap::Command) -> UsageError {
    let usage = match err.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(s)) => s.to_string(),
        _ => String::new(),
    };
    let command = command_path(&usage, argv, root);
    UsageError {
        failure: Failure::usage(describe(err, argv, root, &command)),
        usage,
        command,
    }
}

/// A context value of our own vocabulary (argument names, subcommands, accepted values).
fn ours(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) if !v.is_empty() => Some(
            v.iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    }
}

/// The one-line message for `err`. Context entries that hold typed text
/// (`InvalidArg` of an unknown argument, `InvalidSubcommand`, `InvalidValue`, the
/// `Suggested` hints that quote it, a value parser's own message) are never used, only
/// located.
fn describe(err: &clap::Error, argv: &[OsString], root: &clap::Command, command: &str) -> String {
    let typed = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => position(argv, s),
        _ => None,
    };
    let at = |i: Option<usize>| i.map(|i| format!(" (argument {i})")).unwrap_or_default();
    let arg = ours(err, ContextKind::InvalidArg).unwrap_or_default();
    match err.kind() {
        ErrorKind::UnknownArgument => {
            let token = match err.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(s)) => s.as_str(),
                _ => "",
            };
            let what = if token.starts_with('-') {
                "an unknown option"
            } else {
                "an unexpected extra argument"
            };
            let mut m = format!(
                "{what}{}, not shown here as it may be a secret",
                at(position(argv, token))
            );
            if let Some(s) = ours(err, ContextKind::SuggestedArg) {
                m.push_str(&format!("; a similar option exists: '{s}'"));
            }
            if !token.starts_with('-') && matches!(command, "kms put" | "kms rotate") {
                m.push_str(&format!(
                    "; `{command}` takes the value from stdin or --file, never as an argument"
                ));
            }
            m
        }
        ErrorKind::InvalidSubcommand => {
            let mut m = format!(
                "an unknown command{}, not shown here as it may be a secret",
                at(typed(ContextKind::InvalidSubcommand))
            );
            if let Some(s) = ours(err, ContextKind::SuggestedSubcommand) {
                m.push_str(&format!("; a similar command exists: {s}"));
            }
            m.push_str(&format!("; the commands are {}", commands(root)));
            m
        }
        ErrorKind::InvalidValue => {
            let mut m = format!(
                "an invalid value for '{arg}'{}, not shown here",
                at(typed(ContextKind::InvalidValue))
            );
            if let Some(v) = ours(err, ContextKind::ValidValue) {
                m.push_str(&format!("; the possible values are {v}"));
            }
            m
        }
        ErrorKind::ValueValidation => {
            let mut m = format!(
                "an invalid value for '{arg}'{}, not shown here",
                at(typed(ContextKind::InvalidValue))
            );
            if let Some(help) = arg_help(root, &arg) {
                m.push_str(&format!("; expected: {help}"));
            }
            m
        }
        ErrorKind::NoEquals => format!("'{arg}' needs '=' before its value"),
        ErrorKind::TooManyValues => format!(
            "'{arg}' was given a value it does not take{}, not shown here",
            at(typed(ContextKind::InvalidValue))
        ),
        ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            format!("'{arg}' was given the wrong number of values")
        }
        ErrorKind::ArgumentConflict => match ours(err, ContextKind::PriorArg) {
            Some(prior) => format!("'{arg}' cannot be used with {}", quote_once(&prior)),
            None => format!("'{arg}' cannot be used with another argument given"),
        },
        ErrorKind::MissingRequiredArgument => {
            format!("missing required argument(s): {arg}")
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            format!("a command is required: {}", commands(root))
        }
        ErrorKind::InvalidUtf8 => "an argument is not valid UTF-8".to_owned(),
        _ => "invalid arguments".to_owned(),
    }
}

/// `x` in quotes unless it is a list already quoted by [`ours`].
fn quote_once(x: &str) -> String {
    if x.starts_with('\'') {
        x.to_owned()
    } else {
        format!("'{x}'")
    }
}

/// Where `token` is in `argv`, counted from 1 after the program name: the argument equal to
/// it, or for an option, the one that starts with it (`--opt=…`, `-xyz`).
fn position(argv: &[OsString], token: &str) -> Option<usize> {
    if token.is_empty() {
        return None;
    }
    argv.iter()
        .skip(1)
        .position(|a| {
            let a = a.to_string_lossy();
            a == token || (token.starts_with('-') && a.starts_with(token))
        })
        .map(|i| i + 1)
}

/// The visible subcommands.
fn commands(root: &clap::Command) -> String {
    root.get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(clap::Command::get_name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `kms` and the subcommand the usage text names (`kms put`), else the first argument that
/// names one (clap gives no usage with some errors).
fn command_path(usage: &str, argv: &[OsString], root: &clap::Command) -> String {
    let from_usage = usage
        .split_whitespace()
        .skip_while(|w| *w != "kms")
        .nth(1)
        .map(str::to_owned);
    let from_argv = || {
        argv.iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .find(|a| root.find_subcommand(a).is_some())
    };
    match from_usage
        .filter(|s| root.find_subcommand(s).is_some())
        .or_else(from_argv)
    {
        Some(sub) => format!("kms {sub}"),
        None => "kms".to_owned(),
    }
}

/// The help line of the option `display` names (`--bytes <BYTES>`), in any subcommand.
fn arg_help(root: &clap::Command, display: &str) -> Option<String> {
    let long = display.strip_prefix("--")?.split([' ', '=']).next()?;
    std::iter::once(root)
        .chain(root.get_subcommands())
        .flat_map(clap::Command::get_arguments)
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_help())
        .map(|h| h.to_string().trim_end_matches('.').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(args: &[&str]) -> UsageError {
        let argv: Vec<OsString> = std::iter::once("kms")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        match parse(&argv) {
            Parsed::Usage(u) => u,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn no_usage_error_quotes_what_was_typed() {
        let secret = "s3cretT0P";
        for args in [
            &["put", "app/k", secret][..],
            &["put", "app/k", "--", secret],
            &["put", "app/k", &format!("--{secret}")],
            &["put", "app/k", &format!("--vaule={secret}")],
            &["get", "k", &format!("--reveal={secret}")],
            &[secret],
            &[secret, "get", "k"],
            &["rotate", "k", "--encoding", secret],
            &["rotate", "k", "--bytes", secret],
            &["watch", "k", "--interval", &format!("5{secret}")],
            &["completions", secret],
            &["versions", "k", "--limit", secret],
            &["migrate", "a", "b", "--concurrency", secret],
            &["get", "k", &format!("-{secret}")],
        ] {
            let u = usage(args);
            assert_eq!(u.failure.exit.code(), 2, "{args:?}");
            let text = u.text();
            assert!(!text.contains(secret), "{args:?} echoed:\n{text}");
            assert!(!text.contains("T0P"), "{args:?} echoed:\n{text}");
            assert!(
                !u.failure.message.contains('\n'),
                "{args:?}: {}",
                u.failure.message
            );
        }
    }

    #[test]
    fn usage_errors_still_say_where_and_what() {
        let u = usage(&["put", "app/k", "s3cret"]);
        assert!(
            u.failure.message.contains("argument 3"),
            "{}",
            u.failure.message
        );
        assert!(
            u.failure.message.contains("stdin or --file"),
            "{}",
            u.failure.message
        );
        assert_eq!(u.command, "kms put");
        assert!(u.usage.contains("kms put"), "{}", u.usage);
        let u = usage(&["put", "app/k", "--vaule=x"]);
        assert!(
            u.failure.message.contains("'--value'"),
            "{}",
            u.failure.message
        );
        let u = usage(&["rotate", "k", "--encoding", "x"]);
        assert!(u.failure.message.contains("raw"), "{}", u.failure.message);
        let u = usage(&["rotate", "k", "--bytes", "0"]);
        assert!(
            u.failure.message.contains("1 to 65536"),
            "{}",
            u.failure.message
        );
        assert_eq!(u.command, "kms rotate");
        let u = usage(&["get"]);
        assert!(u.failure.message.contains("<KEY>"), "{}", u.failure.message);
        let u = usage(&["migrate", "a", "b", "--skip-existing", "--overwrite"]);
        assert!(
            u.failure.message.contains("--overwrite"),
            "{}",
            u.failure.message
        );
        let u = usage(&["frobnicate"]);
        assert!(
            u.failure.message.contains("migrate"),
            "{}",
            u.failure.message
        );
        let u = usage(&[]);
        assert!(
            u.failure.message.contains("a command is required"),
            "{}",
            u.failure.message
        );
    }

    #[test]
    fn json_is_found_before_a_double_dash_only() {
        let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(json_requested(&argv(&["kms", "--json", "get"])));
        assert!(json_requested(&argv(&["kms", "get", "--json"])));
        assert!(!json_requested(&argv(&["kms", "get", "--", "--json"])));
        assert!(!json_requested(&argv(&["--json", "get"][1..])));
    }
}
