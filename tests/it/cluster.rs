//! The cluster on one machine (issue 19): `scripts/cluster-test.sh` starts
//! Kamailio (deploy/kamailio/kamailio.cfg), two gateways of this build, a
//! Redis master and replica and three sentinels on loopback, and checks the
//! spread of calls, a gateway's and the Redis master's kill -9, and a drain
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
