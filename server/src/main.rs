//! The `glia` binary.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use glia::cli;
use glia::config::Config;

#[derive(Parser)]
#[command(name = "glia", version, about = "A Matrix homeserver for people who self-host")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the homeserver (the default). Without -c (or $GLIA_CONFIG_PATH) it serves the
    /// embedded default: 127.0.0.1:8008, server name `localhost`, data under ./glia-data.
    Serve {
        #[arg(short, long, value_name = "homeserver.yaml")]
        config: Option<PathBuf>,
    },
    /// Write a commented homeserver.yaml and a signing key, like Synapse's generate.
    /// Each option may come from the environment instead (for containers): GLIA_SERVER_NAME,
    /// GLIA_DATA_DIR, GLIA_CONFIG_PATH, GLIA_HTTP_PORT, GLIA_BIND_ADDRESSES (comma-separated).
    Generate {
        #[arg(long)]
        server_name: Option<String>,
        /// Default: $GLIA_DATA_DIR, else ./glia-data.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Where to write the config (default: <data-dir>/homeserver.yaml).
        #[arg(long)]
        config_path: Option<PathBuf>,
        /// The plain-HTTP listener's port (default 8008).
        #[arg(long)]
        http_port: Option<u16>,
        /// The listener's addresses (default ::1 and 127.0.0.1; 0.0.0.0 in a container).
        #[arg(long, value_delimiter = ',')]
        bind_address: Vec<std::net::IpAddr>,
    },
    /// Create a user on a running server via shared-secret registration
    /// (what Synapse's register_new_matrix_user does).
    RegisterUser {
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short, long)]
        password: Option<String>,
        /// Make the user a server admin.
        #[arg(short, long, conflicts_with = "no_admin")]
        admin: bool,
        #[arg(long)]
        no_admin: bool,
        /// Read the shared secret (and default URL) from this config.
        #[arg(short, long, value_name = "homeserver.yaml", conflicts_with = "shared_secret")]
        config: Option<PathBuf>,
        #[arg(short = 'k', long)]
        shared_secret: Option<String>,
        /// The server's client API URL (default from the config's listener, else
        /// http://localhost:8008).
        url: Option<String>,
    },
    /// Validate a config file and report every bad key.
    CheckConfig {
        #[arg(short, long, value_name = "homeserver.yaml")]
        config: PathBuf,
    },
    /// Back up the database (SQLite online backup: safe while the server runs), the media
    /// store and the signing key into DEST. Without -c: the embedded default's ./glia-data.
    Backup {
        #[arg(short, long, value_name = "homeserver.yaml")]
        config: Option<PathBuf>,
        /// A new directory, or one without a backup in it.
        dest: PathBuf,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GLIA_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,ruma_state_res=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(args.command.unwrap_or(Command::Serve { config: None })));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("glia: {}", e.trim_end());
            ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Command) -> Result<(), String> {
    if std::env::var_os("GLIA_REPORT_STATS").is_some() {
        // Synapse's image requires SYNAPSE_REPORT_STATS; Glia never phones home.
        tracing::info!("GLIA_REPORT_STATS is ignored: Glia sends no usage statistics");
    }
    match cmd {
        Command::Serve { config } => {
            serve(config.or_else(|| cli::env::path("GLIA_CONFIG_PATH"))).await
        }
        Command::Generate { server_name, data_dir, config_path, http_port, bind_address } => {
            let opts = cli::env::generate_options(
                server_name,
                data_dir,
                config_path,
                http_port,
                bind_address,
            )?;
            let g = cli::generate::generate_with(&opts)?;
            println!("Wrote {} and {}", g.config_path.display(), g.signing_key_path.display());
            println!("Start the server with: glia serve -c {}", g.config_path.display());
            Ok(())
        }
        Command::CheckConfig { config } => {
            print!("{}", cli::check_config(&config)?);
            Ok(())
        }
        Command::Backup { config, dest } => {
            let config = match &config {
                Some(p) => cli::load_config(p)?,
                None => Config::embedded_default(),
            };
            for line in cli::backup::backup(&config, &dest)? {
                println!("{line}");
            }
            println!("Backup complete in {}", dest.display());
            Ok(())
        }
        Command::RegisterUser { user, password, admin, no_admin, config, shared_secret, url } => {
            register_user(user, password, admin, no_admin, config, shared_secret, url).await
        }
    }
}

async fn serve(config_path: Option<PathBuf>) -> Result<(), String> {
    let config = match &config_path {
        Some(p) => cli::load_config(p)?,
        None => {
            tracing::info!("no config given: serving the embedded default (data in ./glia-data)");
            Config::embedded_default()
        }
    };
    // Handlers first: a SIGTERM that arrives once the server answers must not find the
    // default action (exit by signal) still in place.
    let stop = shutdown_signal();
    let server = glia::Server::start(config).await.map_err(|e| e.to_string())?;
    stop.await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await;
    Ok(())
}

/// SIGTERM or SIGINT. The handlers are installed when this is called, not when awaited.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    async move {
        match (term, int) {
            (Some(mut term), Some(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

fn prompt(question: &str) -> Result<String, String> {
    print!("{question}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line).map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("no input (stdin closed); pass the value as an option".into());
    }
    Ok(line.trim().to_string())
}

async fn register_user(
    user: Option<String>,
    password: Option<String>,
    admin: bool,
    no_admin: bool,
    config: Option<PathBuf>,
    shared_secret: Option<String>,
    url: Option<String>,
) -> Result<(), String> {
    let (secret, default_url) = match (&shared_secret, &config) {
        (Some(s), _) => (s.clone(), "http://localhost:8008".to_string()),
        (None, Some(path)) => secret_from_config(path)?,
        (None, None) => {
            // The embedded default keeps its secret in ./glia-data.
            let path =
                Config::embedded_default().registration_shared_secret_path.unwrap_or_default();
            let s = std::fs::read_to_string(&path).map_err(|e| {
                format!("no -c/--shared-secret given and {} is unreadable: {e}", path.display())
            })?;
            (s.trim().to_string(), "http://localhost:8008".to_string())
        }
    };
    let user = match user {
        Some(u) => u,
        None => prompt("New user localpart: ")?,
    };
    let password = match password {
        Some(p) => p,
        None => {
            let p = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
            let again =
                rpassword::prompt_password("Confirm password: ").map_err(|e| e.to_string())?;
            if p != again {
                return Err("passwords do not match".into());
            }
            if p.is_empty() {
                return Err("password must not be empty".into());
            }
            p
        }
    };
    let admin = if admin || no_admin {
        admin
    } else {
        let a = prompt("Make admin [no]: ")?;
        a.eq_ignore_ascii_case("yes") || a.eq_ignore_ascii_case("y")
    };
    let opts = cli::register_user::Options {
        url: url.unwrap_or(default_url),
        shared_secret: secret,
        user,
        password,
        admin,
    };
    let user_id = cli::register_user::register(&opts).await?;
    println!("Success! Registered {user_id}{}", if admin { " (admin)" } else { "" });
    Ok(())
}

fn secret_from_config(path: &Path) -> Result<(String, String), String> {
    let c = cli::load_config(path)?;
    let secret = match (&c.registration_shared_secret, &c.registration_shared_secret_path) {
        (Some(s), _) => s.clone(),
        (None, Some(p)) => std::fs::read_to_string(p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .trim()
            .to_string(),
        (None, None) => {
            return Err(format!(
                "{}: no registration_shared_secret; shared-secret registration is disabled",
                path.display()
            ));
        }
    };
    let l = c.listeners.iter().find(|l| l.resources.iter().any(|r| r == "client"));
    let url = match l {
        Some(l) if l.tls => format!("https://localhost:{}", l.port),
        Some(l) => format!("http://localhost:{}", l.port),
        None => "http://localhost:8008".into(),
    };
    Ok((secret, url))
}
