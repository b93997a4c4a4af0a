//! A throwaway PostgreSQL for tests: the first test that asks for it runs `initdb` into a temp
//! directory and starts `postgres` on a free loopback port; every test of the process shares it
//! (each uses its own schema). When the test process exits, a small watchdog stops the server
//! and deletes the directory. Set `GDAP_TEST_POSTGRES_URL` to use another database instead.
//!
//! The binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`,
//! installed by `scripts/deps`). PostgreSQL refuses to run as root, so as root the cluster runs
//! as the `postgres` user (or `nobody`), switched to with `setpriv`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running PostgreSQL.
pub struct Postgres {
    url: String,
}

/// The shared server, started on first use.
pub fn get() -> &'static Postgres {
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(|| match std::env::var("GDAP_TEST_POSTGRES_URL") {
        Ok(url) => Postgres { url },
        Err(_) => start(),
    })
}

impl Postgres {
    /// A connection URL (database `postgres`, user `gdap`, no password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A schema name no other test of any process uses.
    pub fn fresh_schema(&self, prefix: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        format!(
            "{prefix}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// A client for assertions.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test PostgreSQL");
        tokio::spawn(connection);
        client
    }
}

/// The directory of PostgreSQL's server binaries (the newest installed version).
pub fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb): run scripts/deps, which installs Debian's postgresql package"
        )
    })
}

fn is_root() -> bool {
    output("id", &["-u"]).trim() == "0"
}

fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The (uid, gid) to run the server as when we are root.
fn server_user() -> (u32, u32) {
    for user in ["postgres", "nobody"] {
        let uid = output("id", &["-u", user]);
        let gid = output("id", &["-g", user]);
        if let (Ok(u), Ok(g)) = (uid.trim().parse(), gid.trim().parse()) {
            return (u, g);
        }
    }
    panic!(
        "running as root, but neither the postgres nor the nobody user exists to run PostgreSQL as"
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chown_all(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            chown_all(&entry.path(), uid, gid);
        }
    }
}

fn start() -> Postgres {
    let bin = bin_dir();
    let dir = std::env::temp_dir().join(format!(
        "gdap-test-pg-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    let switch_user = if is_root() {
        let (uid, gid) = server_user();
        chown_all(&dir, uid, gid);
        format!("setpriv --reuid={uid} --regid={gid} --clear-groups --")
    } else {
        String::new()
    };
    let initdb = format!(
        "{switch_user} {} -D {} -U gdap -A trust -E UTF8 --no-sync --no-instructions",
        bin.join("initdb").display(),
        data.display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&initdb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "initdb failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    // The watchdog: runs the server, stops it and removes the directory once this process is gone.
    let script = format!(
        r#"{switch_user} {postgres} -D {data} -p {port} -k {dir} -h 127.0.0.1 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=200 >{dir}/server.log 2>&1 &
           pg=$!
           while kill -0 {parent} 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 0.5; done
           kill -INT $pg 2>/dev/null; wait $pg 2>/dev/null; rm -rf {dir}"#,
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
        parent = std::process::id(),
    );
    let mut watchdog = Command::new("bash")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the PostgreSQL watchdog");
    // Reaped by a thread (it normally outlives this process).
    std::thread::spawn(move || watchdog.wait());
    wait_ready(&bin, port, &dir);
    Postgres {
        url: format!("postgres://gdap@127.0.0.1:{port}/postgres"),
    }
}

fn wait_ready(bin: &Path, port: u16, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not accept connections within 60 s: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
