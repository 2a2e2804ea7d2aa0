//! State resolution on the fixtures of `fixtures/state-res/` and on a generated room of
//! 10,000 members with competing forks: Glia's resolution (ruma's v2 algorithm over
//! Glia's events) must produce exactly the expected state, whichever order the forks
//! come in, and whether the auth difference comes from the full chains or the ordered walk.

#[path = "support/state_res_fixtures.rs"]
mod fixtures;

use glia::rooms::resolve::{resolve_ordered, resolve_with};

fn check(f: &fixtures::Fixture) {
    let fetch = f.fetch();
    let expected = f.expected_state();
    let forward = resolve_with(&f.rules, &f.forks, &fetch).expect("resolve");
    assert_eq!(forward, expected, "{}: resolved state differs", f.name);
    let mut reversed = f.forks.clone();
    reversed.reverse();
    let backward = resolve_with(&f.rules, &reversed, &fetch).expect("resolve");
    assert_eq!(backward, expected, "{}: depends on fork order", f.name);
    // As the server resolves: the auth difference from the ordered walk.
    let order = f.order();
    let walked = resolve_ordered(&f.rules, &f.forks, &fetch, Some(&order)).expect("resolve");
    assert_eq!(walked, expected, "{}: the ordered walk differs", f.name);
}

#[test]
fn hand_built_conflicts() {
    let all = fixtures::all();
    assert!(all.len() >= 4, "fixtures missing");
    for f in &all {
        check(f);
    }
}

#[test]
fn generated_room_of_10k_members() {
    check(&fixtures::generated(10_000));
}
