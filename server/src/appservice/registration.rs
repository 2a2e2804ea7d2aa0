//! Appservice registration files (`app_service_config_files`): the YAML every bridge
//! generates. A bad file stops start-up with a message naming the file and the key.

use std::path::Path;

use regex::Regex;
use serde_yaml_ng::Value;

/// One namespace entry: a regex over user IDs, room aliases or room IDs.
#[derive(Debug, Clone)]
pub struct Namespace {
    pub regex: Regex,
    pub exclusive: bool,
}

impl Namespace {
    pub fn matches(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

/// A parsed registration.
#[derive(Debug, Clone)]
pub struct Registration {
    pub id: String,
    /// `None` (`url: null`): the appservice receives no traffic.
    pub url: Option<String>,
    pub as_token: String,
    pub hs_token: String,
    pub sender_localpart: String,
    pub users: Vec<Namespace>,
    pub aliases: Vec<Namespace>,
    pub rooms: Vec<Namespace>,
    pub rate_limited: bool,
    pub protocols: Vec<String>,
    /// `receive_ephemeral` (or MSC2409's `de.sorunome.msc2409.push_ephemeral`).
    pub receive_ephemeral: bool,
    /// MSC4203's `org.matrix.msc4203.receive_to_device` (or MSC2409's
    /// `de.sorunome.msc2409.push_to_device`... Synapse's naming).
    pub receive_to_device: bool,
}

/// Parse one registration; errors name the key (`namespaces.users[0].regex: ...`).
pub fn parse(text: &str) -> Result<Registration, Vec<String>> {
    let root: Value =
        serde_yaml_ng::from_str(text).map_err(|e| vec![format!("not valid YAML: {e}")])?;
    let Value::Mapping(map) = root else {
        return Err(vec!["the top level must be a mapping of keys".into()]);
    };
    let mut errors = vec![];
    let get = |k: &str| map.get(Value::String(k.into()));
    let string = |k: &str, required: bool, errors: &mut Vec<String>| match get(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Null) | None if !required => None,
        None | Some(Value::Null) => {
            errors.push(format!("{k}: is required"));
            None
        }
        Some(_) => {
            errors.push(format!("{k}: must be a non-empty string"));
            None
        }
    };
    let id = string("id", true, &mut errors);
    let url = string("url", false, &mut errors);
    let as_token = string("as_token", true, &mut errors);
    let hs_token = string("hs_token", true, &mut errors);
    let sender_localpart = string("sender_localpart", true, &mut errors);
    if let Some(u) = &url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        errors.push(format!("url: {u:?} must start with http:// or https://"));
    }
    let flag = |k: &str, default: bool, errors: &mut Vec<String>| match get(k) {
        None | Some(Value::Null) => default,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(format!("{k}: must be true or false"));
            default
        }
    };
    let rate_limited = flag("rate_limited", true, &mut errors);
    let receive_ephemeral = flag("receive_ephemeral", false, &mut errors)
        || flag("de.sorunome.msc2409.push_ephemeral", false, &mut errors);
    let receive_to_device = flag("org.matrix.msc4203.receive_to_device", false, &mut errors)
        || flag("de.sorunome.msc2409.push_to_device", false, &mut errors);
    let mut protocols = vec![];
    match get("protocols") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) => {
            for (i, v) in items.iter().enumerate() {
                match v.as_str() {
                    Some(s) => protocols.push(s.to_string()),
                    None => errors.push(format!("protocols[{i}]: must be a string")),
                }
            }
        }
        Some(_) => errors.push("protocols: must be a list of strings".into()),
    }
    let (mut users, mut aliases, mut rooms) = (vec![], vec![], vec![]);
    match get("namespaces") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(ns)) => {
            for (kind, out) in
                [("users", &mut users), ("aliases", &mut aliases), ("rooms", &mut rooms)]
            {
                match ns.get(Value::String(kind.into())) {
                    None | Some(Value::Null) => {}
                    Some(Value::Sequence(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            match namespace(item) {
                                Ok(n) => out.push(n),
                                Err(e) => errors.push(format!("namespaces.{kind}[{i}].{e}")),
                            }
                        }
                    }
                    Some(_) => errors.push(format!("namespaces.{kind}: must be a list")),
                }
            }
        }
        Some(_) => errors.push("namespaces: must be a mapping".into()),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    match (id, as_token, hs_token, sender_localpart) {
        (Some(id), Some(as_token), Some(hs_token), Some(sender_localpart)) => Ok(Registration {
            id,
            url,
            as_token,
            hs_token,
            sender_localpart,
            users,
            aliases,
            rooms,
            rate_limited,
            protocols,
            receive_ephemeral,
            receive_to_device,
        }),
        _ => Err(vec!["incomplete registration".into()]),
    }
}

/// `{regex: ..., exclusive: ...}`; the error starts with the key it is about.
fn namespace(item: &Value) -> Result<Namespace, String> {
    let Value::Mapping(m) = item else { return Err("regex: the entry must be a mapping".into()) };
    let exclusive = match m.get(Value::String("exclusive".into())) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("exclusive: must be true or false".into()),
    };
    let pattern = match m.get(Value::String("regex".into())) {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => return Err("regex: is required".into()),
        Some(_) => return Err("regex: must be a string".into()),
    };
    // Anchored at the start only, like Python's re.match in Synapse: bridges' registrations
    // are written for that (`@bridge_.*` without a trailing `$`).
    let regex = Regex::new(&format!("^(?:{pattern})"))
        .map_err(|e| format!("regex: {pattern:?} is not a valid regular expression: {e}"))?;
    Ok(Namespace { regex, exclusive })
}

/// Load every file; each error is `<file>: <key>: <problem>`. IDs and as_tokens must be
/// unique across files (a token names one appservice).
pub fn load_all(paths: &[std::path::PathBuf]) -> Result<Vec<Registration>, Vec<String>> {
    let mut regs: Vec<Registration> = vec![];
    let mut errors = vec![];
    for (i, path) in paths.iter().enumerate() {
        let key = format!("app_service_config_files[{i}] ({})", path.display());
        match load(path) {
            Ok(r) => {
                if regs.iter().any(|o| o.id == r.id) {
                    errors.push(format!("{key}: id: {:?} is used by another appservice", r.id));
                } else if regs.iter().any(|o| o.as_token == r.as_token) {
                    errors.push(format!("{key}: as_token: is used by another appservice"));
                } else {
                    regs.push(r);
                }
            }
            Err(es) => errors.extend(es.into_iter().map(|e| format!("{key}: {e}"))),
        }
    }
    if errors.is_empty() { Ok(regs) } else { Err(errors) }
}

fn load(path: &Path) -> Result<Registration, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("cannot read it: {e}")])?;
    parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "id: irc\nurl: http://127.0.0.1:9000\nas_token: a\nhs_token: h\n\
        sender_localpart: ircbot\nnamespaces:\n  users:\n    - exclusive: true\n      regex: '@irc_.*'\n\
        \x20 aliases:\n    - {exclusive: false, regex: '#irc_.*'}\n\
        protocols: [irc]\nrate_limited: false\nde.sorunome.msc2409.push_ephemeral: true\n";

    #[test]
    fn a_bridge_registration_parses() {
        let r = parse(GOOD).expect("valid");
        assert_eq!((r.id.as_str(), r.sender_localpart.as_str()), ("irc", "ircbot"));
        assert_eq!(r.url.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(r.users[0].exclusive && r.users[0].matches("@irc_bob:example.org"));
        assert!(!r.users[0].matches("@bob:example.org"));
        assert!(!r.users[0].matches("@x@irc_bob:example.org"), "anchored at the start");
        assert!(!r.aliases[0].exclusive);
        assert_eq!(r.protocols, vec!["irc"]);
        assert!(!r.rate_limited && r.receive_ephemeral);
    }

    #[test]
    fn url_may_be_null() {
        let r = parse(&GOOD.replace("url: http://127.0.0.1:9000", "url: null")).expect("valid");
        assert_eq!(r.url, None);
    }

    #[test]
    fn every_bad_key_is_named() {
        let bad = "id: x\nurl: ftp://x\nhs_token: 7\nsender_localpart: ''\n\
            namespaces:\n  users:\n    - {exclusive: maybe, regex: 'a'}\n    - {regex: '@(unclosed'}\n\
            \x20 rooms: 5\nrate_limited: sometimes\n";
        let errors = parse(bad).expect_err("invalid");
        for key in [
            "as_token: is required",
            "url:",
            "sender_localpart:",
            "namespaces.users[0].exclusive",
            "namespaces.users[1].regex",
            "namespaces.rooms:",
            "rate_limited:",
        ] {
            assert!(errors.iter().any(|e| e.starts_with(key)), "{key} not in {errors:?}");
        }
    }

    #[test]
    fn files_are_named_and_duplicates_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.yaml");
        std::fs::write(&good, GOOD).expect("write");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, GOOD.replace("'@irc_.*'", "'@irc_[.*'")).expect("write");
        let errors = load_all(&[good.clone(), bad.clone()]).expect_err("bad regex");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("bad.yaml") && errors[0].contains("namespaces.users[0].regex"));
        let errors = load_all(&[good.clone(), good.clone()]).expect_err("same id twice");
        assert!(errors[0].contains("app_service_config_files[1]") && errors[0].contains("id:"));
        assert_eq!(load_all(&[good]).expect("one").len(), 1);
    }
}
