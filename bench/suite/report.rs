//! The results table: per scenario and measure, crm-bridge's figure, the
//! peer's, how many times better crm-bridge is, and the goal.

use std::fmt::Write as _;

/// Which way a measure improves.
#[derive(Clone, Copy)]
pub enum Better {
    Lower,
    Higher,
}

/// One server's figure; `lossy` marks a run that lost, repeated or
/// misrouted events (reported as such, never as fast).
#[derive(Clone, Default)]
pub struct Figure {
    pub value: Option<f64>,
    pub lossy: Option<String>,
}

impl Figure {
    pub fn of(value: f64) -> Self {
        Self {
            value: Some(value),
            lossy: None,
        }
    }

    pub fn checked(value: Option<f64>, problem: Option<String>) -> Self {
        Self {
            value,
            lossy: problem,
        }
    }

    fn render(&self, unit: &str) -> String {
        let number = match self.value {
            Some(v) if v >= 100.0 => format!("{v:.0} {unit}"),
            Some(v) if v >= 10.0 => format!("{v:.1} {unit}"),
            Some(v) => format!("{v:.2} {unit}"),
            None => "n/a".into(),
        };
        match &self.lossy {
            Some(problem) => format!("{number} ({problem})"),
            None => number,
        }
    }
}

pub struct Row {
    pub scenario: String,
    pub measure: String,
    pub unit: String,
    pub better: Better,
    pub bridge: Figure,
    pub peer: Figure,
    /// The goal, and whether crm-bridge met it.
    pub goal: Option<(String, bool)>,
}

impl Row {
    /// crm-bridge's advantage: >1 means better than the peer.
    pub fn advantage(&self) -> Option<f64> {
        let (bridge, peer) = (self.bridge.value?, self.peer.value?);
        if bridge <= 0.0 || peer <= 0.0 {
            return None;
        }
        Some(match self.better {
            Better::Lower => peer / bridge,
            Better::Higher => bridge / peer,
        })
    }
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    pub fn add(&mut self, row: Row) {
        println!("{}", render_row(&row));
        self.rows.push(row);
    }

    pub fn table(&self) -> String {
        let mut out = String::from(
            "| scenario | measure | crm-bridge | node peer | crm-bridge's advantage | goal |\n\
             |---|---|---|---|---|---|\n",
        );
        for row in &self.rows {
            writeln!(out, "{}", render_row(row)).unwrap();
        }
        out
    }
}

fn render_row(row: &Row) -> String {
    let advantage = row.advantage().map_or("n/a".into(), |a| format!("{a:.2}×"));
    let goal = match &row.goal {
        Some((text, true)) => format!("{text}: met"),
        Some((text, false)) => format!("{text}: **missed**"),
        None => String::new(),
    };
    format!(
        "| {} | {} | {} | {} | {} | {} |",
        row.scenario,
        row.measure,
        row.bridge.render(&row.unit),
        row.peer.render(&row.unit),
        advantage,
        goal
    )
}
