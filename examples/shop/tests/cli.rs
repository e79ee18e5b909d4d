//! The shop's command line refuses bad input with a clear message and a usage exit status.
//!
//! This file is also why `cargo test --workspace` builds the `shop` binary itself (a package's
//! binaries are built for its integration tests), with the features the rest of the workspace's
//! tests use: the runtime's shop tests (`runtime/tests/it/shop.rs`) run that binary instead of
//! building it again with a different feature set.

use std::process::{Command, Output};

fn shop(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shop"));
    cmd.args(args)
        .env_remove("SHOP_SERVICE")
        .env_remove("SHOP_PORT_BASE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the shop binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn no_command_prints_the_usage_with_status_2() {
    let o = shop(&[], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("usage: shop gateway|orders|payments|inventory|broker|shipping"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_port_base_that_is_not_a_port_is_refused_with_status_2() {
    for bad in ["abc", "0", "65535", "-1"] {
        let o = shop(&["gateway"], &[("SHOP_PORT_BASE", bad)]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!("shop: SHOP_PORT_BASE must be a port number, found `{bad}`\n")
        );
    }
}

#[test]
fn an_unknown_command_is_named_with_the_usage() {
    let o = shop(&["warehouse"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("shop warehouse: unknown command `warehouse`\nusage: shop "),
        "{err}"
    );
}
