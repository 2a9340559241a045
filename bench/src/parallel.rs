//! Work spread over the machine's cores: a parallel map that keeps order, on scoped threads (no pool to set up,
//! nothing to tear down).

use std::sync::atomic::{AtomicUsize, Ordering};

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// [`map`] when `worth_it` (work enough to pay for the threads), else on the calling thread.
pub fn map_if<'a, T: Sync, R: Send>(worth_it: bool, items: &'a [T], f: impl Fn(&'a T) -> R + Sync) -> Vec<R> {
    if worth_it {
        map(items, f)
    } else {
        items.iter().map(f).collect()
    }
}

/// Maps `f` over `items` on all available cores, keeping order; on the calling thread when one would do.
pub fn map<'a, T: Sync, R: Send>(items: &'a [T], f: impl Fn(&'a T) -> R + Sync) -> Vec<R> {
    let threads = cores().min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let results = std::sync::Mutex::new(&mut slots);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                // A thread that panicked poisons the lock but cannot leave a slot half-written: take it anyway
                // (the panic itself reaches the caller when the scope ends).
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_and_every_item() {
        let items: Vec<u64> = (0..1000).collect();
        assert_eq!(super::map(&items, |x| x * 2), items.iter().map(|x| x * 2).collect::<Vec<_>>());
        assert_eq!(super::map(&[] as &[u64], |x| *x), Vec::<u64>::new());
    }
}
