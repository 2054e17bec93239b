//! `exemplar_kernels::join_thread_pool`: the calling thread becomes thread 0 of rayon's global
//! pool, so that parallel work it starts runs beside it, and a second call is refused.
//!
//! One test in its own file: the global pool is built once per process.

#[test]
fn the_calling_thread_joins_the_global_pool_once() {
    assert_eq!(rayon::current_thread_index(), None);
    exemplar_kernels::join_thread_pool().expect("the first call builds the pool");
    assert_eq!(rayon::current_thread_index(), Some(0));
    // Work forked here is taken up by the pool while this thread takes part.
    let caller = std::thread::current().id();
    let (here, total) = rayon::join(|| std::thread::current().id(), || (0..1000u64).sum::<u64>());
    assert_eq!(
        here, caller,
        "the first half of a join runs on the calling thread"
    );
    assert_eq!(total, 499_500);
    assert!(
        exemplar_kernels::join_thread_pool().is_err(),
        "a second call is refused"
    );
}
