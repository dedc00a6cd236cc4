//! The `appliance` command line: `serve` (with `--demo`),
//! `channel add|list|remove|start|stop|rotate-key`, `token create|list|revoke`,
//! `admin set-password`, `probe` and `bench`. The channel, token and admin
//! commands go through the running server's control socket, or work on the
//! state file when no server runs (see `control`).

mod control;
mod encoders;
mod ladder;
mod local_api;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
use crate::state::{NewChannel, Role, Scope, TokenGrant};
use clap::{Parser, Subcommand};
use control::Control;
use media::LatencyMode;

#[derive(Debug, Parser)]
#[command(name = "appliance", version, about = "Live transcoding appliance: RTMP in, Low-Latency HLS out")]
struct Cli {
    /// Configuration file (TOML); APPLIANCE_* environment variables override it.
    #[arg(long, global = true, env = "APPLIANCE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the appliance: RTMP ingest, LL-HLS origin, web pages.
    Serve {
        /// Create a demo channel and publish a test pattern with a clock and tone into it.
        #[arg(long)]
        demo: bool,
    },
    /// Manage channels.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The console's admin account.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Probe the encoders (software, NVIDIA, Intel QSV, VAAPI): available, or precisely why not.
    Probe {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Encode a source at each rung and as a whole ladder on every available backend, against the ffmpeg program.
    Transcode {
        #[arg(long)]
        json: bool,
        /// Source file (H.264/HEVC, optional AAC); a generated 720p30 test pattern by default.
        #[arg(long)]
        input: Option<PathBuf>,
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Ladder as height:kbit/s[:hevc][@fps],...; the default ladder for the source otherwise.
        #[arg(long)]
        ladder: Option<String>,
        /// Write the measured capacities to the data directory (used by the slot scheduler).
        #[arg(long)]
        calibrate: bool,
        /// Skip the real-time run that measures added latency.
        #[arg(long)]
        no_latency: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token and print it (once: only its hash is stored).
    Create {
        #[arg(long)]
        name: String,
        /// viewer (reads), operator (also changes channels, sessions, recordings) or admin (everything).
        #[arg(long, required_unless_present = "scope", conflicts_with = "scope")]
        role: Option<Role>,
        /// Legacy: read (the viewer role) or write (the admin role).
        #[arg(long)]
        scope: Option<Scope>,
        /// Restricts the token to this channel (repeat for more; viewer and operator only).
        #[arg(long = "channel")]
        channels: Vec<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token at once.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Set the console admin password, read as one line from stdin (a random one is made and printed when stdin is empty).
    SetPassword,
}

#[derive(Debug, Subcommand)]
enum ChannelCommand {
    /// Create a channel and print its publish and playback URLs.
    Add {
        name: String,
        /// ultra-low, low or normal.
        #[arg(long, default_value = "ultra-low")]
        latency_mode: LatencyMode,
        /// Leave the channel idle (publishes refused) until `channel start`.
        #[arg(long)]
        idle: bool,
        /// Transcode an ABR ladder: height:kbit/s[:hevc][@fps],... (add `+source` to offer the source too).
        #[arg(long)]
        ladder: Option<String>,
        /// hardware-only, prefer-hardware or software.
        #[arg(long, default_value = "prefer-hardware", value_parser = ladder::parse_policy)]
        encoder_policy: media::EncoderPolicy,
        /// Give the channel a backup stream key too, for a second encoder that takes over when the primary stops.
        #[arg(long)]
        backup: bool,
    },
    /// List channels.
    List,
    /// Remove a channel; its stream key stops working at once.
    Remove { name: String },
    /// Start a channel: publishes are accepted.
    Start { name: String },
    /// Stop a channel: publishes are refused, a live session is ended.
    Stop { name: String },
    /// Replace the stream key; the old one is refused at once.
    RotateKey {
        name: String,
        /// Replace the backup key instead (a channel without one gets one).
        #[arg(long)]
        backup: bool,
    },
}

fn set_admin_password(config: &Config) -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let typed = line.trim_end_matches(['\r', '\n']);
    let password = if typed.is_empty() { crate::http::console::password::generate() } else { typed.to_string() };
    control::set_admin_password(config, &password)?;
    if typed.is_empty() {
        println!("admin password set to: {password}");
    } else {
        println!("admin password set");
    }
    println!("(every signed-in console session has ended)");
    Ok(())
}

pub fn main() -> ExitCode {
    // Structured journald records under systemd, plain text on stderr otherwise.
    crate::logging::init();
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("appliance: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve { demo } => run_server(config, demo),
        Command::Channel(command) => channel(&config, command),
        Command::Probe { json } => encoders::probe_command(json),
        Command::Bench(BenchCommand::Transcode { json, input, seconds, ladder, calibrate, no_latency }) => {
            bench_transcode(&config, json, input, seconds, ladder, calibrate, no_latency)
        }
        Command::Token(command) => token(&config, command),
        Command::Admin(AdminCommand::SetPassword) => set_admin_password(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("appliance: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_server(config: Config, demo: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(crate::serve::serve(config, demo))
}

fn channel(config: &Config, command: ChannelCommand) -> anyhow::Result<()> {
    let control = Control::open(config)?;
    match command {
        ChannelCommand::Add { name, latency_mode, idle, ladder, encoder_policy, backup } => {
            let output = match ladder {
                Some(text) => media::ChannelOutput::Ladder {
                    ladder: ladder::parse_ladder(&text).map_err(|e| anyhow::anyhow!("--ladder: {e}"))?,
                },
                None => media::ChannelOutput::Passthrough,
            };
            let new = NewChannel { name, latency_mode, output, encoder_policy, backup, ..NewChannel::default() };
            let channel = control.create_channel(new, !idle)?;
            let key = channel.stream_key.unwrap_or_default();
            let publish = channel.publish_url.unwrap_or_default();
            println!("channel {} created ({})", channel.name, channel.latency_mode);
            println!("state:    {}", channel.state);
            println!("publish:  {publish}");
            println!("  server: {}", publish.strip_suffix(&format!("/{key}")).unwrap_or(&publish));
            println!("  key:    {key}");
            if let Some(backup) = &channel.backup_publish_url {
                println!("backup:   {backup}");
            }
            println!("playback: {}", channel.playback_url);
        }
        ChannelCommand::List => {
            println!("{:<24} {:<10} {:<8} playback", "NAME", "MODE", "STATE");
            for c in control.channels()? {
                println!("{:<24} {:<10} {:<8} {}", c.name, c.latency_mode.as_str(), c.state.as_str(), c.playback_url);
            }
        }
        ChannelCommand::Remove { name } => {
            control.remove_channel(&name)?;
            println!("channel {name} removed");
        }
        ChannelCommand::Start { name } => {
            control.start_channel(&name)?;
            println!("channel {name} started: publishes are accepted");
        }
        ChannelCommand::Stop { name } => {
            let channel = control.stop_channel(&name)?;
            println!("channel {name} stopped: publishes are refused");
            match (channel.current_session, &control) {
                (Some(session), Control::Server(_)) => {
                    println!("its live session {session} is being ended by the running appliance")
                }
                (Some(session), Control::File { .. }) => {
                    println!(
                        "its session {session} was in progress when the appliance stopped; its next start records the end"
                    )
                }
                (None, _) => {}
            }
        }
        ChannelCommand::RotateKey { name, backup } => {
            let channel = control.rotate_stream_key(&name, backup)?;
            if backup {
                println!("channel {name}: new backup stream key (the old one is refused from now on)");
                println!("backup:   {}", channel.backup_publish_url.unwrap_or_default());
            } else {
                println!("channel {name}: new stream key (the old one is refused from now on)");
                println!("publish:  {}", channel.publish_url.unwrap_or_default());
            }
        }
    }
    Ok(())
}

fn token(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let control = Control::open(config)?;
    match command {
        TokenCommand::Create { name, role, scope, channels } => {
            let Some(role) = role.or(scope.map(Scope::role)) else {
                anyhow::bail!("give --role (or the legacy --scope)")
            };
            let channels = (!channels.is_empty()).then_some(channels);
            let (token, text) = control.create_token(&name, TokenGrant { role, channels })?;
            println!("token {} created ({}, role {})", token.id, token.name, token.role.as_str());
            println!("{text}");
            println!("keep it now: it is not shown again. Use it as `Authorization: Bearer {text}`");
        }
        TokenCommand::List => {
            println!("{:<18} {:<8} NAME", "ID", "ROLE");
            for t in control.tokens()? {
                println!("{:<18} {:<8} {}", t.id, t.role.as_str(), t.name);
            }
        }
        TokenCommand::Revoke { id } => {
            control.revoke_token(&id)?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}

fn bench_transcode(
    config: &Config,
    json: bool,
    input: Option<PathBuf>,
    seconds: u32,
    ladder: Option<String>,
    calibrate: bool,
    no_latency: bool,
) -> anyhow::Result<()> {
    let ladder = ladder.map(|l| ladder::parse_ladder(&l)).transpose().map_err(|e| anyhow::anyhow!("--ladder: {e}"))?;
    let options = accel::bench::BenchOptions {
        input,
        seconds,
        ladder,
        keyframe_interval: std::time::Duration::from_secs(1),
        skip_latency: no_latency,
        work_dir: std::env::temp_dir().join("appliance-bench"),
    };
    encoders::bench_command(&config.data_dir, options, json, calibrate)
}
