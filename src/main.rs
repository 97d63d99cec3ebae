//! The `crm-bridge` command: run the bridge, or the dev helpers around it.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use crm_bridge::auth::{DEV_JWT_SECRET, hash_api_key, sign_dev_token};
use crm_bridge::config::Config;
use crm_bridge::telemetry::TraceExport;
use tokio_util::sync::CancellationToken;

/// mimalloc, not glibc's malloc: every delivered event allocates its
/// frame, and under glibc the allocator (with the page faults of its heap
/// growing again after a trim) took a seventh of fan-out's CPU and a
/// quarter of a replay storm's. mimalloc cut replay CPU per event by a
/// third, jemalloc by a quarter, for 13% and 8% more memory per idle
/// connection (bench/ANALYSIS.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Streams CRM events from Kafka to Socket.IO clients")]
struct Cli {
    /// TOML configuration file; `CRM_BRIDGE_*` variables override it.
    #[arg(long, env = "CRM_BRIDGE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridge (the default).
    Serve,
    /// Print a JWT for a user, signed with the dev secret `make run` uses.
    Token {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        org: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
    },
    /// Print the SHA-256 to store in `auth.api_keys` for an API key.
    HashApiKey { key: String },
    /// Load FILE as `serve` would (then `CRM_BRIDGE_*` variables, secret
    /// files) and validate it; print the effective configuration as TOML,
    /// secrets redacted. Exits 1 with the offending key on error.
    CheckConfig { file: PathBuf },
    /// Print the configuration reference.
    Config {
        /// Every key after its doc comment, set to its default, as TOML
        /// (`docs/bridge.example.toml`).
        #[arg(long, required = true)]
        print_defaults: bool,
    },
    /// Print the client contract, generated from the bridge's code
    /// (`make contract` writes both into the repository).
    Contract {
        #[arg(value_enum)]
        document: ContractDocument,
    },
    /// Produce demo CRM activity to the configured topics.
    Demo {
        /// Events per second.
        #[arg(long, default_value_t = 4.0)]
        rate: f64,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ContractDocument {
    /// The AsyncAPI 3 document (`docs/asyncapi.json`), for the default topics.
    Asyncapi,
    /// The client package's TypeScript declarations (`client/index.d.ts`).
    Typescript,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token {
            user,
            name,
            org,
            ttl,
        } => {
            println!(
                "{}",
                sign_dev_token(DEV_JWT_SECRET, &user, &name, &org, ttl)
            );
            Ok(())
        }
        Command::HashApiKey { key } => {
            println!("{}", hash_api_key(&key));
            Ok(())
        }
        Command::Config { print_defaults: _ } => {
            print!("{}", crm_bridge::config::reference()?);
            Ok(())
        }
        Command::Contract { document } => {
            match document {
                ContractDocument::Asyncapi => {
                    let topics = crm_bridge::kafka::TopicNames::default();
                    let document = crm_bridge::contract::asyncapi(&topics);
                    println!("{}", serde_json::to_string_pretty(&document)?);
                }
                ContractDocument::Typescript => print!("{}", crm_bridge::contract::typescript()),
            }
            Ok(())
        }
        Command::CheckConfig { file } => {
            if let Err(e) = check_config(&file) {
                // The chain on one line, without a backtrace.
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Serve => serve(Config::load(cli.config.as_deref())?).await,
        Command::Demo { rate } => {
            let config = Config::load(cli.config.as_deref())?;
            crm_bridge::telemetry::init(&config.log, None)?;
            let stop = CancellationToken::new();
            tokio::spawn({
                let stop = stop.clone();
                async move {
                    wait_for_signal().await;
                    stop.cancel();
                }
            });
            crm_bridge::demo::run(&config.kafka, &config.schemas, rate, stop).await
        }
    }
}

/// An error names the key at fault: figment's name it (a wrong type, an
/// unknown key), and so do the secret files' and `validate`'s.
fn check_config(file: &Path) -> anyhow::Result<()> {
    let config = Config::load(Some(file))?;
    print!(
        "# {} is valid. The effective configuration (defaults, the file, \
         CRM_BRIDGE_* variables, secret files read), secrets redacted:\n{}",
        file.display(),
        toml::to_string(&config)?
    );
    Ok(())
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    // One node id for the consumer groups and the traces' resource, even
    // when it is a random one.
    config.kafka.node_id = Some(config.kafka.node_id());
    let traces = TraceExport::from_env(&config.kafka.node_id())?;
    crm_bridge::telemetry::init(&config.log, traces.as_ref())?;
    let app = crm_bridge::app::start(config).await?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    app.shutdown().await;
    tokio::task::spawn_blocking(crm_bridge::telemetry::shutdown_traces).await?;
    // Exit now: with Kafka gone, a librdkafka thread may still be blocked
    // closing its consumer, and dropping the runtime would wait for it.
    std::process::exit(0)
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}
