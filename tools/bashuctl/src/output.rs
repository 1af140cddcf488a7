//! Printing answers: human-readable tables by default, the proto3 JSON mapping with `--json`.

use std::io::Write as _;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

/// `println!` that survives a closed pipe (`bashuctl … | head`, `| grep -q`): the reader has all
/// it wanted, so bashuctl stops quietly with success instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => { $crate::output::write_line(format_args!($($arg)*)) };
}
pub(crate) use say;

/// Writes one line to stdout; see [`say!`].
pub(crate) fn write_line(line: std::fmt::Arguments<'_>) {
    let written = writeln!(std::io::stdout().lock(), "{line}");
    if let Err(error) = written {
        stdout_failed(&error);
    }
}

/// What to do when stdout cannot be written: a closed pipe ends the command successfully,
/// anything else is reported.
pub(crate) fn stdout_failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("bashuctl: cannot write the answer: {error}");
    std::process::exit(i32::from(crate::client::exit::OTHER));
}

use crate::client::Failure;

/// How answers are printed.
#[derive(Clone, Copy)]
pub(crate) struct Out {
    /// `--json`: print the answer as JSON, exactly as the API's JSON mapping spells it.
    pub(crate) json: bool,
}

impl Out {
    /// Prints `value` as JSON with `--json`, else as the table of `header` and `rows`.
    pub(crate) fn show<T: serde::Serialize>(
        &self,
        value: &T,
        header: &[&str],
        rows: Vec<Vec<String>>,
    ) -> Result<(), Failure> {
        if self.json {
            return self.print_json(value);
        }
        print_table(header, rows);
        Ok(())
    }

    /// Prints `value` as JSON with `--json`, else `text`.
    pub(crate) fn say<T: serde::Serialize>(&self, value: &T, text: impl std::fmt::Display) -> Result<(), Failure> {
        if self.json {
            return self.print_json(value);
        }
        say!("{text}");
        Ok(())
    }

    /// Prints `value` as pretty JSON.
    pub(crate) fn print_json<T: serde::Serialize>(&self, value: &T) -> Result<(), Failure> {
        let text =
            serde_json::to_string_pretty(value).map_err(|e| Failure::new(1, format!("cannot print JSON: {e}")))?;
        say!("{text}");
        Ok(())
    }
}

/// A table with a header row, sized to the terminal.
pub(crate) fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        say!("(none)");
        return;
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    say!("{table}");
}

/// A timestamp as RFC 3339 (as the JSON mapping spells it), or `-`.
pub(crate) fn when(timestamp: &Option<bashu_proto::Timestamp>) -> String {
    timestamp
        .as_ref()
        .and_then(|t| serde_json::to_value(t).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".into())
}
