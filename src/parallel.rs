//! Work spread over the machine's cores with results in input order, so that a parallel stage
//! (parsing manifest files, compiling the catalog's CEL) gives exactly what the serial one gave.

/// `f` of each item, in `items`' order, on up to as many threads as there are cores (at most 8)
/// and no more than give each thread `per_thread` items ([`threads_for`]). Each thread takes the
/// next item not yet taken (one atomic counter): items cost what they cost, and dealing them out
/// in turn left one thread waiting for the other.
pub fn map_in_order<T: Sync, R: Send>(
    items: &[T],
    per_thread: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads_for(items.len(), per_thread);
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let share = || -> Vec<(usize, R)> {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    // The calling thread takes a share too: one thread fewer to start (and to give a malloc
    // arena), which a run that loads only the catalog notices.
    let parts: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads).map(|_| scope.spawn(share)).collect();
        let mut parts = vec![share()];
        parts.extend(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))),
        );
        parts
    });
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    for (i, r) in parts.into_iter().flatten() {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .map(|r| r.expect("every item was taken by one thread"))
        .collect()
}

/// The threads worth starting for `units` of work when a thread needs at least `per_thread` of
/// them to gain more than it costs: at least 1, at most [`threads`]. A thread is not free: on
/// Linux it brings a stack, a malloc arena that glibc grows a page range at a time (an
/// `mprotect` each, a one-file audit made 317) and page faults that wait on the process's
/// address-space lock with the other threads'. Measured on a one-file audit (issue 12, target
/// 4), the five threads it started cost more wall time than they saved and 40 % more CPU.
pub fn threads_for(units: usize, per_thread: usize) -> usize {
    threads().min(units / per_thread.max(1)).max(1)
}

/// The machine's cores (its CPU quota in a container), at most 8: the threads a parallel stage
/// uses. Read once: `available_parallelism` reads the cgroup's quota from /proc and /sys at every
/// call, and a one-file audit asked five times.
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .clamp(1, 8)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_the_input_order() {
        for n in [0, 1, 2, 3, 17, 1000] {
            let items: Vec<usize> = (0..n).collect();
            for per_thread in [1, 4, usize::MAX] {
                let out = super::map_in_order(&items, per_thread, |i| i * 2);
                assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn a_thread_is_started_only_for_its_share_of_work() {
        assert_eq!(super::threads_for(0, 64), 1);
        assert_eq!(super::threads_for(63, 64), 1);
        assert_eq!(super::threads_for(10_000, 0), super::threads());
        assert_eq!(
            super::threads_for(64 * 100, 64),
            super::threads(),
            "enough work for every core"
        );
    }
}
