//! `hotline page test MEMBER`: one test page through each of a member's
//! contact methods, each outcome printed.

use std::process::ExitCode;

use clap::Subcommand;

use super::{load, ConfigArgs};

#[derive(Subcommand)]
pub enum PageCommand {
    /// Send a test page through each of a member's contact methods.
    Test {
        member: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub fn run(command: PageCommand) -> ExitCode {
    let PageCommand::Test { member, config } = command;
    let settings = match load(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(test_page(&settings, &member)) {
        Ok(attempts) => {
            for a in &attempts {
                println!(
                    "{:<12} {:<4} {} ({} ms)",
                    a.channel,
                    if a.ok { "ok" } else { "FAIL" },
                    a.outcome,
                    a.latency_ms
                );
            }
            if attempts.iter().all(|a| a.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
    }
}

/// `hotline page test MEMBER`: one test page through each of the member's
/// contact methods, with the outcome of each, so a court can check its
/// roster. Uses its own SIP socket on an ephemeral port.
async fn test_page(
    settings: &hotline::config::Settings,
    member_id: &str,
) -> anyhow::Result<Vec<hotline::paging::channels::Attempt>> {
    use anyhow::Context;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    // The files as serve loads them.
    let live = hotline::live::load_files(settings)
        .map_err(|problems| anyhow::anyhow!(problems.join("\n")))?
        .into_loaded(settings);
    let member = live
        .roster
        .member(member_id)
        .with_context(|| {
            format!(
                "{member_id:?} is not a member of {}",
                settings.roster.file.display()
            )
        })?
        .clone();
    let live = Arc::new(hotline::live::Live::new(live));
    let bound = hotline::sip::transport::bind(&["0.0.0.0:0".parse().expect("an address")])
        .context("binding a SIP socket for the test page")?;
    let metrics = Arc::new(hotline::metrics::Metrics::default());
    let core = hotline::sip::core::Core::new(Default::default(), metrics.clone());
    let (events_tx, mut events_rx) = mpsc::channel(16);
    let (_commands_tx, commands_rx) = mpsc::channel(16);
    let (req_tx, req_rx) = mpsc::channel(16);
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(async move { while events_rx.recv().await.is_some() {} });
    let sip = hotline::sip::transport::spawn(
        bound,
        core,
        hotline::sip::transport::CallChannels {
            events: events_tx,
            commands: commands_rx,
            requests: req_rx,
            registrar: None,
        },
        hotline::sip::transport::DriverConfig {
            limits: Default::default(),
            max_connections: 16,
            fault_injection: false,
        },
        metrics,
        stop.clone(),
        std::future::ready(()),
    )
    .context("starting the SIP thread")?;
    let store = settings.redis.store().map_err(anyhow::Error::msg)?;
    let channels = hotline::paging::channels::Channels {
        sip: hotline::sip::transport::Requester::new(req_tx),
        from_uri: settings.paging.from_uri.clone(),
        outbound_proxy: settings.paging.outbound_proxy,
        http: hotline::paging::channels::webhook_client()?,
        live,
        ports: Arc::new(hotline::media::ports::PortPool::new(
            settings.media.bind_ip,
            settings.media.rtp_port_min,
            settings.media.rtp_port_max,
            Arc::new(hotline::load::Load::default()),
        )),
        advertise_ip: settings.media.advertise_ip,
        ring_timeout: std::time::Duration::from_secs(settings.paging.call_ring_seconds),
        key_timeout: std::time::Duration::from_secs(settings.paging.call_key_seconds),
        plays: settings.paging.call_plays.max(1),
        credentials: settings.paging.credentials(),
        trunk: settings.trunk.as_ref().map(|t| t.resolved()).transpose()?,
        // A test page is about no ticket: not recorded.
        recordings: None,
        store: store.clone(),
        // Not the gateway: a softphone's flow is not ours to call on.
        gateway: "page-test".into(),
    };
    let page = hotline::paging::channels::Page {
        ticket: "测试".into(),
        category: "lead".into(),
        urgent: false,
        step: 0,
        repeat: 0,
        note: Some("这是一次测试呼叫，无需处理".into()),
    };
    let attempts = channels.page(&member, &page).await;
    stop.cancel();
    let _ = sip.await;
    Ok(attempts)
}
