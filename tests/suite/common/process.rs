//! What the test suite and the benchmarks share (`benches/support` includes this file):
//! where the test PostgreSQL server is, free loopback ports, and child processes that are
//! killed however the caller ends.

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The Postgres server tests and benchmarks create their databases on.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into())
}

/// A loopback port that was free a moment ago, for processes that bind it themselves.
///
/// Taken below Linux's ephemeral range (32768 and up), never twice in one process: a port
/// the kernel hands out for port 0 or for an outgoing connection could be taken by any
/// other test's socket between this call and the child's bind (or between a kill and a
/// restart on the same port), and the child would then fail to start.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    // Each process starts at its own offset, so two suites on one machine rarely meet.
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 613) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN)
}

/// Kills a child process (the binary, Prometheus, Alertmanager) when the owner ends,
/// however it ends.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
