//! `GLIA_*` environment variables, the container-friendly equivalents of the command-line
//! options (like Synapse's image reads `SYNAPSE_SERVER_NAME`). An option given on the
//! command line wins over the variable.

use std::net::IpAddr;
use std::path::PathBuf;

use super::generate::Options;

/// A non-empty variable as a path.
pub fn path(var: &str) -> Option<PathBuf> {
    non_empty(var).map(PathBuf::from)
}

fn non_empty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// `glia generate`'s options, each from its flag or else its variable.
pub fn generate_options(
    server_name: Option<String>,
    data_dir: Option<PathBuf>,
    config_path: Option<PathBuf>,
    http_port: Option<u16>,
    bind_addresses: Vec<IpAddr>,
) -> Result<Options, String> {
    let lookup = |k: &str| non_empty(k);
    options_from(server_name, data_dir, config_path, http_port, bind_addresses, lookup)
}

fn options_from(
    server_name: Option<String>,
    data_dir: Option<PathBuf>,
    config_path: Option<PathBuf>,
    http_port: Option<u16>,
    bind_addresses: Vec<IpAddr>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Options, String> {
    let server_name = server_name
        .or_else(|| env("GLIA_SERVER_NAME"))
        .ok_or("a server name is needed: pass --server-name or set GLIA_SERVER_NAME".to_string())?;
    let data_dir = data_dir
        .or_else(|| env("GLIA_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("glia-data"));
    let mut opts = Options::new(&server_name, &data_dir);
    opts.config_path = config_path.or_else(|| env("GLIA_CONFIG_PATH").map(PathBuf::from));
    if let Some(p) = http_port {
        opts.http_port = p;
    } else if let Some(v) = env("GLIA_HTTP_PORT") {
        opts.http_port =
            v.trim().parse().map_err(|_| format!("GLIA_HTTP_PORT={v:?} is not a port number"))?;
    }
    if !bind_addresses.is_empty() {
        opts.bind_addresses = bind_addresses;
    } else if let Some(v) = env("GLIA_BIND_ADDRESSES") {
        opts.bind_addresses = v
            .split(',')
            .map(|a| {
                a.trim()
                    .parse()
                    .map_err(|_| format!("GLIA_BIND_ADDRESSES: {a:?} is not an IP address"))
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn variables_fill_missing_flags() {
        let vars = [
            ("GLIA_SERVER_NAME", "example.org"),
            ("GLIA_DATA_DIR", "/data"),
            ("GLIA_CONFIG_PATH", "/conf/hs.yaml"),
            ("GLIA_HTTP_PORT", "8118"),
            ("GLIA_BIND_ADDRESSES", "0.0.0.0, ::"),
        ];
        let o = options_from(None, None, None, None, vec![], env(&vars)).expect("options");
        assert_eq!(o.server_name, "example.org");
        assert_eq!(o.data_dir, PathBuf::from("/data"));
        assert_eq!(o.config_path, Some(PathBuf::from("/conf/hs.yaml")));
        assert_eq!(o.http_port, 8118);
        assert_eq!(o.bind_addresses.len(), 2);
    }

    #[test]
    fn flags_win_over_variables() {
        let vars = [("GLIA_SERVER_NAME", "env.org"), ("GLIA_HTTP_PORT", "1")];
        let o = options_from(Some("flag.org".into()), None, None, Some(2), vec![], env(&vars))
            .expect("options");
        assert_eq!((o.server_name.as_str(), o.http_port), ("flag.org", 2));
        assert_eq!(o.data_dir, PathBuf::from("glia-data"));
    }

    #[test]
    fn bad_or_missing_values_are_named() {
        let e = options_from(None, None, None, None, vec![], env(&[])).expect_err("no name");
        assert!(e.contains("GLIA_SERVER_NAME"), "{e}");
        let vars = [("GLIA_SERVER_NAME", "a.b"), ("GLIA_HTTP_PORT", "eighty")];
        let e = options_from(None, None, None, None, vec![], env(&vars)).expect_err("port");
        assert!(e.contains("GLIA_HTTP_PORT"), "{e}");
        let vars = [("GLIA_SERVER_NAME", "a.b"), ("GLIA_BIND_ADDRESSES", "everywhere")];
        let e = options_from(None, None, None, None, vec![], env(&vars)).expect_err("addr");
        assert!(e.contains("GLIA_BIND_ADDRESSES"), "{e}");
    }
}
