//! What the benchmarks read from Linux: the machine's description (/proc/cpuinfo, /proc/meminfo,
//! `uname`, the load average) and a process's memory and CPU time (/proc/PID/status and stat).

use crate::report::Machine;
use std::process::Command;

/// The machine, with the load average now as both start and end (the caller updates the end).
pub fn describe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib = field(&meminfo, "MemTotal:").unwrap_or(0);
    let kernel = output("uname", &["-sr"]);
    let load = load_average();
    Machine {
        cpu_model,
        cores,
        memory_mib: memory_kib / 1024,
        kernel,
        load_average_start: load,
        load_average_end: load,
        note: Some(
            std::env::var("GDAP_BENCH_MACHINE_NOTE")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("{} (at the start)", others_running())),
        ),
    }
}

/// What else runs on the (shared) machine: compilers and test control planes, counted from /proc.
pub fn others_running() -> String {
    let mut compilers = 0;
    let mut apiservers = 0;
    let mut operators = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        match comm.trim() {
            "rustc" | "cargo" | "clippy-driver" | "cc" | "ld" | "go" | "compile" => compilers += 1,
            "kube-apiserver" => apiservers += 1,
            "gdap-operator" => operators += 1,
            _ => {}
        }
    }
    format!(
        "shared with other work: {compilers} compiler processes, {apiservers} kube-apiservers (this run's test control plane included) and {operators} gdap-operator processes"
    )
}

/// The 1, 5 and 15-minute load averages.
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(f64::NAN));
    [
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
    ]
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// A `Name:   123 kB` field of a /proc file, in KiB.
fn field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(name))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Memory of a process in KiB: (resident now, peak resident).
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((field(&status, "VmRSS:")?, field(&status, "VmHWM:")?))
}

/// User + system CPU seconds a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

/// CPU seconds of every `postgres` process on the machine, the ones that ended included: each
/// live process's user and system time plus what its reaped children used (the postmaster
/// collects its backends' time when they exit). The difference across a run is what the
/// PostgreSQL server spent on it (the machine runs one server while benchmarking).
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let ticks: u64 = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime, stime, cutime, cstime: fields 14 to 17 of the whole line.
            fields[11..15]
                .iter()
                .map(|f| f.parse::<u64>().ok())
                .sum::<Option<u64>>()
        })
        .sum();
    ticks as f64 / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| output("getconf", &["CLK_TCK"]).parse().unwrap_or(100.0))
}

/// Peak RSS of this process in KiB.
pub fn own_peak_kib() -> u64 {
    rss_kib(std::process::id()).map_or(0, |(_, peak)| peak)
}
