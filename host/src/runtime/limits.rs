//! The memory cap of a driver instance, with an error that says which limit
//! was hit (wasmtime's own `StoreLimits` only makes the growth fail).

use wasmtime::ResourceLimiter;

/// A driver tried to grow its memory past the cap.
#[derive(Debug, thiserror::Error)]
#[error("driver exceeded its memory limit of {limit_mib} MiB (it asked for {desired_mib} MiB)")]
pub struct MemoryLimitExceeded {
    pub limit_mib: u64,
    pub desired_mib: u64,
}

/// Caps the linear memory of every instance in one store.
#[derive(Debug, Clone, Copy)]
pub struct MemoryLimiter {
    limit_bytes: usize,
}

impl MemoryLimiter {
    pub fn new(limit_bytes: usize) -> Self {
        MemoryLimiter { limit_bytes }
    }
}

const MIB: usize = 1024 * 1024;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit_bytes {
            // An error, not `Ok(false)`: the guest would otherwise see a
            // failed `memory.grow` and abort with a vaguer trap.
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit_mib: (self.limit_bytes / MIB) as u64,
                desired_mib: desired.div_ceil(MIB) as u64,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables cost a pointer per element; hold them to the same budget.
        Ok(desired.saturating_mul(std::mem::size_of::<usize>()) <= self.limit_bytes)
    }
}
