//! Runtime CPU-feature dispatch for the kernels' own loops. The crate is built for baseline
//! x86-64 (SSE2) so the binary runs anywhere; a kernel body marked `#[inline(always)]` and run
//! through [`run`] is compiled a second time with AVX2 and FMA enabled, and that copy runs
//! where the CPU has them (gemm does the same for its own kernels).

/// Runs `body`, compiled for AVX2 + FMA where this CPU has them.
#[inline(always)]
pub fn run<R>(body: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features `avx2_fma` is compiled with were just detected.
            return unsafe { avx2_fma(body) };
        }
    }
    body()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_fma<R>(body: impl FnOnce() -> R) -> R {
    body()
}
