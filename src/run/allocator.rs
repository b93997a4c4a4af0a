//! glibc's malloc, set to give memory back after a burst.
//!
//! With its defaults, glibc keeps what a burst grew: each busy thread gets an arena of its own
//! (up to 8 per core), and freed memory stays in them; large buffers move from `mmap` into the
//! heap once one has been freed (the threshold adapts upwards), and the top of the heap is
//! trimmed only past a threshold that adapts too. After bringing 1,000 objects of each kind to
//! Ready and 1,000 imports, the operator stayed at about twice its steady footprint.
//!
//! glibc reads its settings only from the environment at start (`GLIBC_TUNABLES`), and calling
//! `mallopt` or `malloc_trim` would need `unsafe`, which this crate forbids. So `gdap-operator
//! run` starts itself once more, in place (`exec`, same process id, arguments and environment),
//! with [`TUNABLES`] — unless `GLIBC_TUNABLES` is already set, by the operator itself or by the
//! person running it (any value, empty included, keeps glibc as that says).

/// The environment variable glibc reads its tunables from.
pub const VARIABLE: &str = "GLIBC_TUNABLES";

/// At most two arenas, buffers of 128 KiB and more in their own mappings (unmapped when freed),
/// and the top of the heap trimmed past 128 KiB free. Fixed values also stop glibc adapting the
/// thresholds upwards.
pub const TUNABLES: &str = "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072";

/// Starts this program again with [`TUNABLES`] when `GLIBC_TUNABLES` is unset; returns only when
/// it is set (nothing to do) or the new start failed (the error; the operator then runs with
/// glibc's defaults).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() -> Option<std::io::Error> {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(VARIABLE).is_some() {
        return None;
    }
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return Some(e),
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(program);
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    Some(command.args(args).env(VARIABLE, TUNABLES).exec())
}

/// Other platforms' allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() -> Option<std::io::Error> {
    None
}
