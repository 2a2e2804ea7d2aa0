//! The command line: `serve`, `generate`, `register-user`, `check-config`, `backup`.

pub mod backup;
pub mod env;
pub mod generate;
pub mod http_client;
pub mod register_user;

use std::path::Path;

use crate::config::{Config, Report};

/// Load a config file, printing its warnings; errors name every bad key.
pub fn load_config(path: &Path) -> Result<Config, String> {
    match Config::from_file(path) {
        Ok((c, report)) => {
            for w in &report.warnings {
                tracing::warn!("{}: {w}", path.display());
            }
            Ok(c)
        }
        Err(report) => Err(format_report(path, &report)),
    }
}

pub fn format_report(path: &Path, report: &Report) -> String {
    let mut s = format!("{} has {} error(s):\n", path.display(), report.errors.len());
    for e in &report.errors {
        s.push_str(&format!("  error: {e}\n"));
    }
    for w in &report.warnings {
        s.push_str(&format!("  warning: {w}\n"));
    }
    s
}

/// `glia check-config`: report every problem; Ok(summary) when the config can be served.
pub fn check_config(path: &Path) -> Result<String, String> {
    let (config, report) = Config::from_file(path).map_err(|r| format_report(path, &r))?;
    let mut problems = vec![];
    if config.signing_key_path.exists()
        && let Err(e) = crate::keys::SigningKey::load(&config.signing_key_path)
    {
        problems.push(format!("signing_key_path: {e}"));
    }
    for (key, p) in [
        ("tls_certificate_path", &config.tls_certificate_path),
        ("tls_private_key_path", &config.tls_private_key_path),
    ] {
        if let Some(p) = p
            && !p.exists()
        {
            problems.push(format!("{key}: {} does not exist", p.display()));
        }
    }
    if !problems.is_empty() {
        let r = Report { errors: problems, warnings: report.warnings };
        return Err(format_report(path, &r));
    }
    let mut s = format!("{}: OK (server_name {})\n", path.display(), config.server_name);
    for w in &report.warnings {
        s.push_str(&format!("  warning: {w}\n"));
    }
    Ok(s)
}
