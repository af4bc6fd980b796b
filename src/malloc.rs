//! How the process uses glibc's allocator, so that its resident memory follows what the render
//! memory budget ([`crate::query::MemoryBudget`]) counts. By default glibc gives each thread
//! that allocates its own arena (up to 8 per core) and keeps freed memory resident in it: a
//! render that ran on one blocking thread leaves its freed series in that arena while the next
//! render, on another thread, takes fresh pages, and the high-water mark climbs to several
//! budgets' worth. Two arenas, and trimming after a large render, keep it near one.
//!
//! Elsewhere than glibc (musl, other systems) both calls do nothing.

/// Arenas the process may use (glibc's `M_ARENA_MAX`): 2, enough for the two cores this is
/// sized for without lock contention becoming the bound. An operator's own `MALLOC_ARENA_MAX`
/// in the environment wins (glibc reads it itself). Call once, at start, before threads.
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists, and an unsupported parameter is reported by its return value, not undefined.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands memory the allocator holds free back to the system (glibc's `malloc_trim`): after a
/// render that held many megabytes, so the next one does not add to a high-water mark.
pub fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own arenas; it is
    // thread-safe and takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}
