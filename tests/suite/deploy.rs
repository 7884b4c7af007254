//! The deployment files that are not the image: the systemd unit passes
//! `systemd-analyze verify` with the binary this run built in place of the installed one.

use crate::common;

use common::require_tool;

#[test]
fn the_systemd_unit_verifies() {
    let Some(analyze) = require_tool("systemd-analyze") else {
        return;
    };
    let unit = include_str!("../../deploy/systemd/syncwatch.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/syncwatch serve"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syncwatch.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/syncwatch", env!("CARGO_BIN_EXE_syncwatch")),
    )
    .unwrap();
    let output = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    assert!(
        said.trim().is_empty(),
        "systemd-analyze has remarks: {said}"
    );
}
