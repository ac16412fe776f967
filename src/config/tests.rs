//! Loading, overriding and refusing configurations.

use super::*;

#[test]
fn redis_passwords_never_reach_a_message() {
    for (url, shown) in [
        ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/"),
        (
            "redis://:s3cret@redis.court:6379/0",
            "redis://:***@redis.court:6379/0",
        ),
        (
            "redis://hotline:s3cret@10.0.0.5/",
            "redis://hotline:***@10.0.0.5/",
        ),
        ("rediss://s3cret@10.0.0.5/", "rediss://***@10.0.0.5/"),
        ("redis://u:p@ss@host/", "redis://u:***@host/"),
    ] {
        assert_eq!(redact_url(url), shown);
    }
}

#[test]
fn unknown_key_names_line_and_key() {
    let err = Settings::from_toml("[sip]\nmax_cals = 3\n", "x.toml").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("x.toml: line 2"), "{text}");
    assert!(text.contains("sip.max_cals"), "{text}");
    assert!(text.contains("unknown field"), "{text}");
}

#[test]
fn wrong_type_names_key() {
    let err = Settings::from_toml("[sip]\nmax_calls = \"many\"\n", "x.toml").unwrap_err();
    assert!(err.to_string().contains("sip.max_calls"), "{err}");
}

#[test]
fn invalid_value_names_key() {
    let mut s = Settings::from_toml("[sip]\nmax_calls = 0\n", "x.toml").unwrap();
    s.prompts.dir = PathBuf::from("config/prompts");
    let err = s.validate("x.toml").unwrap_err();
    assert_eq!(err.to_string(), "x.toml: sip.max_calls: must be at least 1");
    let mut s = Settings::from_toml("[sip]\nmax_placed_calls = 0\n", "x.toml").unwrap();
    s.prompts.dir = PathBuf::from("config/prompts");
    let err = s.validate("x.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.toml: sip.max_placed_calls: must be at least 1"
    );
    let mut s = Settings::from_toml("[http]\nmember_failures_per_hour = 0\n", "x.toml").unwrap();
    s.prompts.dir = PathBuf::from("config/prompts");
    let err = s.validate("x.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.toml: http.member_failures_per_hour: must be at least 1"
    );
}

#[test]
fn tls_files_are_checked_and_named() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let check = |cert: Option<&str>, key: Option<&str>| {
        let mut s = Settings::from_toml("", "x.toml").unwrap();
        s.prompts.dir = PathBuf::from("config/prompts");
        s.http.tls_cert = cert.map(|f| fixtures.join(f));
        s.http.tls_key = key.map(|f| fixtures.join(f));
        s.validate("x.toml").map_err(|e| e.to_string())
    };
    assert_eq!(check(Some("cert.pem"), Some("key.pem")), Ok(()));
    let only_cert = check(Some("cert.pem"), None).unwrap_err();
    assert!(
        only_cert.starts_with("x.toml: http.tls_key: "),
        "{only_cert}"
    );
    let only_key = check(None, Some("key.pem")).unwrap_err();
    assert!(
        only_key.starts_with("x.toml: http.tls_cert: "),
        "{only_key}"
    );
    let missing = check(Some("nothing.pem"), Some("key.pem")).unwrap_err();
    assert!(missing.starts_with("x.toml: http.tls_cert: "), "{missing}");
    assert!(missing.contains("nothing.pem"), "{missing}");
    // A certificate where the key should be.
    let no_key = check(Some("cert.pem"), Some("cert.pem")).unwrap_err();
    assert!(no_key.starts_with("x.toml: http.tls_key: "), "{no_key}");
    // A key that is not the certificate's.
    let wrong = check(Some("ca.pem"), Some("key.pem")).unwrap_err();
    assert!(wrong.starts_with("x.toml: http.tls_key: "), "{wrong}");
}

#[test]
fn env_then_flags() {
    let env = Overrides::from_env(|k| match k {
        "HOTLINE_SIP_LISTEN" => Some("127.0.0.1:5080".into()),
        "HOTLINE_REDIS_URL" => Some("redis://127.0.0.1:7000/".into()),
        _ => None,
    })
    .unwrap();
    let flags = Overrides {
        sip_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    };
    let o = env.or(flags);
    assert_eq!(o.sip_listen, Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(o.redis_url.as_deref(), Some("redis://127.0.0.1:7000/"));
    let mut s = Settings::from_toml("", "x").unwrap();
    s.apply(&o);
    assert_eq!(
        s.sip.listen,
        vec!["127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap()]
    );
}

#[test]
fn bad_env_value_names_variable() {
    let err =
        Overrides::from_env(|k| (k == "HOTLINE_HTTP_LISTEN").then(|| "nope".into())).unwrap_err();
    assert!(err.starts_with("HOTLINE_HTTP_LISTEN"), "{err}");
}

#[test]
fn every_relative_path_is_the_config_files_not_the_working_directorys() {
    let dir = std::env::temp_dir().join(format!("hotline-cfg-paths-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hotline.toml");
    let prompts = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prompts");
    std::fs::write(
        &file,
        format!(
            "[redis]\njournal_dir = \"state/journal\"\n[recording]\ndir = \"/srv/rec\"\n\
[privacy]\nkey_file = \"state/caller.key\"\n[roster]\nfile = \"roster.toml\"\n\
[prompts]\ndir = \"{}\"\n",
            prompts.display()
        ),
    )
    .unwrap();
    // Only the paths are looked at: a roster that does not exist is the
    // gateway's concern at start, not the loader's.
    let s = Settings::load(&file, &Overrides::default()).unwrap();
    assert_eq!(s.redis.journal_dir, dir.join("state/journal"));
    assert_eq!(s.privacy.key_file, dir.join("state/caller.key"));
    assert_eq!(s.roster.file, dir.join("roster.toml"));
    assert_eq!(s.recording.dir, PathBuf::from("/srv/rec"), "absolute stays");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_violence_reserve_leaves_other_bridges_a_slot() {
    let check = |text: &str| {
        let mut s = Settings::from_toml(text, "x.toml").unwrap();
        s.prompts.dir = PathBuf::from("config/prompts");
        s.validate("x.toml").map_err(|e| e.to_string())
    };
    assert_eq!(check(""), Ok(()), "the defaults: 2 of 10 kept");
    assert_eq!(
        check("[bridge]\nmax_connections = 3\nviolence_reserve = 2\n"),
        Ok(())
    );
    assert_eq!(
        check("[bridge]\nmax_connections = 2\nviolence_reserve = 2\n"),
        Err("x.toml: bridge.violence_reserve: 2 leaves none of bridge.max_connections (2) to other bridges, callbacks and follow-up calls: it must be less".into())
    );
    assert_eq!(
        check("[api]\ncallbacks_per_ticket_per_day = 0\n"),
        Err("x.toml: api.callbacks_per_ticket_per_day: must be at least 1".into())
    );
}

/// `[watch]` (issue 33): a bad time or count is refused naming its key.
#[test]
fn the_watch_settings_name_the_key_that_is_wrong() {
    let e = Settings::from_toml("[watch]\nwebhook_test_at = \"9 am\"\n", "t.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("watch.webhook_test_at"), "{e}");
    assert!(e.contains("is not a time of day \"HH:MM\""), "{e}");
    let s = Settings::from_toml(
        "[watch]\ntrunk_down_after = 0\nduty_check_days = 0\n",
        "t.toml",
    )
    .unwrap();
    let e = s.validate("t.toml").unwrap_err().to_string();
    assert!(
        e.contains("t.toml: watch.trunk_down_after: must be at least 1"),
        "{e}"
    );
    assert!(
        e.contains("t.toml: watch.duty_check_days: 0 is not between 1 and 56 days"),
        "{e}"
    );
}

/// `[swaps]` (issue 33): a bad reminder time, approvers who may not
/// approve and a calendar out of range are refused naming their key.
#[test]
fn the_swaps_settings_name_the_key_that_is_wrong() {
    let e = Settings::from_toml("[swaps]\nremind_at = \"6 pm\"\n", "t.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("swaps.remind_at"), "{e}");
    assert!(e.contains("is not a time of day \"HH:MM\""), "{e}");
    let e = Settings::from_toml("[swaps]\napprovers = [\"ruler\"]\n", "t.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("swaps.approvers"), "{e}");
    let s = Settings::from_toml(
        "[swaps]\napprovers = [\"police\"]\ncalendar_days = 0\n",
        "t.toml",
    )
    .unwrap();
    let e = s.validate("t.toml").unwrap_err().to_string();
    assert!(
        e.contains("t.toml: swaps.approvers: \"police\" may not approve"),
        "{e}"
    );
    assert!(
        e.contains("t.toml: swaps.calendar_days: 0 is not between 1 and 366 days"),
        "{e}"
    );
    let s =
        Settings::from_toml("[swaps]\napproval = false\nremind_at = \"off\"\n", "t.toml").unwrap();
    assert!(!s.swaps.approval && s.swaps.remind_at.0.is_none());
    assert!(s.swaps.check().is_empty());
}

#[test]
fn the_clocks_settings_are_bounded() {
    let check = |text: &str| {
        let mut s = Settings::from_toml(text, "x.toml").unwrap();
        s.prompts.dir = PathBuf::from("config/prompts");
        s.validate("x.toml").map_err(|e| e.to_string())
    };
    assert_eq!(
        check("[cases]\nanswer_working_days = 61\n"),
        Err("x.toml: cases.answer_working_days: must be 1 to 60".into())
    );
    assert_eq!(
        check("[cases]\nlink_days = 400\n"),
        Err("x.toml: cases.link_days: must be at most 366".into())
    );
    assert_eq!(
        check("[dispatch]\nverify_days = 1000\n"),
        Err("x.toml: dispatch.arrive_minutes: arrive_minutes must be at most 1440, verify_days and verify_urgent_days at most 366".into())
    );
    assert_eq!(
        check("[cases]\nanswer_working_days = 60\nlink_days = 0\n"),
        Ok(())
    );
}

/// Issue 33: the links' origin and lifetime and the replies' limit are
/// checked, each problem naming its key; without a public URL no link.
#[test]
fn page_links_and_replies_are_checked_naming_the_key() {
    let ok = Settings::from_toml(
        "[http]\npublic_url = \"https://hotline.court.example/duty\"\npage_link_minutes = 15\n",
        "x.toml",
    )
    .unwrap();
    // (The prompts are not where this test runs: only their problems.)
    let problems = |s: &Settings| {
        s.validate("x.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let said = problems(&ok);
    assert!(
        !said.contains("http.") && !said.contains("paging."),
        "{said}"
    );
    assert_eq!(ok.http.page_link_lifetime(), Duration::from_secs(900));
    let d = Settings::from_toml("", "x.toml").unwrap();
    assert_eq!((d.http.public_url, d.http.page_link_minutes), (None, 30));
    assert!(d.paging.message_replies);
    for (toml, key) in [
        (
            "[http]\npublic_url = \"hotline.court.example\"\n",
            "http.public_url",
        ),
        ("[http]\npublic_url = \"https://\"\n", "http.public_url"),
        ("[http]\npublic_url = \"https://a b\"\n", "http.public_url"),
        ("[http]\npublic_url = \"https://x/#y\"\n", "http.public_url"),
        ("[http]\npublic_url = \"https://u@x\"\n", "http.public_url"),
        ("[http]\npage_link_minutes = 0\n", "http.page_link_minutes"),
        (
            "[http]\npage_link_minutes = 1441\n",
            "http.page_link_minutes",
        ),
        (
            "[paging]\nreplies_per_minute = 0\n",
            "paging.replies_per_minute",
        ),
    ] {
        let err = problems(&Settings::from_toml(toml, "x.toml").unwrap());
        assert!(err.contains(key), "{toml}: {err}");
    }
}

#[test]
fn transcribe_section_is_checked_by_key_and_off_by_one_flag() {
    let err = Settings::from_toml("[transcribe]\nthreds = 1\n", "x.toml").unwrap_err();
    assert!(err.to_string().contains("transcribe.threds"), "{err}");
    let mut s = Settings::from_toml("[transcribe]\nthreads = 3\n", "x.toml").unwrap();
    s.prompts.dir = PathBuf::from("config/prompts");
    let err = s.validate("x.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.toml: transcribe.threads: 1 or 2 (calls come first)"
    );
    let s = Settings::from_toml("[transcribe]\nenabled = false\n", "x.toml").unwrap();
    assert!(!s.transcribe.enabled);
    assert!(
        Settings::from_toml("", "x.toml")
            .unwrap()
            .transcribe
            .enabled
    );
}
