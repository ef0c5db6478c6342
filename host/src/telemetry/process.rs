//! The process's own metrics, read from `/proc` at each scrape under the names Prometheus's
//! client libraries use (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...), so
//! the usual dashboards find them. Elsewhere than Linux there is no `/proc`, and no such lines.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug)]
pub struct ProcessCollector;

/// What `/proc/self/stat` says, in base units.
struct ProcessStat {
    cpu_seconds: f64,
    threads: i64,
    start_time_seconds: f64,
    virtual_memory_bytes: i64,
    resident_memory_bytes: i64,
}

fn read_stat() -> Option<ProcessStat> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after it follow its `)`.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field n of proc(5) is fields[n - 3] here.
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|value| value.parse::<f64>().ok())
    };
    // SAFETY: sysconf reads a constant of the system; no memory is shared.
    let (ticks, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK) as f64,
            libc::sysconf(libc::_SC_PAGESIZE) as f64,
        )
    };
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(ProcessStat {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        threads: field(20)? as i64,
        start_time_seconds: boot_time + field(22)? / ticks,
        virtual_memory_bytes: field(23)? as i64,
        resident_memory_bytes: (field(24)? * page_size) as i64,
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stat) = read_stat() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stat.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                stat.resident_memory_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stat.virtual_memory_bytes,
            ),
            ("process_threads", "Number of OS threads.", stat.threads),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let start = ConstGauge::new(stat.start_time_seconds);
        start.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            None,
            start.metric_type(),
        )?)?;
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            let open = ConstGauge::new(entries.count() as i64);
            open.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                open.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
