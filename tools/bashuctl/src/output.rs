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

/// Beijing time, UTC+8: what the duty board, the months of the report and the people reading
/// the tables go by.
pub(crate) const BEIJING: time::UtcOffset = match time::UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("a valid offset"),
};

/// A timestamp in Beijing time to the second, `2026-11-28 09:30:05 +08:00`, or `-`. (`--json`
/// keeps the API's RFC 3339 in UTC with every digit.)
pub(crate) fn when(timestamp: &Option<bashu_proto::Timestamp>) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory]:[offset_minute]"
    );
    timestamp
        .as_ref()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| t.to_offset(BEIJING).format(&format).ok())
        .unwrap_or_else(|| "-".into())
}

/// `1 county`, `3 counties`: a count with its noun in the right number.
pub(crate) fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_beijing_time_to_the_second_and_counts_agree() {
        let at = bashu_proto::Timestamp { seconds: 1_795_833_005, nanos: 123_456_789 };
        assert_eq!(when(&Some(at)), "2026-11-28 10:30:05 +08:00");
        assert_eq!(when(&None), "-");
        assert_eq!(
            (count(1u32, "county", "counties"), count(3u32, "county", "counties")),
            ("1 county".into(), "3 counties".into())
        );
        assert_eq!(count(0u32, "delivery", "deliveries"), "0 deliveries");
    }
}
