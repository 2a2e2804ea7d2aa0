//! State resolution speed: each hand-built conflict of `fixtures/state-res/` and the
//! generated room of 10,000 members with competing power-level and membership forks.
//!
//!     cargo bench -p glia --bench state_res

#[path = "../tests/support/state_res_fixtures.rs"]
mod fixtures;

use criterion::{Criterion, criterion_group, criterion_main};
use glia::rooms::resolve::{resolve_ordered, resolve_with};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("state_res");
    // `walk`: the auth difference from the ordered walk, as the server resolves;
    // `full_chains`: from every state's whole auth chain (what rooms without a sound order
    // fall back to).
    for f in fixtures::all() {
        let (fetch, order) = (f.fetch(), f.order());
        let name = f.name.trim_end_matches(".json");
        group.bench_function(format!("{name}/walk"), |b| {
            b.iter(|| resolve_ordered(&f.rules, &f.forks, &fetch, Some(&order)).expect("resolve"))
        });
        group.bench_function(format!("{name}/full_chains"), |b| {
            b.iter(|| resolve_with(&f.rules, &f.forks, &fetch).expect("resolve"))
        });
    }
    let big = fixtures::generated(10_000);
    let (fetch, order) = (big.fetch(), big.order());
    group.sample_size(10);
    group.bench_function("generated_10k_members/walk", |b| {
        b.iter(|| resolve_ordered(&big.rules, &big.forks, &fetch, Some(&order)).expect("resolve"))
    });
    group.bench_function("generated_10k_members/full_chains", |b| {
        b.iter(|| resolve_with(&big.rules, &big.forks, &fetch).expect("resolve"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
