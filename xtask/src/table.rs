//! The tables `cargo xtask bench` prints: each goal with its measured figures, and the scaling table.

/// One row of the goals table.
#[derive(Debug, Clone)]
pub(crate) struct Goal {
    /// What was run.
    pub(crate) scenario: String,
    /// What was measured, as text.
    pub(crate) measured: String,
    /// The goal, as text.
    pub(crate) goal: &'static str,
    /// Whether the measured figures meet the goal.
    pub(crate) met: bool,
}

/// One size of the scaling table: a command at `connections` connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub(crate) connections: usize,
    /// Wall time, seconds.
    pub(crate) seconds: f64,
    /// Peak RSS, bytes.
    pub(crate) peak: u64,
    /// Peak RSS of the same command at one connection, bytes: what a run costs before any connection.
    pub(crate) base: u64,
}

impl Scale {
    /// Memory per connection above the one-connection run.
    pub(crate) fn bytes_per_connection(&self) -> u64 {
        self.peak.saturating_sub(self.base) / (self.connections.max(1) as u64)
    }

    /// Time per connection, microseconds.
    pub(crate) fn micros_per_connection(&self) -> f64 {
        self.seconds * 1e6 / (self.connections.max(1) as f64)
    }
}

/// Text columns padded to their widest cell, the first row a header.
fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join(" | ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("-|-"));
            out.push('\n');
        }
    }
    out
}

/// The goals table: scenario, measured, goal, met.
pub(crate) fn goals(rows: &[Goal]) -> String {
    let mut cells = vec![vec![
        "scenario".to_owned(),
        "measured".to_owned(),
        "goal".to_owned(),
        "met".to_owned(),
    ]];
    for row in rows {
        cells.push(vec![
            row.scenario.clone(),
            row.measured.clone(),
            row.goal.to_owned(),
            if row.met { "yes" } else { "NO" }.to_owned(),
        ]);
    }
    let met = rows.iter().filter(|r| r.met).count();
    format!("{}{met} of {} goals met\n", columns(&cells), rows.len())
}

/// The scaling table of one command.
pub(crate) fn scaling(command: &str, rows: &[Scale]) -> String {
    let mut cells = vec![vec![
        "connections".to_owned(),
        format!("{command} time"),
        "µs per connection".to_owned(),
        "peak memory".to_owned(),
        "bytes per connection".to_owned(),
    ]];
    for row in rows {
        cells.push(vec![
            group(row.connections as u64),
            format!("{:.2} s", row.seconds),
            format!("{:.1}", row.micros_per_connection()),
            format!("{:.1} MB", row.peak as f64 / 1_048_576.0),
            group(row.bytes_per_connection()),
        ]);
    }
    let base = rows.first().map_or(0, |r| r.base);
    format!(
        "{}(bytes per connection: peak memory above the {:.1} MB of a one-connection run, divided by the connections)\n",
        columns(&cells),
        base as f64 / 1_048_576.0
    )
}

/// `100000` as `100,000`.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Goal, Scale, goals, group, scaling};

    #[test]
    fn the_goals_table_has_every_row_with_its_goal_and_whether_it_is_met() {
        let rows = [
            Goal {
                scenario: "validate, 100,000 connections".to_owned(),
                measured: "0.50 s, 60.0 MB".to_owned(),
                goal: "≤ 1 s, ≤ 80 MB",
                met: true,
            },
            Goal {
                scenario: "apply".to_owned(),
                measured: "120.0 MB".to_owned(),
                goal: "≤ 100 MB",
                met: false,
            },
        ];
        let text = goals(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(
            lines[0],
            "scenario                      | measured        | goal           | met"
        );
        assert!(lines[1].starts_with("------------------------------|-"));
        assert_eq!(
            lines[2],
            "validate, 100,000 connections | 0.50 s, 60.0 MB | ≤ 1 s, ≤ 80 MB | yes"
        );
        assert!(lines[3].ends_with("| ≤ 100 MB       | NO"), "{}", lines[3]);
        assert_eq!(lines[4], "1 of 2 goals met");
    }

    #[test]
    fn the_scaling_table_gives_bytes_per_connection_above_the_base() {
        let rows = [
            Scale {
                connections: 1_000,
                seconds: 0.02,
                peak: 11 * 1_048_576,
                base: 10 * 1_048_576,
            },
            Scale {
                connections: 100_000,
                seconds: 1.5,
                peak: 10 * 1_048_576 + 50_000_000,
                base: 10 * 1_048_576,
            },
        ];
        let text = scaling("validate", &rows);
        assert!(text.contains("| validate time |"), "{text}");
        assert!(
            text.contains("1,000       | 0.02 s        | 20.0              | 11.0 MB     | 1,048"),
            "{text}"
        );
        assert!(
            text.contains("100,000     | 1.50 s        | 15.0              | 57.7 MB     | 500"),
            "{text}"
        );
        assert!(text.contains("above the 10.0 MB of a one-connection run"));
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(100_000), "100,000");
        assert_eq!(group(1_234_567), "1,234,567");
    }
}
