//! The `appliance` command line: `serve` (with `--demo`) and `channel add|list|remove`.

use std::path::PathBuf;
use std::process::ExitCode;

use appliance::channel_store::ChannelStore;
use appliance::config::Config;
use clap::{Parser, Subcommand};
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
}

#[derive(Debug, Subcommand)]
enum ChannelCommand {
    /// Create a channel and print its publish and playback URLs.
    Add {
        name: String,
        /// ultra-low, low or normal.
        #[arg(long, default_value = "ultra-low")]
        latency_mode: LatencyMode,
    },
    /// List channels.
    List,
    /// Remove a channel; its stream key stops working at once.
    Remove { name: String },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,scuffle_rtmp=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Plain text for journald and files; colours only on a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
    let store = ChannelStore::open(&config.data_dir)?;
    let host = &config.public_host;
    let rtmp_port = config.rtmp_addr().port();
    let http_port = config.http_addr().port();
    match command {
        ChannelCommand::Add { name, latency_mode } => {
            let channel = store.add(&name, latency_mode)?;
            println!("channel {} created ({})", channel.name, channel.latency_mode);
            println!("publish:  rtmp://{host}:{rtmp_port}/live/{}", channel.stream_key);
            println!("  server: rtmp://{host}:{rtmp_port}/live");
            println!("  key:    {}", channel.stream_key);
            println!("playback: http://{host}:{http_port}/hls/{}/index.m3u8", channel.name);
        }
        ChannelCommand::List => {
            let mut channels = store.list()?;
            channels.sort_by(|a, b| a.name.cmp(&b.name));
            println!("{:<24} {:<10} playback", "NAME", "MODE");
            for c in channels {
                println!(
                    "{:<24} {:<10} http://{host}:{http_port}/hls/{}/index.m3u8",
                    c.name,
                    c.latency_mode.as_str(),
                    c.name
                );
            }
        }
        ChannelCommand::Remove { name } => {
            store.remove(&name)?;
            println!("channel {name} removed");
        }
    }
    Ok(())
}
