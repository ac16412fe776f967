//! `hotline`: parse the command line, load the config, run until a signal.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotline::config::{Overrides, Settings};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "hotline", version, about = "Duty-line telephony gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// The TOML configuration file.
    #[arg(long, default_value = "config/hotline.toml")]
    config: PathBuf,
    /// SIP address (UDP and TCP), overrides sip.listen.
    #[arg(long)]
    sip_listen: Option<std::net::SocketAddr>,
    /// HTTP address, overrides http.listen.
    #[arg(long)]
    http_listen: Option<std::net::SocketAddr>,
    /// Redis URL, overrides redis.url.
    #[arg(long)]
    redis_url: Option<String>,
    /// Recordings directory, overrides recording.dir.
    #[arg(long)]
    recordings: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(ConfigArgs),
    /// Validate a configuration file and exit.
    CheckConfig(ConfigArgs),
    /// Read the duty logbook.
    Tickets {
        #[command(subcommand)]
        command: TicketsCommand,
    },
    /// Call recordings.
    Recording {
        #[command(subcommand)]
        command: RecordingCommand,
    },
    /// Officers' credentials for the API.
    Officer {
        #[command(subcommand)]
        command: OfficerCommand,
    },
    /// Paging.
    Page {
        #[command(subcommand)]
        command: PageCommand,
    },
    /// Who is on duty.
    Roster {
        #[command(subcommand)]
        command: RosterCommand,
    },
}

#[derive(Subcommand)]
enum OfficerCommand {
    /// Set a member's PIN (read from standard input, one line).
    SetPin {
        member: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Set a member's SIP password for their softphone (read from standard
    /// input, one line, at least 12 characters); only its HA1 is stored.
    SetSipPassword {
        member: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// End every session of a member at once.
    Revoke {
        member: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum PageCommand {
    /// Send a test page through each of a member's contact methods.
    Test {
        member: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum RosterCommand {
    /// Who is on duty now, or at a given time (Asia/Shanghai, e.g. "2026-02-15 21:00").
    Who {
        #[arg(long)]
        at: Option<String>,
        /// The case number, to name its case handler.
        #[arg(long)]
        case: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// The duty plan for a range of days (YYYY-MM-DD), printable.
    Plan {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Coverage gaps, unreachable members, uneven load over the next 8 weeks.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Move the rotation on by one duty period, for every gateway.
    Advance {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum RecordingCommand {
    /// Check a recording against its manifest: prints `ok`, or the first
    /// chunk that does not match (exit status 1).
    Verify { file: PathBuf },
}

#[derive(Subcommand)]
enum TicketsCommand {
    /// Newest tickets first.
    List {
        /// Only tickets in this state (intake, open, acknowledged, dispatched,
        /// on_scene, closed, abandoned, cancelled, duplicate).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// A ticket's register entry and timeline.
    Show {
        number: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

fn load(args: &ConfigArgs) -> Result<Settings, String> {
    let env = Overrides::from_env(|k| std::env::var(k).ok())?;
    let flags = Overrides {
        sip_listen: args.sip_listen,
        http_listen: args.http_listen,
        redis_url: args.redis_url.clone(),
        recordings: args.recordings.clone(),
        caller_key: None,
        fault_injection: false,
    };
    Settings::load(&args.config, &env.or(flags)).map_err(|e| e.to_string())
}

/// jemalloc, with its background threads returning freed pages to the
/// system: after a wave of calls the gateway's resident memory falls back.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOTLINE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        // Colours only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match cli.command {
        Command::CheckConfig(args) => match load(&args) {
            Ok(_) => {
                println!("{}: ok", args.config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Recording {
            command: RecordingCommand::Verify { file },
        } => match hotline::recording::verify::verify(&file) {
            Ok(()) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
        Command::Officer { command } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(officer(command)) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Page {
            command: PageCommand::Test { member, config },
        } => {
            let settings = match load(&config) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            match rt.block_on(hotline::paging::test_page(&settings, &member)) {
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
        Command::Roster { command } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(roster(command)) {
                Ok((text, ok)) => {
                    print!("{text}");
                    if ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Tickets { command } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(tickets(command)) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(args) => {
            let settings = match load(&args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            let result = rt.block_on(serve(settings));
            // Whatever still runs (a stuck blocking task) gets 2 s: a gateway
            // that failed must exit for systemd to start it again.
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "gateway failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn tickets(command: TicketsCommand) -> Result<String, String> {
    use hotline::tickets::{report, State, Store};
    let args = match &command {
        TicketsCommand::List { config, .. } | TicketsCommand::Show { config, .. } => config,
    };
    let s = load(args)?;
    let store = Store::connect(&s.redis.url, &s.redis.key_prefix).map_err(|e| e.to_string())?;
    let fail = |e: hotline::tickets::StoreError| format!("{}: {e}", s.redis.url_redacted());
    match command {
        TicketsCommand::List { state, limit, .. } => {
            let index = match state {
                Some(st) => match State::parse(&st) {
                    Some(st) => format!("state:{st}"),
                    None => return Err(format!("--state {st:?}: not a ticket state")),
                },
                None => "all".to_string(),
            };
            let list = store.list(&index, limit).await.map_err(fail)?;
            Ok(list.iter().map(|t| report::line(t) + "\n").collect())
        }
        TicketsCommand::Show { number, .. } => {
            let t = store.get(&number).await.map_err(fail)?;
            let timeline = store.timeline(&number).await.map_err(fail)?;
            Ok(report::full(&t, &timeline))
        }
    }
}

/// Runs a roster command: (text, whether all is well).
async fn roster(command: RosterCommand) -> Result<(String, bool), String> {
    use hotline::roster::{report, Calendar, Roster};
    let args = match &command {
        RosterCommand::Who { config, .. }
        | RosterCommand::Plan { config, .. }
        | RosterCommand::Check { config }
        | RosterCommand::Advance { config } => config,
    };
    let s = load(args)?;
    let roster = Roster::load(&s.roster.file).map_err(|e| e.to_string())?;
    let cal = Calendar::load(&s.roster.holidays).map_err(|e| e.to_string())?;
    let tz = hotline::tickets::store::court_tz();
    let store = hotline::tickets::Store::connect(&s.redis.url, &s.redis.key_prefix)
        .map_err(|e| format!("redis.url {:?}: {e}", s.redis.url_redacted()))?;
    let url = s.redis.url_redacted();
    let offset = || async {
        store
            .rotation_offset()
            .await
            .map_err(|e| format!("{url}: rotation state: {e}"))
    };
    let date = |v: &str, flag: &str| {
        v.parse::<jiff::civil::Date>()
            .map_err(|e| format!("{flag} {v:?}: not a date YYYY-MM-DD ({e})"))
    };
    match command {
        RosterCommand::Who { at, case, .. } => {
            let at = match at {
                None => jiff::Timestamp::now(),
                Some(t) => t
                    .parse::<jiff::civil::DateTime>()
                    .map_err(|e| format!("--at {t:?}: not a time like \"2026-02-15 21:00\" ({e})"))?
                    .to_zoned_datetime(tz)
                    .map_err(|e| format!("--at {t:?}: {e}"))?
                    .timestamp(),
            };
            let off = offset().await?;
            Ok((
                report::who(&roster.resolve(&cal, off, at, case.as_deref())),
                true,
            ))
        }
        RosterCommand::Plan { from, to, .. } => {
            let (from, to) = (date(&from, "--from")?, date(&to, "--to")?);
            if to < from || (to - from).get_days() > 400 {
                return Err("--from must be before --to, at most 400 days apart".into());
            }
            let off = offset().await?;
            Ok((report::plan(&roster.plan(&cal, off, from, to)), true))
        }
        RosterCommand::Check { .. } => {
            let off = offset().await?;
            let today = jiff::Timestamp::now().to_zoned_datetime(tz).date();
            let reach = hotline::roster::Reach::of(&s);
            let (mut issues, warnings) = roster.check(&cal, off, today, reach);
            issues.extend(hotline::paging::unreached_hours(
                &roster,
                &cal,
                &s.paging.policies,
                off,
                today,
                56,
                reach,
            ));
            let mut text: String = issues.iter().map(|i| format!("{i}\n")).collect();
            text.extend(warnings.iter().map(|w| format!("warning: {w}\n")));
            if issues.is_empty() {
                text.push_str("ok\n");
            }
            Ok((text, issues.is_empty()))
        }
        RosterCommand::Advance { .. } => {
            let n = store
                .advance_rotation()
                .await
                .map_err(|e| format!("{}: {e}", s.redis.url_redacted()))?;
            let now = jiff::Timestamp::now();
            Ok((
                format!(
                    "rotation advanced (offset {n})\n{}",
                    report::who(&roster.resolve(&cal, n, now, None))
                ),
                true,
            ))
        }
    }
}

async fn officer(command: OfficerCommand) -> Result<String, String> {
    use hotline::api::auth;
    let (member, config) = match &command {
        OfficerCommand::SetPin { member, config }
        | OfficerCommand::SetSipPassword { member, config }
        | OfficerCommand::Revoke { member, config } => (member, config),
    };
    let s = load(config)?;
    let roster = hotline::roster::Roster::load(&s.roster.file).map_err(|e| e.to_string())?;
    if roster.member(member).is_none() {
        return Err(format!(
            "{member:?} is not a member of {}",
            s.roster.file.display()
        ));
    }
    let store = hotline::tickets::Store::connect(&s.redis.url, &s.redis.key_prefix)
        .map_err(|e| e.to_string())?;
    match command {
        OfficerCommand::SetPin { .. } => {
            let mut pin = String::new();
            std::io::stdin()
                .read_line(&mut pin)
                .map_err(|e| format!("reading the PIN: {e}"))?;
            let pin = pin.trim();
            if pin.len() < 6 || !pin.bytes().all(|b| b.is_ascii_digit()) {
                return Err("the PIN must be at least 6 digits".into());
            }
            auth::set_pin(&store, member, pin)
                .await
                .map_err(|e| format!("{}: {e}", s.redis.url_redacted()))?;
            Ok(format!("PIN set for {member}"))
        }
        OfficerCommand::SetSipPassword { .. } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| format!("reading the password: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.chars().count() < 12 {
                return Err("the SIP password must be at least 12 characters".into());
            }
            // The realm the registrar will check it in.
            let realm = s.registrar.clone().unwrap_or_default().realm;
            let ha1 = hotline::sip::digest::ha1(member, &realm, password);
            store
                .set_sip_ha1(member, &ha1)
                .await
                .map_err(|e| format!("{}: {e}", s.redis.url_redacted()))?;
            Ok(format!("SIP password set for {member} (realm {realm})"))
        }
        OfficerCommand::Revoke { .. } => {
            let n = auth::revoke(&store, member)
                .await
                .map_err(|e| format!("{}: {e}", s.redis.url_redacted()))?;
            Ok(format!("{n} session(s) of {member} ended"))
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = hotline::app::App::build(settings).await?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
    });
    app.run_until_stopped(shutdown).await
}
