//! State resolution speed: each hand-built conflict of `fixtures/state-res/` and the
//! generated room of 10,000 members with competing power-level and membership forks.
//!
//!     cargo bench -p glia --bench state_res

#[path = "../tests/support/state_res_fixtures.rs"]
mod fixtures;

use criterion::{Criterion, criterion_group, criterion_main};
use glia::rooms::resolve::resolve_with;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("state_res");
    for f in fixtures::all() {
        let fetch = f.fetch();
        group.bench_function(f.name.trim_end_matches(".json"), |b| {
            b.iter(|| resolve_with(&f.rules, &f.forks, &fetch).expect("resolve"))
        });
    }
    let big = fixtures::generated(10_000);
    let fetch = big.fetch();
    group.sample_size(10);
    group.bench_function("generated_10k_members", |b| {
        b.iter(|| resolve_with(&big.rules, &big.forks, &fetch).expect("resolve"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
