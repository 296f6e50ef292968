//! How the large blocks a training step frees come back the next step.
//!
//! A step frees and reallocates the same activation and gradient buffers, tens of MiB each at
//! 640² and batch 8. glibc serves a block over its mmap threshold (128 KiB, rising with use to
//! at most 32 MiB) with a mapping of its own and unmaps it when freed, so every such buffer
//! came back as fresh pages: a page fault per 4 KiB, zeroing, and TLB shootdowns across the
//! rayon threads. In a virtual machine that costs more than the arithmetic: a fused batch norm
//! over a 52 MB map took 60 ms inside a step and 20 ms alone.
//!
//! [`keep_freed_memory`], called when training starts, does two things: it raises glibc's
//! thresholds so blocks up to 32 MiB are recycled in its heap, and it turns on [`BlockCache`],
//! the process's allocator, which keeps freed blocks above that (up to a cap) for the next
//! request of the same size. Until then the cache passes every call straight to the system
//! allocator. [`release_cached_memory`], called when a training ends, gives the cached blocks
//! and glibc's free heap back. (No allocator crate with such a cache, mimalloc or jemalloc, is
//! available to this build.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Blocks from this size up are cached; smaller ones are glibc's to recycle.
const CACHED_FROM: usize = 16 << 20;
/// Cached blocks at most.
const SLOTS: usize = 64;

#[global_allocator]
static ALLOCATOR: BlockCache = BlockCache::new();

/// Keeps freed memory for reuse from now on (see the module's documentation).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // The largest threshold glibc accepts (half its 64 MiB heap size on 64-bit).
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        // SAFETY: mallopt only sets allocator parameters; it takes the allocator's own lock, and
        // a value it refuses is left as it was (return value 0).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }
    ALLOCATOR.enable(cache_cap());
}

/// Gives the cached blocks and glibc's free heap back to the system when a training ends (the
/// cache stays on for the next one), so a studio that trained keeps no more than it uses.
pub fn release_cached_memory() {
    ALLOCATOR.release();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What the cache may hold: 2 GiB, or an eighth of the machine's memory if that is less.
fn cache_cap() -> usize {
    let cap = 2usize << 30;
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads system parameters.
        let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
        if pages > 0 && page > 0 {
            return cap.min((pages as usize).saturating_mul(page as usize) / 8);
        }
    }
    cap
}

#[derive(Clone, Copy)]
struct Slot {
    ptr: usize,
    size: usize,
    align: usize,
    /// When it was kept: the oldest block is given back first.
    age: usize,
}

const EMPTY: Slot = Slot { ptr: 0, size: 0, align: 0, age: 0 };

/// The system allocator with a cache of large freed blocks, matched by exact size and
/// alignment. The cache is a fixed array behind a spin lock: the allocator cannot allocate for
/// itself, and large blocks are few (hundreds a step), so the lock is rarely contended.
pub struct BlockCache {
    enabled: AtomicBool,
    cap: AtomicUsize,
    lock: AtomicBool,
    age: AtomicUsize,
    slots: std::cell::UnsafeCell<[Slot; SLOTS]>,
    /// Bytes held in `slots`; only changed under the lock.
    held: std::cell::UnsafeCell<usize>,
}

// SAFETY: `slots` and `held` are only touched while `lock` is held.
unsafe impl Sync for BlockCache {}

impl BlockCache {
    const fn new() -> BlockCache {
        BlockCache {
            enabled: AtomicBool::new(false),
            cap: AtomicUsize::new(0),
            lock: AtomicBool::new(false),
            age: AtomicUsize::new(0),
            slots: std::cell::UnsafeCell::new([EMPTY; SLOTS]),
            held: std::cell::UnsafeCell::new(0),
        }
    }

    fn enable(&self, cap: usize) {
        self.cap.store(cap, Ordering::Relaxed);
        self.enabled.store(true, Ordering::Release);
    }

    /// Frees every cached block.
    fn release(&self) {
        loop {
            let block = self.locked(|slots, held| {
                let slot = slots.iter_mut().find(|s| s.ptr != 0)?;
                let block = *slot;
                *slot = EMPTY;
                *held -= block.size;
                Some(block)
            });
            let Some(block) = block else { return };
            // SAFETY: the block came from `System` with the size and alignment it was kept with.
            unsafe { System.dealloc(block.ptr as *mut u8, Layout::from_size_align_unchecked(block.size, block.align)) };
        }
    }

    fn caches(&self, layout: &Layout) -> bool {
        layout.size() >= CACHED_FROM && self.enabled.load(Ordering::Acquire)
    }

    /// Runs `f` on the slots and the bytes they hold, under the lock.
    fn locked<R>(&self, f: impl FnOnce(&mut [Slot; SLOTS], &mut usize) -> R) -> R {
        let mut spins = 0u32;
        while self.lock.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            // A holder preempted on a 2-core machine would otherwise cost a whole time slice.
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // SAFETY: the lock is held, so no other reference to the slots or the count exists.
        let result = unsafe { f(&mut *self.slots.get(), &mut *self.held.get()) };
        self.lock.store(false, Ordering::Release);
        result
    }

    /// A cached block of exactly this layout, taken out of the cache.
    fn take(&self, layout: &Layout) -> Option<*mut u8> {
        self.locked(|slots, held| {
            let slot = slots.iter_mut().find(|s| s.ptr != 0 && s.size == layout.size() && s.align == layout.align())?;
            let ptr = slot.ptr as *mut u8;
            *held -= slot.size;
            *slot = EMPTY;
            Some(ptr)
        })
    }

    /// Keeps the block if it fits under the cap, after taking the oldest blocks out to make
    /// room; returns one block to give back to the system (an evicted one, or this one when it
    /// cannot be kept). The caller frees it outside the lock and asks again.
    fn keep(&self, block: Slot) -> Option<Slot> {
        let cap = self.cap.load(Ordering::Relaxed);
        if block.size > cap {
            return Some(block);
        }
        self.locked(|slots, held| {
            let free = slots.iter().position(|s| s.ptr == 0);
            if let (Some(free), true) = (free, *held + block.size <= cap) {
                let age = self.age.fetch_add(1, Ordering::Relaxed);
                slots[free] = Slot { age, ..block };
                *held += block.size;
                return None;
            }
            let oldest = slots.iter_mut().filter(|s| s.ptr != 0).min_by_key(|s| s.age)?;
            let evicted = *oldest;
            *oldest = EMPTY;
            *held -= evicted.size;
            Some(evicted)
        })
    }
}

unsafe impl GlobalAlloc for BlockCache {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.caches(&layout)
            && let Some(ptr) = self.take(&layout)
        {
            return ptr;
        }
        // SAFETY: forwarded with the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if self.caches(&layout)
            && let Some(ptr) = self.take(&layout)
        {
            // SAFETY: the block is `layout.size()` bytes, owned by the caller from now on.
            unsafe { std::ptr::write_bytes(ptr, 0, layout.size()) };
            return ptr;
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let cached = |size| size >= CACHED_FROM && self.enabled.load(Ordering::Acquire);
        if !cached(layout.size()) && !cached(new_size) {
            // SAFETY: forwarded as received; the block is the system's (it was never cached).
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: GlobalAlloc's contract for alloc and dealloc, with the layouts they were made with.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.caches(&layout) {
            // SAFETY: `ptr` came from `System` with this layout (cached blocks are too).
            return unsafe { System.dealloc(ptr, layout) };
        }
        let block = Slot { ptr: ptr as usize, size: layout.size(), align: layout.align(), age: 0 };
        while let Some(out) = self.keep(block) {
            // SAFETY: every block came from `System` with the size and alignment it was kept with.
            unsafe { System.dealloc(out.ptr as *mut u8, Layout::from_size_align_unchecked(out.size, out.align)) };
            if out.ptr == block.ptr {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_block_serves_the_next_request_of_its_size_and_the_cap_holds() {
        let cache = BlockCache::new();
        let layout = Layout::from_size_align(CACHED_FROM, 64).unwrap();
        // Disabled: blocks go straight back.
        unsafe {
            let a = cache.alloc(layout);
            cache.dealloc(a, layout);
        }
        assert_eq!(cache.locked(|_, held| *held), 0);
        cache.enable(3 * CACHED_FROM);
        unsafe {
            let a = cache.alloc_zeroed(layout);
            a.write_bytes(7, layout.size());
            cache.dealloc(a, layout);
            assert_eq!(cache.locked(|_, held| *held), CACHED_FROM);
            let b = cache.alloc_zeroed(layout);
            assert_eq!(a, b, "the cached block is reused");
            assert!((0..layout.size()).step_by(4099).all(|i| *b.add(i) == 0), "and zeroed");
            // Another size is not served from it.
            let other = Layout::from_size_align(CACHED_FROM + 4096, 64).unwrap();
            let c = cache.alloc(other);
            assert_ne!(c, b);
            let blocks: Vec<*mut u8> = (0..4).map(|_| cache.alloc(layout)).collect();
            cache.dealloc(b, layout);
            cache.dealloc(c, other);
            for p in blocks {
                cache.dealloc(p, layout);
            }
            assert!(cache.locked(|_, held| *held) <= 3 * CACHED_FROM, "the cap holds");
            assert!(cache.locked(|_, held| *held) > 0);
            // Growing keeps the contents, through the system's realloc for small blocks and
            // through the cache for large ones.
            let small = Layout::from_size_align(100, 8).unwrap();
            let p = cache.alloc(small);
            p.write_bytes(9, 100);
            let p = cache.realloc(p, small, 4000);
            let p = cache.realloc(p, Layout::from_size_align(4000, 8).unwrap(), CACHED_FROM);
            assert!((0..100).all(|i| *p.add(i) == 9));
            cache.dealloc(p, Layout::from_size_align(CACHED_FROM, 8).unwrap());
            cache.release();
            assert_eq!(cache.locked(|_, held| *held), 0, "released");
            let d = cache.alloc(layout);
            cache.dealloc(d, layout);
            assert_eq!(cache.locked(|_, held| *held), CACHED_FROM, "still caching after a release");
            cache.release();
        }
    }
}
