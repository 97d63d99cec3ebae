//! The results table: per scenario and measure, crm-bridge's figure, the
//! Node peer's and Centrifugo's, how many times better crm-bridge is than
//! each, and the goal.

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
    /// What went wrong measuring it (lost, extra, repeated deliveries), or
    /// why a server cannot be measured the same way.
    pub lossy: Option<String>,
    /// How this server's figure differs in kind, e.g. what it does not do.
    pub note: Option<String>,
}

impl Figure {
    pub fn of(value: f64) -> Self {
        Self::checked(Some(value), None)
    }

    pub fn checked(value: Option<f64>, problem: Option<String>) -> Self {
        Self {
            value,
            lossy: problem,
            note: None,
        }
    }

    /// A scenario this server cannot run the way the others do, and why.
    pub fn not_comparable(why: &str) -> Self {
        Self::checked(None, Some(why.to_owned()))
    }

    pub fn noted(mut self, note: &str) -> Self {
        self.note = Some(note.to_owned());
        self
    }

    fn render(&self, unit: &str) -> String {
        let number = match self.value {
            Some(v) if v >= 100.0 => format!("{v:.0} {unit}"),
            Some(v) if v >= 10.0 => format!("{v:.1} {unit}"),
            Some(v) => format!("{v:.2} {unit}"),
            None => "n/a".into(),
        };
        let notes: Vec<&str> = [&self.lossy, &self.note]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        match notes.is_empty() {
            true => number,
            false => format!("{number} ({})", notes.join("; ")),
        }
    }
}

pub struct Row {
    pub scenario: String,
    pub measure: String,
    pub unit: String,
    pub better: Better,
    pub bridge: Figure,
    /// The Node peer's (the goals are set against it).
    pub peer: Figure,
    pub centrifugo: Figure,
    /// The goal, and whether crm-bridge met it.
    pub goal: Option<(String, bool)>,
}

impl Row {
    /// crm-bridge's advantage over `peer`: >1 means better than it.
    pub fn advantage(&self, peer: &Figure) -> Option<f64> {
        let (bridge, peer) = (self.bridge.value?, peer.value?);
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
            "| scenario | measure | crm-bridge | node peer | centrifugo | \
             crm-bridge's advantage over node peer | over centrifugo | goal |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for row in &self.rows {
            writeln!(out, "{}", render_row(row)).unwrap();
        }
        out
    }
}

fn render_row(row: &Row) -> String {
    let advantage = |peer: &Figure| {
        row.advantage(peer)
            .map_or("n/a".into(), |a| format!("{a:.2}×"))
    };
    let goal = match &row.goal {
        Some((text, true)) => format!("{text}: met"),
        Some((text, false)) => format!("{text}: **missed**"),
        None => String::new(),
    };
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        row.scenario,
        row.measure,
        row.bridge.render(&row.unit),
        row.peer.render(&row.unit),
        row.centrifugo.render(&row.unit),
        advantage(&row.peer),
        advantage(&row.centrifugo),
        goal
    )
}
