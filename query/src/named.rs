//! The named queries ticklake ships — the same files the operator installs as Athena named
//! queries (`deploy/athena/*.sql`) — rendered for one table, and run here unchanged.
//!
//! The files use Trino's `max_by`, `min_by` and `date_format`, which
//! [`functions`](crate::functions) provides; `"db"."table"` quoting, `INTERVAL '1' DAY`,
//! `date_trunc` and `CAST(… AS timestamp)` mean the same in both engines. Where the dialects
//! differ is documented in `query/README.md`.

/// One shipped query template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// `ticklake-ohlcv-1m`, as in Athena.
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every template, in file-name order.
pub const TEMPLATES: [Template; 4] = [
    Template { name: "ticklake-latest-price", sql: include_str!("../../deploy/athena/latest-price.sql") },
    Template { name: "ticklake-ohlcv-1m", sql: include_str!("../../deploy/athena/ohlcv-1m.sql") },
    Template { name: "ticklake-ticks-per-hour", sql: include_str!("../../deploy/athena/ticks-per-hour.sql") },
    Template { name: "ticklake-top-movers", sql: include_str!("../../deploy/athena/top-movers.sql") },
];

impl Template {
    /// The first comment line, after the name: what the query answers.
    pub fn description(&self) -> String {
        let mut lines = Vec::new();
        for line in self.sql.lines() {
            let Some(text) = line.strip_prefix("--") else { break };
            lines.push(text.trim());
        }
        let text = lines.join(" ");
        let text = text.strip_prefix(self.name).unwrap_or(&text);
        text.trim_start_matches(':').trim().to_string()
    }

    /// The SQL for one table.
    pub fn render(&self, database: &str, table: &str) -> String {
        self.sql.replace("{{database}}", database).replace("{{table}}", table)
    }
}

/// The shipped queries for one table, as the catalog stores them.
pub fn for_table(database: &str, table: &str) -> Vec<ticklake_catalog::store::NamedQuery> {
    TEMPLATES
        .iter()
        .map(|t| ticklake_catalog::store::NamedQuery {
            database: database.to_string(),
            name: t.name.to_string(),
            description: t.description(),
            sql: t.render(database, table),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_describe_themselves() {
        for t in TEMPLATES {
            let sql = t.render("db", "ticks");
            assert!(sql.contains("\"db\".\"ticks\""), "{}", t.name);
            assert!(!sql.contains("{{"), "{}", t.name);
            assert!(!t.description().is_empty() && !t.description().starts_with("ticklake-"), "{}", t.name);
        }
    }
}
