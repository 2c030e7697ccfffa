//! Work spread over the machine's cores with results in input order, so that a parallel stage
//! (parsing manifest files, compiling the catalog's CEL) gives exactly what the serial one gave.

/// `f` of each item, on up to as many threads as there are cores (at most 8), in `items`' order.
/// Items are dealt round-robin: neighbours (files of one directory, checks of one section) cost
/// about the same, so each thread gets a similar share without a work queue.
pub fn map_in_order<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads().min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    let share =
        move |t: usize| -> Vec<R> { items.iter().skip(t).step_by(threads).map(f).collect() };
    // The calling thread takes the first share: one thread fewer to start (and to give a malloc
    // arena), which a run that loads only the catalog notices.
    let parts: Vec<Vec<R>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads)
            .map(|t| scope.spawn(move || share(t)))
            .collect();
        let mut parts = vec![share(0)];
        parts.extend(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))),
        );
        parts
    });
    // Item i is the (i / threads)-th result of thread i % threads.
    let mut parts: Vec<std::vec::IntoIter<R>> = parts.into_iter().map(Vec::into_iter).collect();
    (0..items.len())
        .map(|i| {
            parts[i % threads]
                .next()
                .expect("each thread returns one result per item it was dealt")
        })
        .collect()
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
            let out = super::map_in_order(&items, |i| i * 2);
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
