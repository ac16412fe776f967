//! The cluster on one machine (issue 19): `scripts/cluster-test.sh` starts
//! Kamailio (deploy/kamailio/kamailio.cfg), two gateways of this build, a
//! Redis master and replica and three sentinels on loopback, and checks the
//! spread of calls, a gateway's kill -9 (calls re-routed, its tickets'
//! paging resumed by the survivor), the Redis master's kill -9, and a drain
//! with a call in progress (about 40 s; its figures go to the test log).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_survives_a_dead_gateway_a_redis_failover_and_a_drain() {
    let script = crate::helpers::repo().join("scripts/cluster-test.sh");
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(script)
        .arg(env!("CARGO_BIN_EXE_hotline"))
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), cmd.output())
        .await
        .expect("the cluster test ends within its bound")
        .expect("bash runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("cluster-test: ok"), "{stdout}");
}

/// Recordings across gateways (docs/adr/0011-cluster.md): every gateway
/// records into a directory of its own on one shared volume, mounted at the
/// same path everywhere. Gateway B starting while A records leaves A's
/// recording alone (it repairs only its own directory); an officer on B
/// downloads what A recorded, byte for byte; `verify` on B checks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_made_on_one_gateway_is_downloaded_and_verified_on_another() {
    use crate::helpers::*;
    let redis = Redis::start("everysec").await;
    let shared = tempfile_dir("shared-recordings");
    let roster = test_roster(&offline(&test_roster_text()));
    let config = |name: &str| {
        let dir = tempfile_dir(name);
        let config = write_config(&dir, &redis, &roster, "");
        let text = std::fs::read_to_string(&config).unwrap();
        let own = shared.join(name);
        let text = text.replace(
            &format!("dir = \"{}\"", dir.join("recordings").display()),
            &format!("dir = \"{}\"", own.display()),
        );
        std::fs::write(&config, text).unwrap();
        config
    };
    let (a_config, b_config) = (config("gw-a"), config("gw-b"));
    let a = Process::start(&a_config);
    let store = hotline::tickets::Store::connect(&redis.url(), "hotline:").unwrap();
    let call = crate::helpers::TestCall::place(a.udp, "shared@t", 0).await;
    call.info(0, '1').await;
    // B starts while A's call is being recorded.
    let b = Process::start(&b_config);
    call.hangup().await;
    let number = ticket_of(&store, "shared@t").await;
    let path = recording_of(&store, "shared@t").await;
    assert!(path.starts_with(shared.join("gw-a")), "{path:?}");
    eventually(
        "the recording final",
        std::time::Duration::from_secs(10),
        || async { hotline::recording::verify::verify(&path).is_ok() },
    )
    .await;
    let manifest =
        hotline::recording::manifest::Manifest::read(&hotline::recording::manifest_path(&path))
            .unwrap();
    assert_eq!(
        manifest.status.as_str(),
        "complete",
        "B did not take it for a crash"
    );
    // An officer on B downloads it.
    hotline::api::auth::set_pin(&store, "m-chen", "112233")
        .await
        .unwrap();
    let api = crate::helpers::Api {
        base: format!("http://{}/api/v1", b.http),
        http: crate::helpers::http_client(),
    };
    let token = api.login("m-chen", "112233").await;
    let r = api
        .http
        .get(format!("{}/tickets/{number}/recording", api.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        std::fs::read(&path).unwrap()
    );
    // `verify` with B's configuration.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["recording", "verify"])
        .arg(&path)
        .arg("--config")
        .arg(&b_config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop((a, b));
}
