//! Push rules (spec: client-server API, "Push Rules: API"; sytest 61push/): the server's
//! default ruleset and the lifecycle of a user-defined rule.

use glia_harness::client::Body;
use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

use crate::{cs, server_name};

const KINDS: [&str; 5] = ["override", "content", "room", "sender", "underride"];

fn rule_path<'a>(kind: &'a str, rule_id: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut p = cs(&["pushrules", "global", kind, rule_id]);
    p.extend_from_slice(rest);
    p
}

fn find<'v>(ruleset: &'v Value, kind: &str, rule_id: &str) -> Option<&'v Value> {
    ruleset[kind].as_array()?.iter().find(|r| r["rule_id"] == rule_id)
}

async fn all_rules(c: &Client) -> Value {
    let body = c.get(&cs(&["pushrules", ""])).await.must_status(200);
    assert!(body["global"].is_object(), "no global ruleset: {body}");
    body["global"].clone()
}

/// GET /pushrules/ returns the global ruleset with every kind, and the spec's defaults.
#[tokio::test]
async fn test_push_rules_defaults() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let global = all_rules(&alice).await;
    for kind in KINDS {
        let rules =
            global[kind].as_array().unwrap_or_else(|| panic!("{kind} is an array: {global}"));
        for r in rules {
            assert!(r["rule_id"].is_string(), "{kind} rule without rule_id: {r}");
            assert!(r["default"].is_boolean(), "{kind} rule without default: {r}");
            assert!(r["enabled"].is_boolean(), "{kind} rule without enabled: {r}");
            assert!(r["actions"].is_array(), "{kind} rule without actions: {r}");
        }
    }

    let master = find(&global, "override", ".m.rule.master")
        .unwrap_or_else(|| panic!("no master rule: {global}"));
    assert_eq!(master["default"], true, "{master}");
    assert_eq!(master["enabled"], false, "the master rule is disabled by default: {master}");
    assert_eq!(master["actions"], json!([]), "{master}");
    assert_eq!(
        global["override"][0]["rule_id"], ".m.rule.master",
        "the master rule comes before every other override rule: {global}"
    );
    let message = find(&global, "underride", ".m.rule.message")
        .unwrap_or_else(|| panic!("no message rule: {global}"));
    assert_eq!(message["default"], true, "{message}");
    assert_eq!(message["enabled"], true, "{message}");
    assert!(
        message["actions"].as_array().is_some_and(|a| a.contains(&json!("notify"))),
        "{message}"
    );
    for id in [".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event"] {
        assert!(find(&global, "override", id).is_some(), "no {id} override rule: {global}");
    }

    // The same ruleset under /pushrules/global/, one kind, one rule.
    let scoped = alice.get(&cs(&["pushrules", "global", ""])).await.must_status(200);
    assert_eq!(scoped, global);
    let kind = alice.get(&cs(&["pushrules", "global", "underride", ""])).await.must_status(200);
    assert_eq!(kind, global["underride"]);
    let one = alice.get(&rule_path("override", ".m.rule.master", &[])).await.must_status(200);
    assert_eq!(&one, master);
    let enabled =
        alice.get(&rule_path("override", ".m.rule.master", &["enabled"])).await.must_status(200);
    assert_eq!(enabled, json!({"enabled": false}));
    let actions =
        alice.get(&rule_path("underride", ".m.rule.message", &["actions"])).await.must_status(200);
    assert_eq!(actions["actions"], message["actions"]);
    d.destroy().await;
}

/// A room rule: created enabled, disabled, given new actions, deleted.
#[tokio::test]
async fn test_push_rules_room_rule_lifecycle() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room_id = format!("!pushroom:{}", server_name(&alice.user_id));
    let rule = rule_path("room", &room_id, &[]);
    let enabled = rule_path("room", &room_id, &["enabled"]);
    let actions = rule_path("room", &room_id, &["actions"]);

    alice.get(&rule).await.must_error(404, "M_NOT_FOUND");
    alice.request("PUT", &rule, json!({"actions": ["notify"]})).await.must_status(200);

    let global = all_rules(&alice).await;
    let r =
        find(&global, "room", &room_id).unwrap_or_else(|| panic!("new room rule listed: {global}"));
    assert_eq!(r["enabled"], true, "rules are created enabled: {r}");
    assert_eq!(r["default"], false, "{r}");
    assert_eq!(r["actions"], json!(["notify"]), "{r}");
    let got = alice.get(&rule).await.must_status(200);
    assert_eq!(got["rule_id"], room_id.as_str(), "{got}");
    assert_eq!(got["actions"], json!(["notify"]), "{got}");
    assert_eq!(alice.get(&enabled).await.must_status(200), json!({"enabled": true}));

    // Disable it.
    alice.request("PUT", &enabled, json!({"enabled": false})).await.must_status(200);
    assert_eq!(alice.get(&enabled).await.must_status(200), json!({"enabled": false}));
    let global = all_rules(&alice).await;
    assert_eq!(
        find(&global, "room", &room_id).map(|r| &r["enabled"]),
        Some(&json!(false)),
        "{global}"
    );

    // New actions.
    let new_actions = json!(["notify", {"set_tweak": "sound", "value": "default"}]);
    alice.request("PUT", &actions, json!({"actions": new_actions})).await.must_status(200);
    assert_eq!(alice.get(&actions).await.must_status(200), json!({"actions": new_actions}));
    let got = alice.get(&rule).await.must_status(200);
    assert_eq!(got["actions"], new_actions, "{got}");
    assert_eq!(got["enabled"], false, "changing actions keeps the rule disabled: {got}");

    // Delete it: gone from every view.
    alice.request("DELETE", &rule, Body::None).await.must_status(200);
    alice.get(&rule).await.must_error(404, "M_NOT_FOUND");
    alice.get(&enabled).await.must_error(404, "M_NOT_FOUND");
    let global = all_rules(&alice).await;
    assert!(find(&global, "room", &room_id).is_none(), "deleted rule still listed: {global}");
    alice.request("DELETE", &rule, Body::None).await.must_error(404, "M_NOT_FOUND");
    // Attributes of a rule that does not exist cannot be set either.
    alice.request("PUT", &enabled, json!({"enabled": true})).await.must_error(404, "M_NOT_FOUND");
    alice
        .request("PUT", &actions, json!({"actions": ["notify"]}))
        .await
        .must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// Server-default rules can be toggled but not deleted or shadowed; bad requests are 4xx.
#[tokio::test]
async fn test_push_rules_errors() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room_id = format!("!pushroom:{}", server_name(&alice.user_id));
    let master = rule_path("override", ".m.rule.master", &[]);

    // Deleting a server-default rule fails (Glia: 400; Synapse: 404, as it only looks among
    // the user's own rules) and the rule stays.
    let r = alice.request("DELETE", &master, Body::None).await;
    r.must_client_error();
    alice.get(&master).await.must_status(200);
    // It can be enabled, though, and disabled again.
    let master_enabled = rule_path("override", ".m.rule.master", &["enabled"]);
    alice.request("PUT", &master_enabled, json!({"enabled": true})).await.must_status(200);
    assert_eq!(alice.get(&master_enabled).await.must_status(200), json!({"enabled": true}));
    alice.request("PUT", &master_enabled, json!({"enabled": false})).await.must_status(200);
    assert_eq!(alice.get(&master_enabled).await.must_status(200), json!({"enabled": false}));

    // A new rule ID must not start with a dot (reserved for server-default rules).
    let dotted = rule_path("override", ".org.example.mine", &[]);
    let r = alice.request("PUT", &dotted, json!({"conditions": [], "actions": ["notify"]})).await;
    r.must_client_error();
    assert_eq!(r.status, 400, "{}: {}", r.what, r.text());

    // `before`/`after` naming a rule that does not exist, or a server-default rule.
    let rule = rule_path("room", &room_id, &[]);
    for q in [
        "?before=!nosuchroom:example.org",
        "?after=!nosuchroom:example.org",
        "?after=.m.rule.master",
    ] {
        let mut p = rule.clone();
        p.push(q);
        let r = alice.request("PUT", &p, json!({"actions": ["notify"]})).await;
        r.must_client_error();
        assert_eq!(r.status, 400, "{}: {}", r.what, r.text());
    }
    let global = all_rules(&alice).await;
    assert!(find(&global, "room", &room_id).is_none(), "a refused rule was stored: {global}");

    // Unknown kinds.
    let r = alice
        .request("PUT", &rule_path("nonsense", "my.rule", &[]), json!({"actions": ["notify"]}))
        .await;
    r.must_client_error();
    assert_eq!(r.status, 400, "{}: {}", r.what, r.text());
    let r = alice.get(&cs(&["pushrules", "global", "nonsense", ""])).await;
    r.must_client_error();
    assert_eq!(r.status, 400, "{}: {}", r.what, r.text());

    // Rules need actions.
    let r = alice.request("PUT", &rule, json!({})).await;
    r.must_client_error();
    assert_eq!(r.status, 400, "{}: {}", r.what, r.text());
    // Unknown rules are not found.
    alice.get(&rule_path("override", "org.example.nope", &[])).await.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

fn room_rule_ids(global: &Value) -> Vec<String> {
    global["room"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["rule_id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// New rules come first; `before`/`after` place them; rule IDs of room rules need not be
/// room IDs (SyTest 61push/02add_rules uses aliases); such rules can be disabled and deleted.
#[tokio::test]
async fn test_push_rules_order_before_after() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let put = |id: &'static str, query: Option<&'static str>| {
        let mut p = rule_path("room", id, &[]);
        p.extend(query);
        let alice = &alice;
        async move {
            alice.request("PUT", &p, json!({"actions": ["notify"]})).await.must_status(200);
        }
    };
    put("#a:example.com", None).await;
    put("#b:example.com", None).await;
    assert_eq!(room_rule_ids(&all_rules(&alice).await), ["#b:example.com", "#a:example.com"]);
    put("#c:example.com", Some("?before=%23a:example.com")).await;
    put("#d:example.com", Some("?after=%23b:example.com")).await;
    assert_eq!(
        room_rule_ids(&all_rules(&alice).await),
        ["#b:example.com", "#d:example.com", "#c:example.com", "#a:example.com"]
    );
    let enabled = rule_path("room", "#c:example.com", &["enabled"]);
    alice.request("PUT", &enabled, json!({"enabled": false})).await.must_status(200);
    assert_eq!(alice.get(&enabled).await.must_status(200), json!({"enabled": false}));
    let rule = rule_path("room", "#a:example.com", &[]);
    alice.request("DELETE", &rule, Body::None).await.must_status(200);
    assert_eq!(
        room_rule_ids(&all_rules(&alice).await),
        ["#b:example.com", "#d:example.com", "#c:example.com"]
    );
    d.destroy().await;
}

/// Paths that name no rule are 400 M_UNRECOGNIZED, as are unknown attributes and actions
/// the spec does not define; GET without the trailing slash is not a route at all.
#[tokio::test]
async fn test_push_rules_bad_paths() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let body = json!({"actions": ["notify"]});
    for path in [
        vec![""],
        vec!["global"],
        vec!["global", "room"],
        vec!["global", "room", ""],
        vec!["global", "override", ".m.rule.master", "not_an_attr"],
    ] {
        let mut p = cs(&["pushrules"]);
        p.extend(path);
        let r = alice.request("PUT", &p, body.clone()).await;
        r.must_error(400, "M_UNRECOGNIZED");
    }
    for path in [
        vec!["global"],
        vec!["global", "room"],
        vec!["not_a_scope", ""],
        vec!["global", "not_a_kind", ""],
        vec!["global", "override", ".m.rule.master", "not_an_attr"],
    ] {
        let mut p = cs(&["pushrules"]);
        p.extend(path);
        alice.get(&p).await.must_error(400, "M_UNRECOGNIZED");
    }
    alice.get(&cs(&["pushrules"])).await.must_status(404);
    let r = alice
        .request(
            "PUT",
            &rule_path("room", "#my_room:example.com", &[]),
            json!({"actions": ["not_an_action"]}),
        )
        .await;
    r.must_client_error();
    assert_eq!(r.status, 400, "{}: {}", r.what, r.text());
    d.destroy().await;
}
