//! The memory allocator of every program that links this crate: mimalloc, told to keep the
//! memory it frees ([`keep_freed_memory`]).
//!
//! A training step allocates and frees a tensor per operation, megabytes each, and the next step
//! asks for the same sizes again. The system allocator maps and unmaps each large block, and
//! every unmap interrupts the other cores to flush their TLBs (in a VM, an exit per interrupt):
//! on the layer-4 weight gradient of a ResNet-18 (512 channels, 2×2 maps, batch 32) that cost
//! 49 ms of a 54 ms call. mimalloc reuses freed blocks, but by default it still hands memory
//! left free for a second back to the system, and taking it again costs a page fault and a
//! zeroed (often 2 MiB) page: about 2200 faults and a tenth of each step of a quarter-width
//! ResNet-18 at 64 px. Measured in results/train-throughput-cpu.md.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v3's `mi_option_purge_delay` (its `mimalloc.h` enum; the Rust bindings do not name
/// it): milliseconds before freed memory is returned to the system, -1 for never.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory in the process for reuse, for the rest of its life: a training process
/// peaks at the same size every step, so what it frees it needs again. An explicit
/// `MIMALLOC_PURGE_DELAY` in the environment is left in force.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mimalloc's options may be set at any time from any thread.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_named() {
        // mimalloc v3's default purge delay is 1000 ms: reading it back through the index
        // checks that the index names that option.
        // SAFETY: reading an option is always allowed.
        let default = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(default, 1000);
        }
    }
}
