//! The process collector's metrics, under the names every Prometheus client
//! library gives them (`process_*`, without `crm_bridge_`, so standard
//! dashboards and alerts find them): read from `/proc/self` at scrape time
//! with the `procfs` crate, which is what the `prometheus` crate's own
//! process collector reads, without that crate's registry. Linux only
//! (`procfs` is a Linux dependency); elsewhere `/metrics` has none of them.
//! A value `/proc` does not give is left out, not reported as zero.

use procfs::process::{LimitValue, Process};

use super::Exposition;

/// The families, with the help texts of the Prometheus client libraries.
pub fn render(out: &mut Exposition) {
    let Ok(me) = Process::myself() else {
        return;
    };
    if let Ok(stat) = me.stat() {
        let ticks = procfs::ticks_per_second() as f64;
        let cpu = (stat.utime + stat.stime) as f64 / ticks;
        out.family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        out.sample("process_cpu_seconds_total", &[], cpu);
        out.gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            stat.rss * procfs::page_size(),
        );
        out.gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            stat.vsize,
        );
        if let Ok(boot) = procfs::boot_time_secs() {
            out.gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                boot as f64 + stat.starttime as f64 / ticks,
            );
        }
    }
    if let Ok(open) = me.fd_count() {
        out.gauge("process_open_fds", "Number of open file descriptors.", open);
    }
    // The soft limit: the one `open` and `accept` fail at.
    if let Ok(limits) = me.limits()
        && let LimitValue::Value(max) = limits.max_open_files.soft_limit
    {
        out.gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;

    fn value(text: &str, name: &str) -> f64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
        let line = line.unwrap_or_else(|| panic!("no {name} in\n{text}"));
        line.split(' ').nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn this_process_is_described_as_proc_sees_it() {
        let held = std::fs::File::open("/proc/self/stat").unwrap();
        let mut out = Exposition::default();
        render(&mut out);
        let text = out.finish();
        let open = value(&text, "process_open_fds");
        assert!(open >= 1.0, "{text}");
        assert!(value(&text, "process_max_fds") >= open, "{text}");
        assert!(
            value(&text, "process_resident_memory_bytes") > 1e5,
            "{text}"
        );
        assert!(value(&text, "process_virtual_memory_bytes") > 1e5, "{text}");
        assert!(value(&text, "process_cpu_seconds_total") >= 0.0, "{text}");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let started = value(&text, "process_start_time_seconds");
        // Boot time and start ticks are whole seconds and 1/100 s.
        assert!(started <= now.as_secs_f64() + 1.0, "{started} after now");
        assert!(
            started > now.as_secs_f64() - 86_400.0,
            "{started}: a day ago"
        );
        drop(held);
    }
}
