//! `glia-loadtest send|ratelimit|sync-fanout|state-res|compare`: see the README's "Performance"
//! section.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use glia_loadtest::client::Hs;
use glia_loadtest::compare::{self, Workload};
use glia_loadtest::scenarios::{self, Rate, RunOpts};
use glia_loadtest::server::{GliaServer, glia_binary};
use glia_loadtest::state_res;

#[derive(Parser)]
#[command(about = "Load runs against Glia (started here) or any homeserver (--target)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// An already running homeserver with open registration; else a Glia is started on
    /// loopback with a temporary data directory.
    #[arg(long)]
    target: Option<String>,
    /// The glia binary to start (default: `glia` beside this executable).
    #[arg(long)]
    glia: Option<PathBuf>,
    /// How long goose drives the load, in seconds.
    #[arg(long, short = 't', default_value_t = 20)]
    run_time: u64,
    /// Where goose writes its HTML report.
    #[arg(long, default_value = "target/loadtest")]
    report_dir: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// N users in one room sending as fast as they can.
    Send {
        #[command(flatten)]
        common: Common,
        #[arg(long, short = 'u', default_value_t = 16)]
        users: usize,
    },
    /// Many users sending against rc_message; accepted/refused against the expected counts.
    Ratelimit {
        #[command(flatten)]
        common: Common,
        #[arg(long, short = 'u', default_value_t = 50)]
        users: usize,
        /// rc_message per_second (written into the config of the Glia started here; with
        /// --target, the value the server is configured with).
        #[arg(long, default_value_t = 0.2)]
        per_second: f64,
        #[arg(long, default_value_t = 10.0)]
        burst: f64,
    },
    /// M long-polling users, one sender.
    SyncFanout {
        #[command(flatten)]
        common: Common,
        #[arg(long, short = 'u', default_value_t = 100)]
        users: usize,
        /// Milliseconds between the sender's messages.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
    },
    /// Two federating Glias on loopback, N users on each changing one room's state
    /// concurrently; then both must report the same current state.
    StateRes {
        #[command(flatten)]
        common: Common,
        /// Users on each server.
        #[arg(long, short = 'u', default_value_t = 8)]
        users: usize,
    },
    /// The side-by-side workload: Glia (started here) and the Synapse at --synapse.
    Compare {
        #[arg(long)]
        synapse: String,
        /// Synapse's process, for its RSS.
        #[arg(long)]
        synapse_pid: u32,
        #[arg(long)]
        glia: Option<PathBuf>,
        /// Run Glia only as shipped (`synchronous: full`), without the extra
        /// `synchronous: normal` column.
        #[arg(long)]
        no_normal: bool,
    },
}

fn opts(c: &Common, users: usize) -> RunOpts {
    RunOpts {
        target: c.target.clone(),
        glia: c.glia.clone(),
        users,
        run_time: Duration::from_secs(c.run_time),
        report_dir: c.report_dir.clone(),
    }
}

fn report_note(c: &Common, name: &str) {
    println!("goose report: {}", c.report_dir.join(format!("{name}.html")).display());
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Send { common, users } => {
            let r = scenarios::send(&opts(&common, users)).await?;
            println!("{r}");
            report_note(&common, "send");
        }
        Cmd::Ratelimit { common, users, per_second, burst } => {
            let r = scenarios::ratelimit(&opts(&common, users), Rate { per_second, burst }).await?;
            println!("{r}");
            report_note(&common, "ratelimit");
        }
        Cmd::SyncFanout { common, users, interval_ms } => {
            let o = opts(&common, users);
            let r = scenarios::sync_fanout(&o, Duration::from_millis(interval_ms)).await?;
            println!("{r}");
            report_note(&common, "sync_fanout");
        }
        Cmd::StateRes { common, users } => {
            if common.target.is_some() {
                return Err("state-res starts its own two federating Glias: no --target".into());
            }
            let r = state_res::state_res(&opts(&common, users)).await?;
            println!("{r}");
            report_note(&common, "state_res");
            if !r.converged() || r.errors > 0 {
                return Err("the servers did not converge, or requests failed".into());
            }
        }
        Cmd::Compare { synapse, synapse_pid, glia, no_normal } => {
            let bin = glia_binary(glia.as_deref())?;
            let w = Workload::default();
            // Each Glia is a fresh server with its own data directory, stopped before the
            // next one starts.
            let mut glia_rows = vec![];
            let modes: &[&str] = if no_normal { &["full"] } else { &["full", "normal"] };
            for mode in modes {
                let server = GliaServer::start_synchronous(&bin, mode).await?;
                // Idle: started and answering, nothing else asked of it yet.
                println!("Glia ({}, synchronous: {mode}) at {}", bin.display(), server.base_url);
                let rows = compare::workload(&Hs::new(&server.base_url), server.pid(), w, &|l| {
                    println!("  glia ({mode}): {l}")
                })
                .await?;
                glia_rows.push(rows);
            }
            println!("Synapse at {synapse}");
            let s = compare::workload(&Hs::new(&synapse), synapse_pid, w, &|l| {
                println!("  synapse: {l}")
            })
            .await?;
            println!("\n{}", compare::table(&glia_rows[0], glia_rows.get(1).map(|r| &r[..]), &s));
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    glia_loadtest::install_crypto_provider();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("glia-loadtest: {e}");
        std::process::exit(1);
    }
}
