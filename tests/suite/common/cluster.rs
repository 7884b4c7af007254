//! A PostgreSQL cluster of a test's own, and hot standbys of it: the server tools of
//! Debian's postgresql package, run as `postgres` when the tests run as root.

use std::path::PathBuf;
use std::process::Command;

use super::in_ci;

/// A PostgreSQL cluster of this test's own (`initdb` + `pg_ctl` on a free port, in a temp
/// dir), so it can be stopped and started without touching the shared server.
pub struct OwnCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// Run the server tools as the `postgres` user (they refuse to run as root).
    as_postgres: bool,
}

impl OwnCluster {
    /// A cluster directory of its own (owned by `postgres` when we are root) and a free
    /// port, with nothing in it yet; `None` as for [`OwnCluster::create`].
    fn empty() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                let mut found: Vec<PathBuf> = versions
                    .filter_map(|v| Some(v.ok()?.path().join("bin")))
                    .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
                    .collect();
                found.sort();
                found.pop()
            });
        let Some(bin) = bin else {
            let reason = "PostgreSQL's server binaries (initdb, pg_ctl under \
                /usr/lib/postgresql/*/bin) are not installed; scripts/test installs Debian's \
                postgresql package";
            assert!(!in_ci(), "{reason}");
            eprintln!("SKIPPED: {reason}");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("syncwatch-pg-")
            .tempdir()
            .expect("temp dir");
        // initdb and postgres refuse to run as root: as root, run them as `postgres`.
        let as_postgres = id(&["-u"]) == Some(0);
        if as_postgres {
            let (Some(uid), Some(gid)) = (id(&["-u", "postgres"]), id(&["-g", "postgres"])) else {
                panic!("running as root and there is no postgres user to run initdb as");
            };
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("give the cluster's directory to postgres");
        }
        let cluster = OwnCluster {
            dir,
            bin,
            port: super::free_port(),
            as_postgres,
        };
        Some(cluster)
    }

    /// A new cluster, started: `initdb` (trust authentication, user `postgres`) and
    /// `pg_ctl start`. `None` (with the reason printed) when the server binaries are
    /// missing outside CI.
    pub fn create() -> Option<Self> {
        let cluster = Self::empty()?;
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        cluster.start();
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// A server tool, as `postgres` when we are root.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(
            output.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// As if the server crashed: no shutdown checkpoint, connections cut.
    pub fn stop_immediately(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A hot standby of this cluster, streaming from it: `pg_basebackup -R` (the standby
    /// signal and `primary_conninfo` written), then started on a port of its own.
    pub fn standby(&self) -> Option<Self> {
        let standby = Self::empty()?;
        let port = self.port.to_string();
        standby.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &standby.data(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
                "-c",
                "fast",
            ],
        );
        standby.start();
        Some(standby)
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.as_str(), "-m", "immediate", "stop"])
            .output();
    }
}

/// Output of `id <args>` as a number.
fn id(args: &[&str]) -> Option<u32> {
    let output = Command::new("id").args(args).output().ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}
