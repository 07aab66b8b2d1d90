//! Transport security: the server reaches PostgreSQL over TLS with the URL's `sslmode`,
//! `sslrootcert`, `sslcert`/`sslkey` honoured everywhere it connects (the product pool and the
//! job queue's own connections), and Redis over TLS (`rediss://`).
//!
//! Each test starts a throwaway server (a PostgreSQL cluster made with `initdb`, or a
//! `redis-server` with a TLS port) on a free local port, with certificates generated in the
//! test by the `openssl` command line: a test CA, a server certificate for 127.0.0.1 signed by
//! it, a client certificate, and an unrelated CA that must not be accepted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use spot_api::{server, AppState};
use spot_models::Db;

use crate::support::test_config;

/// Certificates made for one test.
struct Certs {
    ca: PathBuf,
    wrong_ca: PathBuf,
    server_crt: PathBuf,
    server_key: PathBuf,
    client_crt: PathBuf,
    client_key: PathBuf,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

/// A self-signed CA (`name.pem`, `name.key`).
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
    dir.join(format!("{name}.pem"))
}

/// A leaf certificate signed by the CA `ca` (`name.pem`, `name.key`, PKCS#8 key).
fn make_leaf(dir: &Path, ca: &str, name: &str, cn: &str, ext: &str) -> (PathBuf, PathBuf) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).expect("ext file");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

fn make_certs(dir: &Path) -> Certs {
    let ca = make_ca(dir, "ca");
    let wrong_ca = make_ca(dir, "wrong-ca");
    let (server_crt, server_key) = make_leaf(
        dir,
        "ca",
        "server",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    let (client_crt, client_key) = make_leaf(
        dir,
        "ca",
        "client",
        "spot_mtls",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=clientAuth\n",
    );
    Certs {
        ca,
        wrong_ca,
        server_crt,
        server_key,
        client_crt,
        client_key,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn temp_dir(kind: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("spot-it-{kind}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The PostgreSQL server binaries (`initdb`, `pg_ctl`), newest major version first.
fn pg_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// A throwaway PostgreSQL cluster with `ssl = on`; stopped on drop.
struct TlsPostgres {
    port: u16,
    data: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    certs: Certs,
}

impl TlsPostgres {
    /// `None` (and a printed reason) only when the PostgreSQL server binaries are absent.
    fn start() -> Option<TlsPostgres> {
        // As the binary does at start: with both ring and aws-lc-rs compiled in, rustls needs
        // the process-wide provider chosen (sqlx's `verify-ca` verifier takes it).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let Some(bin) = pg_bin_dir() else {
            eprintln!("SKIP: no initdb/pg_ctl under /usr/lib/postgresql/*/bin");
            return None;
        };
        let dir = temp_dir("pgtls");
        let certs = make_certs(&dir);
        let data = dir.join("data");
        // initdb refuses to run as root: the cluster then belongs to the `postgres` user.
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").args(["-R", "postgres:"]).arg(&dir));
        }
        let pg = |tool: &str| {
            let mut c = if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
                c
            } else {
                Command::new(bin.join(tool))
            };
            c.stdin(Stdio::null());
            c
        };
        run(pg("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        let port = free_port();
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\n\
             ssl = on\nssl_cert_file = '{crt}'\nssl_key_file = '{key}'\nssl_ca_file = '{ca}'\n\
             fsync = off\n",
            dir = dir.display(),
            crt = certs.server_crt.display(),
            key = certs.server_key.display(),
            ca = certs.ca.display(),
        );
        let mut pgconf = std::fs::read_to_string(data.join("postgresql.conf")).expect("conf");
        pgconf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pgconf).expect("write conf");
        // TCP connections must use TLS; `spot_mtls` authenticates by client certificate.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all spot_mtls 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 trust\n\
             host all all 127.0.0.1/32 reject\n",
        )
        .expect("hba");
        // The server reads its key only when it is private to its owner.
        for f in [
            &certs.server_key,
            &data.join("pg_hba.conf"),
            &data.join("postgresql.conf"),
        ] {
            if as_postgres {
                run(Command::new("chown").arg("postgres:").arg(f));
            }
        }
        run(Command::new("chmod").arg("600").arg(&certs.server_key));
        run(pg("pg_ctl")
            .args(["-w", "-t", "60", "-l"])
            .arg(dir.join("pg.log"))
            .arg("-D")
            .arg(&data)
            .arg("start"));
        Some(TlsPostgres {
            port,
            data,
            bin,
            as_postgres,
            certs,
        })
    }

    fn url(&self, user: &str, query: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/postgres?{query}", self.port)
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = c
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether the connection behind `db` is encrypted, as the server sees it.
async fn uses_tls(db: &Db) -> bool {
    let row: (bool,) = sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&db.pool)
        .await
        .expect("pg_stat_ssl");
    row.0
}

/// Builds the whole server (actors, job queue, HTTP) over `url` and signs up through it.
async fn serve_and_signup(url: &str) {
    let db = Db::connect(url).await.expect("connect");
    db.migrate().await.expect("migrate");
    let state = AppState::build(
        db.clone(),
        test_config(),
        spot_api::state::StateOptions {
            connector: None,
            redis_url: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("state over {url}: {e}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = server::start(state.clone(), "127.0.0.1:0", async {
        let _ = rx.await;
    })
    .await
    .expect("start server");
    let http = reqwest::Client::new();
    let base = format!("http://{}", running.addr);
    let r = http
        .request(Method::POST, format!("{base}/api/auth/signup"))
        .json(&serde_json::json!({
            "org_name": "TLS Org",
            "email": format!("tls-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            "password": crate::support::PASSWORD,
        }))
        .send()
        .await
        .expect("signup");
    assert_eq!(r.status(), StatusCode::CREATED);
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "{}",
        ready.text().await.unwrap_or_default()
    );
    assert!(uses_tls(&db).await);
    let _ = tx.send(());
    state.jobs.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_honours_sslmode_and_root_certificate() {
    let Some(pg) = TlsPostgres::start() else {
        return;
    };
    let ca = pg.certs.ca.display().to_string();
    let wrong = pg.certs.wrong_ca.display().to_string();

    // sslmode=require: encrypted, and the whole server (incl. the job queue) runs over it.
    let url = pg.url("postgres", "sslmode=require");
    let db = Db::connect(&url).await.expect("sslmode=require connects");
    assert!(uses_tls(&db).await, "sslmode=require must encrypt");
    db.pool.close().await;
    serve_and_signup(&url).await;

    // The cluster refuses unencrypted TCP, so `require` above was not a plain connection.
    let plain = Db::connect(&pg.url("postgres", "sslmode=disable")).await;
    assert!(plain.is_err(), "the test cluster must refuse plaintext");

    // verify-full with the right root: accepted.
    let db = Db::connect(&pg.url("postgres", &format!("sslmode=verify-full&sslrootcert={ca}")))
        .await
        .expect("verify-full with the issuing CA");
    assert!(uses_tls(&db).await);
    db.pool.close().await;

    // verify-full with the wrong root, or with only the public roots: refused.
    let e = Db::connect(&pg.url(
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={wrong}"),
    ))
    .await
    .expect_err("verify-full must reject a certificate from another CA");
    let msg = e.to_string().to_lowercase();
    assert!(
        msg.contains("certificate") || msg.contains("tls") || msg.contains("issuer"),
        "unexpected error: {msg}"
    );
    assert!(Db::connect(&pg.url("postgres", "sslmode=verify-ca"))
        .await
        .is_err());
}

/// Client-certificate authentication: only a connection that carries `sslcert`/`sslkey` is
/// admitted, so every pool the server opens (the job queue's admin connection included) must
/// keep the URL's query string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_keeps_the_tls_parameters_of_the_url() {
    let Some(pg) = TlsPostgres::start() else {
        return;
    };
    let admin = Db::connect(&pg.url("postgres", "sslmode=require"))
        .await
        .expect("admin");
    sqlx::query("CREATE ROLE spot_mtls LOGIN SUPERUSER")
        .execute(&admin.pool)
        .await
        .expect("create role");
    admin.pool.close().await;
    let query = format!(
        "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        pg.certs.ca.display(),
        pg.certs.client_crt.display(),
        pg.certs.client_key.display()
    );
    // Without the client certificate the role is refused...
    assert!(Db::connect(&pg.url(
        "spot_mtls",
        &format!("sslmode=verify-full&sslrootcert={}", pg.certs.ca.display())
    ))
    .await
    .is_err());
    // ...with it, the server, its job queue and its migrations all connect.
    serve_and_signup(&pg.url("spot_mtls", &query)).await;
}

/// A throwaway `redis-server` that only listens with TLS; killed on drop.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_tls_redis(certs: &Certs, dir: &Path) -> Option<TlsRedis> {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: redis-server is not installed");
        return None;
    }
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .arg("--tls-cert-file")
        .arg(&certs.server_crt)
        .arg("--tls-key-file")
        .arg(&certs.server_key)
        .arg("--tls-ca-cert-file")
        .arg(&certs.ca)
        .args(["--tls-auth-clients", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(TlsRedis { child, port });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server with TLS did not start on port {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls() {
    // As the binary does at start (redis-rs takes rustls' process-wide provider).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp_dir("redistls");
    let certs = make_certs(&dir);
    let Some(redis) = start_tls_redis(&certs, &dir) else {
        return;
    };
    // The product's path: a `rediss://` URL. The server certificate is from a private CA,
    // which the system roots do not hold, so the handshake must fail on verification...
    let url = format!("rediss://127.0.0.1:{}/", redis.port);
    let verified = tokio::time::timeout(Duration::from_secs(20), async {
        let c = redis::Client::open(url.as_str())?;
        let mut conn = c.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    })
    .await
    .expect("the refused handshake answers promptly");
    assert!(
        verified.is_err(),
        "an untrusted certificate must be refused"
    );
    // ...and with that CA as the root it connects and the server runs its limiter and
    // risk tracker over TLS.
    let ca = std::fs::read(&certs.ca).expect("ca");
    let client = redis::Client::build_with_tls(
        url.as_str(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca),
        },
    )
    .expect("tls client");
    let mut conn = tokio::time::timeout(
        Duration::from_secs(20),
        client.get_multiplexed_async_connection(),
    )
    .await
    .expect("TLS connection in time")
    .expect("TLS connection");
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .expect("ping");
    assert_eq!(pong, "PONG");
    // Plain `redis://` to the TLS port is not answered.
    let plain = async {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port))?;
        let mut conn =
            tokio::time::timeout(Duration::from_secs(3), c.get_multiplexed_async_connection())
                .await
                .map_err(|_| redis::RedisError::from(std::io::Error::other("timeout")))??;
        tokio::time::timeout(
            Duration::from_secs(3),
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .map_err(|_| redis::RedisError::from(std::io::Error::other("timeout")))?
    }
    .await;
    assert!(plain.is_err());
    // The whole server, as deployed: the binary with `REDIS_URL=rediss://…` trusting the
    // private CA through the system trust store (`SSL_CERT_FILE`, read by rustls' native
    // roots) runs its limiter, risk tracker and model broadcasts over TLS and is ready.
    let port = free_port();
    let data = dir.join("serve");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spot-optimizer"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data)
        .env("REDIS_URL", &url)
        .env("SSL_CERT_FILE", &certs.ca)
        .env_remove("DATABASE_URL")
        .env_remove("SPOT_SECRET_KEY")
        .env_remove("SPOT_JWT_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let ready = loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            break r.status();
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("serve exited ({status}) with REDIS_URL=rediss://: {err}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not come up over rediss://"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ready, StatusCode::OK);
}
