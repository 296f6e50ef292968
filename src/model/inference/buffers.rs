//! Feature-map buffers reused from one layer (and one photo) to the next.
//!
//! A fresh multi-megabyte allocation is fresh pages from the OS: at full resolution the first
//! touch of every 4 KiB page (a fault and the kernel zeroing it) cost as much as the
//! convolution itself (measured: ~3 ms of a 2.4 ms layer's 5 ms at 512×384×16). Dropped maps
//! give their buffer back here and the next map of at most that size takes it, already paged
//! in. What is kept is bounded, so a huge photo does not pin its memory afterwards.

use std::sync::Mutex;

/// At most this many floats (256 MiB) stay pooled.
const KEPT_FLOATS: usize = 64 << 20;
const KEPT_BUFFERS: usize = 16;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of `len` floats with unspecified (initialised) contents: the caller overwrites all.
pub fn take(len: usize) -> Vec<f32> {
    let reused = {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        // The smallest that fits, so big buffers stay for big maps.
        let best = pool.iter().enumerate().filter(|(_, b)| b.capacity() >= len).min_by_key(|(_, b)| b.capacity());
        best.map(|(i, _)| i).map(|i| pool.swap_remove(i))
    };
    match reused {
        Some(mut buffer) => {
            // Within capacity: truncating writes nothing, growing zeroes only the new tail.
            buffer.resize(len, 0.0);
            buffer
        }
        None => vec![0.0; len],
    }
}

/// Returns a buffer for later maps (dropped instead when the pool is full).
pub fn give(buffer: Vec<f32>) {
    if buffer.capacity() == 0 || buffer.capacity() > KEPT_FLOATS {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    pool.push(buffer);
    pool.sort_by_key(|b| std::cmp::Reverse(b.capacity()));
    let mut kept = 0;
    let keep = pool
        .iter()
        .take_while(|b| {
            kept += b.capacity();
            kept <= KEPT_FLOATS
        })
        .count()
        .min(KEPT_BUFFERS);
    pool.truncate(keep);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_is_taken_again_and_the_pool_stays_bounded() {
        let mut b = take(1000);
        b[999] = 7.0;
        let ptr = b.as_ptr();
        give(b);
        let again = take(900);
        assert_eq!(again.len(), 900);
        // Other tests share the pool: the buffer may have gone to one of them.
        if again.as_ptr() == ptr {
            assert!(again.capacity() >= 1000);
        }
        give(again);
        for _ in 0..3 * KEPT_BUFFERS {
            give(vec![0.0; 10]);
        }
        let pool = POOL.lock().unwrap();
        assert!(pool.len() <= KEPT_BUFFERS);
        assert!(pool.iter().map(Vec::capacity).sum::<usize>() <= KEPT_FLOATS);
    }
}
