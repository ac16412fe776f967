//! The Debian package (issue 19): `scripts/package-deb.sh` builds it from
//! this build's binary; it holds the binary, the configuration under
//! /etc/hotline (conffiles, group-readable only, its state under
//! /var/lib/hotline) that `check-config` accepts as packaged, the systemd
//! unit that `systemd-analyze verify` finds nothing wrong with (but what
//! this machine lacks: no systemd as PID 1, the binary not installed), and
//! the maintainer scripts that make the `hotline` user. The packaged
//! configuration trusts no SIP source, and the Redis it sets up refuses
//! every command without the password postinst makes.

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

/// This build's package, by `scripts/package-deb.sh`.
fn build_deb() -> std::path::PathBuf {
    let out_dir = tempfile_dir("deb");
    let deb = run(std::process::Command::new("bash")
        .arg(repo().join("scripts/package-deb.sh"))
        .arg(env!("CARGO_BIN_EXE_hotline"))
        .arg(&out_dir)
        .arg("0"));
    std::path::PathBuf::from(deb.trim())
}

/// The package's files, unpacked into a directory of their own.
fn unpacked(deb: &std::path::Path) -> std::path::PathBuf {
    let root = tempfile_dir("deb-root");
    run(std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(&root));
    root
}

#[test]
fn the_deb_holds_the_binary_the_configuration_and_a_valid_unit() {
    let deb = build_deb();
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

    let root = unpacked(&deb);
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

/// Issue 30: the sample's loopback trust and a Redis without a password
/// made every local process a trusted SIP peer and (one `SET` of a token
/// key) a director. As packaged, the configuration trusts nobody, and
/// redis-server with the fragment postinst writes answers nothing without
/// the password the gateway's environment file carries.
#[tokio::test]
async fn the_packaged_configuration_trusts_no_sip_source_and_its_redis_needs_the_password() {
    let deb = build_deb();
    let root = unpacked(&deb);
    let text = std::fs::read_to_string(root.join("etc/hotline/hotline.toml")).unwrap();
    let packaged = hotline::config::Settings::from_toml(&text, "packaged").unwrap();
    assert!(
        packaged.sip.trusted.is_empty(),
        "trusted as packaged: {:?}",
        packaged.sip.trusted
    );
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/hotline.service")).unwrap();
    assert!(unit.contains("\nEnvironmentFile=-/etc/hotline/redis.env\n"));
    let postinst = run(std::process::Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("postinst"));
    for line in [
        "/usr/lib/hotline/redis-auth /etc/hotline/redis.env /etc/redis/hotline.conf",
        "include /etc/redis/hotline.conf",
    ] {
        assert!(
            postinst.contains(line),
            "{line} not in postinst:\n{postinst}"
        );
    }

    // What postinst runs, into a directory of the test's own.
    let dir = tempfile_dir("redis-auth");
    let (env_file, fragment) = (dir.join("redis.env"), dir.join("redis/hotline.conf"));
    std::fs::create_dir(dir.join("redis")).unwrap();
    let auth = || {
        run(
            std::process::Command::new(root.join("usr/lib/hotline/redis-auth"))
                .arg(&env_file)
                .arg(&fragment),
        )
    };
    auth();
    let env = std::fs::read_to_string(&env_file).unwrap();
    let url = env
        .lines()
        .find_map(|l| l.strip_prefix("HOTLINE_REDIS_URL="))
        .unwrap_or_else(|| panic!("no HOTLINE_REDIS_URL in {env}"));
    let password = url
        .strip_prefix("redis://:")
        .and_then(|r| r.strip_suffix("@127.0.0.1:6379/"))
        .unwrap_or_else(|| panic!("{url}"))
        .to_string();
    assert_eq!(password.len(), 64);
    assert!(
        password.bytes().all(|b| b.is_ascii_hexdigit()),
        "{password}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    for f in [&env_file, &fragment] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{}", f.display());
    }
    // Run again (an upgrade): the password is kept.
    auth();
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), env);

    // redis-server with the fragment, on a socket of the test's own.
    let socket = dir.join("redis.sock");
    let mut server = std::process::Command::new("redis-server")
        .arg(&fragment)
        .args(["--port", "0", "--unixsocket"])
        .arg(&socket)
        .args([
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-server runs");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .arg("-s")
            .arg(&socket)
            .arg("--no-auth-warning")
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    // Up once it answers at all (bounded: 10 s).
    let mut said = String::new();
    for _ in 0..200 {
        said = cli(&["PING"]);
        if socket.exists() && !said.contains("connect") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let token_set = cli(&["SET", "hotline:token:forged", "m-chen"]);
    let with_password = cli(&["-a", &password, "PING"]);
    let wrong_password = cli(&["-a", "guess", "PING"]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(said.contains("NOAUTH"), "PING without the password: {said}");
    assert!(
        token_set.contains("NOAUTH"),
        "SET without the password: {token_set}"
    );
    assert_eq!(with_password.trim(), "PONG");
    assert!(
        wrong_password.contains("WRONGPASS") || wrong_password.contains("invalid"),
        "{wrong_password}"
    );
}
