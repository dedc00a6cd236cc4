//! The `appliance` command line: `serve` (with `--demo`),
//! `channel add|list|remove|start|stop|rotate-key` and `token create|list|revoke`.
//! The channel and token commands work on the state file while `serve` runs.

use std::path::PathBuf;
use std::process::ExitCode;

use appliance::channel_store::ChannelStore;
use appliance::config::Config;
use appliance::state::{NewChannel, Scope};
use clap::{Parser, Subcommand};
use media::LatencyMode;

// jemalloc hands memory freed after a burst (a wave of publishes, thousands
// of held playlist requests) back to the system within seconds, from its
// background threads; glibc's malloc kept the peak for good. Measured with
// `benches`' `memory` command; `--no-default-features` builds with glibc's.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// read (GET routes only) or write (everything).
        #[arg(long)]
        scope: Scope,
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
        #[arg(long, default_value = "prefer-hardware", value_parser = appliance::transcode::parse_policy)]
        encoder_policy: media::EncoderPolicy,
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
    RotateKey { name: String },
}

fn set_admin_password(config: &Config) -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let typed = line.trim_end_matches(['\r', '\n']);
    let password = if typed.is_empty() { appliance::console::password::generate() } else { typed.to_string() };
    appliance::console::password::set(&config.data_dir, &password)?;
    if typed.is_empty() {
        println!("admin password set to: {password}");
    } else {
        println!("admin password set");
    }
    println!("(every signed-in console session has ended)");
    Ok(())
}

fn main() -> ExitCode {
    // Structured journald records under systemd, plain text on stderr otherwise.
    appliance::logging::init();
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
        Command::Probe { json } => appliance::transcode::probe_command(json),
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
    runtime.block_on(appliance::serve::serve(config, demo))
}

fn channel(config: &Config, command: ChannelCommand) -> anyhow::Result<()> {
    let store = ChannelStore::open_shared(&config.data_dir)?;
    let host = &config.public_host;
    let rtmp_port = config.rtmp_addr().port();
    let http_port = config.http_addr().port();
    match command {
        ChannelCommand::Add { name, latency_mode, idle, ladder, encoder_policy } => {
            let output = match ladder {
                Some(text) => media::ChannelOutput::Ladder {
                    ladder: appliance::transcode::parse_ladder(&text).map_err(|e| anyhow::anyhow!("--ladder: {e}"))?,
                },
                None => media::ChannelOutput::Passthrough,
            };
            let new = NewChannel { name, latency_mode, output, encoder_policy, ..NewChannel::default() };
            let channel = store.create_channel(new, !idle)?;
            println!("channel {} created ({})", channel.name, channel.latency_mode);
            println!("state:    {}", channel.state);
            println!("publish:  rtmp://{host}:{rtmp_port}/live/{}", channel.stream_key);
            println!("  server: rtmp://{host}:{rtmp_port}/live");
            println!("  key:    {}", channel.stream_key);
            println!("playback: http://{host}:{http_port}/hls/{}/index.m3u8", channel.name);
        }
        ChannelCommand::List => {
            let mut channels = store.list()?;
            channels.sort_by(|a, b| a.name.cmp(&b.name));
            println!("{:<24} {:<10} {:<8} playback", "NAME", "MODE", "STATE");
            for c in channels {
                println!(
                    "{:<24} {:<10} {:<8} http://{host}:{http_port}/hls/{}/index.m3u8",
                    c.name,
                    c.latency_mode.as_str(),
                    c.state.as_str(),
                    c.name
                );
            }
        }
        ChannelCommand::Remove { name } => {
            store.remove(&name)?;
            println!("channel {name} removed");
        }
        ChannelCommand::Start { name } => {
            store.start_channel(&name)?;
            println!("channel {name} started: publishes are accepted");
        }
        ChannelCommand::Stop { name } => {
            let (_, ended) = store.stop_channel(&name)?;
            println!("channel {name} stopped: publishes are refused");
            if let Some((session, _)) = ended {
                println!("its live session {session} is being ended by the running appliance");
            }
        }
        ChannelCommand::RotateKey { name } => {
            let channel = store.rotate_stream_key(&name)?;
            println!("channel {name}: new stream key (the old one is refused from now on)");
            println!("publish:  rtmp://{host}:{rtmp_port}/live/{}", channel.stream_key);
        }
    }
    Ok(())
}

fn token(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let store = ChannelStore::open_shared(&config.data_dir)?;
    match command {
        TokenCommand::Create { name, scope } => {
            let (token, text) = store.create_token(&name, scope)?;
            println!("token {} created ({}, scope {})", token.id, token.name, token.scope.as_str());
            println!("{text}");
            println!("keep it now: it is not shown again. Use it as `Authorization: Bearer {text}`");
        }
        TokenCommand::List => {
            println!("{:<18} {:<6} NAME", "ID", "SCOPE");
            let mut cursor: Option<String> = None;
            loop {
                let page = store.list_tokens(cursor.as_deref(), 500)?;
                for t in &page.items {
                    println!("{:<18} {:<6} {}", t.id, t.scope.as_str(), t.name);
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        TokenCommand::Revoke { id } => {
            store.revoke_token(&id)?;
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
    let ladder = ladder
        .map(|l| appliance::transcode::parse_ladder(&l))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--ladder: {e}"))?;
    let options = accel::bench::BenchOptions {
        input,
        seconds,
        ladder,
        keyframe_interval: std::time::Duration::from_secs(1),
        skip_latency: no_latency,
        work_dir: std::env::temp_dir().join("appliance-bench"),
    };
    appliance::transcode::bench_command(&config.data_dir, options, json, calibrate)
}
