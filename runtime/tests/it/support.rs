//! Small helpers the runtime's test modules share.

/// A free port on 127.0.0.1: bound, read and released, for a process the test starts to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
