//! A throwaway PostgreSQL for tests: the first test that asks for it runs `initdb` into a temp
//! directory and starts `postgres` on a free loopback port; every test of the process shares it
//! (each uses its own schema). When the test process exits, a small watchdog stops the server
//! and deletes the directory. Set `GDAP_TEST_POSTGRES_URL` to use another database instead
//! (and `GDAP_TEST_POSTGRES_CA` to a PEM file of its CA, if the URL's `sslmode` checks it);
//! the TLS refusal tests always use the throwaway server ([`local`]).
//!
//! The server is set up as a production one: TLS (`ssl = on`, a certificate for `localhost`,
//! `127.0.0.1` and `::1` signed by a test CA generated here), SCRAM passwords, and a `pg_hba`
//! that accepts only TLS connections with a password from the loopback addresses (the local
//! socket, used by nobody but `pg_isready`, trusts). User `gdap`, a random password, database
//! `postgres`.
//!
//! The binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`,
//! installed by `scripts/deps`). PostgreSQL refuses to run as root, so as root the cluster runs
//! as the `postgres` user (or `nobody`), switched to with `setpriv`.

use gdap_operator::sync::sink::postgres::{self, Connection};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running PostgreSQL.
pub struct Postgres {
    /// Password, `sslmode=verify-full` and `sslrootcert=<the CA file>`: usable as it is.
    url: String,
    /// The same without `sslrootcert`, for a connection Secret that holds the CA under `caKey`.
    secret_url: String,
    /// The CA that signed the server's certificate.
    ca_pem: Option<String>,
    /// Set for the throwaway server.
    local: Option<Local>,
}

/// What only the throwaway server offers.
struct Local {
    port: u16,
    password: String,
    ca_path: PathBuf,
    other_ca_pem: String,
}

/// The shared server, started on first use (or `GDAP_TEST_POSTGRES_URL`).
pub fn get() -> &'static Postgres {
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(|| match std::env::var("GDAP_TEST_POSTGRES_URL") {
        Ok(url) => Postgres {
            secret_url: url.clone(),
            url,
            ca_pem: std::env::var("GDAP_TEST_POSTGRES_CA")
                .ok()
                .map(|path| std::fs::read_to_string(path).expect("read GDAP_TEST_POSTGRES_CA")),
            local: None,
        },
        Err(_) => local_server(),
    })
}

/// The throwaway server, whatever `GDAP_TEST_POSTGRES_URL` says (for tests of its TLS and
/// authentication setup).
pub fn local() -> &'static Postgres {
    if std::env::var("GDAP_TEST_POSTGRES_URL").is_err() {
        return get();
    }
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(local_server)
}

impl Postgres {
    /// A connection URL that works as it is: user `gdap` with its password, database
    /// `postgres`, `sslmode=verify-full` and `sslrootcert=` the test CA's file.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL for a connection Secret whose key `ca.crt` holds [`Postgres::ca_pem`]
    /// (`sslmode=verify-full`, no `sslrootcert`).
    pub fn secret_url(&self) -> &str {
        &self.secret_url
    }

    /// The PEM of the CA that signed the server's certificate (`None` for a
    /// `GDAP_TEST_POSTGRES_URL` without `GDAP_TEST_POSTGRES_CA`).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    fn local(&self) -> &Local {
        self.local
            .as_ref()
            .expect("only the throwaway PostgreSQL (support::postgres::local()) has this")
    }

    /// The password of user `gdap` (throwaway server).
    pub fn password(&self) -> &str {
        &self.local().password
    }

    /// The file of the CA that signed the server's certificate (throwaway server).
    pub fn ca_path(&self) -> &Path {
        &self.local().ca_path
    }

    /// The PEM of a CA that did not sign the server's certificate (throwaway server).
    pub fn other_ca_pem(&self) -> &str {
        &self.local().other_ca_pem
    }

    /// `postgres://gdap[:password]@host:port/postgres?query` (throwaway server). `host` may be
    /// a name the certificate does not hold: add `hostaddr=127.0.0.1` to `query` to reach the
    /// server anyway.
    pub fn url_with(&self, password: Option<&str>, host: &str, query: &str) -> String {
        let local = self.local();
        let credentials = match password {
            Some(p) => format!("gdap:{p}"),
            None => "gdap".into(),
        };
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!(
            "postgres://{credentials}@{host}:{}/postgres{query}",
            local.port
        )
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

    /// A client for assertions (over TLS, as [`Postgres::url`] says).
    pub async fn client(&self) -> tokio_postgres::Client {
        postgres::connect(&Connection::url(self.url.clone()))
            .await
            .expect("connect to the test PostgreSQL")
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

/// The test CA, the server's certificate and key, and a CA that signed nothing, under `dir`:
/// `ca.crt`, `server.crt`, `server.key` (mode 0600). Returns (CA PEM, other CA PEM).
fn tls_material(dir: &Path) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), rcgen::Issuer::new(params, key))
    };
    let (ca_pem, issuer) = ca("gdap-operator test PostgreSQL CA");
    let (other_ca_pem, _) = ca("a CA that signed nothing");
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.crt"), &ca_pem).unwrap();
    std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
    let key_path = dir.join("server.key");
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (ca_pem, other_ca_pem)
}

/// Only TLS with a password from loopback; the local socket (`pg_isready`'s) trusts.
const PG_HBA: &str = "local all all trust
hostssl all all 127.0.0.1/32 scram-sha-256
hostssl all all ::1/128 scram-sha-256
";

fn local_server() -> Postgres {
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
    let password = format!("pg-{:032x}", rand::random::<u128>());
    std::fs::write(dir.join("pwfile"), format!("{password}\n")).unwrap();
    let (ca_pem, other_ca_pem) = tls_material(&dir);
    let switch_user = if is_root() {
        let (uid, gid) = server_user();
        chown_all(&dir, uid, gid);
        format!("setpriv --reuid={uid} --regid={gid} --clear-groups --")
    } else {
        String::new()
    };
    let initdb = format!(
        "{switch_user} {} -D {} -U gdap --pwfile={} --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync --no-instructions",
        bin.join("initdb").display(),
        data.display(),
        dir.join("pwfile").display(),
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
    let _ = std::fs::remove_file(dir.join("pwfile"));
    // Rewrites the file initdb made (its owner stays the server's user).
    std::fs::write(data.join("pg_hba.conf"), PG_HBA).unwrap();
    let port = free_port();
    // The watchdog: runs the server, stops it and removes the directory once this process is gone.
    let script = format!(
        r#"{switch_user} {postgres} -D {data} -p {port} -k {dir} -h 127.0.0.1 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=200 -c password_encryption=scram-sha-256 \
             -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key \
             >{dir}/server.log 2>&1 &
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
    let ca_path = dir.join("ca.crt");
    let secret_url =
        format!("postgres://gdap:{password}@127.0.0.1:{port}/postgres?sslmode=verify-full");
    Postgres {
        url: format!("{secret_url}&sslrootcert={}", ca_path.display()),
        secret_url,
        ca_pem: Some(ca_pem),
        local: Some(Local {
            port,
            password,
            ca_path,
            other_ca_pem,
        }),
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
