//! The Debian package (issue 19): `scripts/package-deb.sh` builds it from
//! this build's binary; it holds the binary, the configuration under
//! /etc/hotline (conffiles, group-readable only, its state under
//! /var/lib/hotline) that `check-config` accepts as packaged, the systemd
//! unit that `systemd-analyze verify` finds nothing wrong with (but what
//! this machine lacks: no systemd as PID 1, the binary not installed), and
//! the maintainer scripts that make the `hotline` user.

use crate::helpers::*;

fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_deb_holds_the_binary_the_configuration_and_a_valid_unit() {
    let out_dir = tempfile_dir("deb");
    let deb = run(std::process::Command::new("bash")
        .arg(repo().join("scripts/package-deb.sh"))
        .arg(env!("CARGO_BIN_EXE_hotline"))
        .arg(&out_dir)
        .arg("0"));
    let deb = std::path::PathBuf::from(deb.trim());
    let fields = run(std::process::Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .args(["Package", "Depends"]));
    assert!(fields.contains("Package: hotline"), "{fields}");
    let listing = run(std::process::Command::new("dpkg-deb").arg("-c").arg(&deb));
    let mode_of = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(path))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{path} not in the package:\n{listing}"))
            .to_string()
    };
    assert_eq!(mode_of("./usr/bin/hotline"), "-rwxr-xr-x");
    assert_eq!(mode_of("./etc/hotline/hotline.toml"), "-rw-r-----");
    assert_eq!(mode_of("./etc/hotline/"), "drwxr-x---");
    assert_eq!(
        mode_of("./lib/systemd/system/hotline.service"),
        "-rw-r--r--"
    );
    mode_of("./usr/share/hotline/kamailio/kamailio.cfg");
    let control = run(std::process::Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("postinst"));
    assert!(control.contains("adduser --system --group"), "{control}");

    let root = tempfile_dir("deb-root");
    run(std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root));
    let conffiles = run(std::process::Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("conffiles"));
    assert!(
        conffiles.contains("/etc/hotline/hotline.toml"),
        "{conffiles}"
    );
    // The packaged configuration: state under /var/lib/hotline, and valid.
    let config = root.join("etc/hotline/hotline.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    for line in [
        "journal_dir = \"/var/lib/hotline/journal\"",
        "dir = \"/var/lib/hotline/recordings\"",
        "key_file = \"/var/lib/hotline/caller.key\"",
    ] {
        assert!(
            text.contains(line),
            "{line} not in the packaged configuration"
        );
    }
    let checked = run(std::process::Command::new(root.join("usr/bin/hotline"))
        .args(["check-config", "--config"])
        .arg(&config));
    assert!(checked.contains(": ok"), "{checked}");
    // The unit: nothing wrong but what this machine lacks.
    let unit = root.join("lib/systemd/system/hotline.service");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian's systemd)");
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let problems: Vec<&str> = said
        .lines()
        .filter(|l| !l.contains("sysinit.target not found") && !l.contains("is not executable"))
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(problems.is_empty(), "systemd-analyze verify: {problems:#?}");
    assert!(std::fs::read_to_string(&unit)
        .unwrap()
        .contains("ExecStart=/usr/bin/hotline serve"));
}
