//! The memory allocator of every program that links this crate: mimalloc.
//!
//! A training step allocates and frees a tensor per operation, megabytes each, and the next step
//! asks for the same sizes again. The system allocator maps and unmaps each large block, and
//! every unmap interrupts the other cores to flush their TLBs (in a VM, an exit per interrupt):
//! on the layer-4 weight gradient of a ResNet-18 (512 channels, 2×2 maps, batch 32) that cost
//! 49 ms of a 54 ms call. mimalloc keeps freed memory for reuse (its default purge delay is one
//! second, longer than a step). Measured in results/train-throughput-cpu.md.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
