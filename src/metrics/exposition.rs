//! Prometheus text exposition format (version 0.0.4), written by hand: each
//! family's `# HELP` and `# TYPE`, then its samples. Callers pass names with
//! their unit and, for counters, `_total`; this module only formats and
//! escapes.

use std::fmt::{Display, Write};

use super::histogram::HistogramSnapshot;

/// The `Content-Type` of what [`Exposition`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    pub fn finish(self) -> String {
        self.text
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    /// Declares a family; its samples follow through [`Self::sample`].
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let value = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.text, "{label}=\"{value}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A histogram's samples, each with `labels`: `name_bucket{le=…}`,
    /// `name_sum` and `name_count`; `name` ends in its unit.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        histogram: &HistogramSnapshot,
    ) {
        let bucket = format!("{name}_bucket");
        let uppers = histogram
            .cumulative
            .iter()
            .map(|(upper, count)| (upper.to_string(), count));
        for (le, count) in uppers.chain([("+Inf".to_owned(), &histogram.count)]) {
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, count);
        }
        self.sample(&format!("{name}_sum"), labels, histogram.sum_seconds);
        self.sample(&format!("{name}_count"), labels, histogram.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = Exposition::default();
        out.family("x_total", "counter", "a \\ help\nline");
        out.sample("x_total", &[("reason", "say \"hi\"\\\n")], 2);
        assert_eq!(
            out.finish(),
            "# HELP x_total a \\\\ help\\nline\n# TYPE x_total counter\n\
             x_total{reason=\"say \\\"hi\\\"\\\\\\n\"} 2\n"
        );
    }
}
