//! Output of the listing commands (`images`, `cache ls`, `sync --status`):
//! an aligned table for people, or one JSON document for scripts.
//!
//! Every JSON document carries `schemaVersion` ([`SCHEMA_VERSION`]): fields
//! are only ever added under one version; a removal or a change of meaning
//! raises it (docs/cli.md describes each schema).

use clap::ValueEnum;
use serde_json::Value;

/// The version of the JSON documents of the listing commands.
pub const SCHEMA_VERSION: u32 = 1;

/// `-o`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    #[value(alias = "text")]
    Table,
    /// One JSON document (schema in docs/cli.md).
    Json,
}

/// A table: a header and rows of cells.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table, columns separated by at least two spaces; cells are made
    /// single-line so that a hostile title cannot forge rows.
    pub fn render(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(|cell| cell_text(cell)).collect())
            .collect();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (index, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(index) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_string()).collect();
        for row in std::iter::once(&header).chain(rows.iter()) {
            let mut line = String::new();
            for (index, cell) in row.iter().enumerate() {
                if index > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let width = widths.get(index).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A cell on one line: control characters escaped, empty as `-`.
fn cell_text(cell: &str) -> String {
    if cell.is_empty() {
        return "-".to_string();
    }
    cell.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// A sha512 digest shortened for a table column (the JSON has it whole).
pub fn short_digest(hex: &str) -> String {
    match hex.get(..16) {
        Some(prefix) if hex.len() > 16 => format!("{prefix}..."),
        _ => hex.to_string(),
    }
}

/// The JSON document, pretty-printed, with a final newline.
pub fn json_text(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_stay_on_one_line() {
        let mut table = Table::new(&["A", "LONGER"]);
        table.row(vec!["x\ny".into(), String::new()]);
        table.row(vec!["abcdef".into(), "z".into()]);
        assert_eq!(table.render(), "A       LONGER\nx\\ny    -\nabcdef  z\n");
        assert_eq!(
            short_digest(&"a".repeat(128)),
            format!("{}...", "a".repeat(16))
        );
    }
}
