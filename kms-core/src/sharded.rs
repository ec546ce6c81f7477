//! Per-thread slots for hot counters: a counter written by many threads at once without a
//! shared cache line and, for most threads, without a locked read-modify-write.
//!
//! A plain `AtomicU64` shared by every thread costs little alone, but with two cores
//! incrementing it the line ping-pongs between them on every call, and each `fetch_add` is a
//! locked instruction (several nanoseconds even uncontended). Here a value is split into
//! [`SLOTS`] cache-line-aligned slots ([`PerSlot`]), summed by readers, and every thread
//! writes into the slot of its [`Slot`] lease:
//!
//! - **Owned slots.** On first use a thread takes a free index below [`SHARED_SLOT`] from a
//!   process-wide free list and keeps it until it exits, when a thread-local destructor
//!   returns it. While it holds the lease it is the only thread writing that index in *every*
//!   sharded value of the process, so [`Slot::add`] is a relaxed load and store (no locked
//!   instruction) and still exact.
//! - **The shared slot.** Threads beyond the [`SHARED_SLOT`] owned ones, and a thread
//!   recording while its thread-locals are being torn down, get [`SHARED_SLOT`], which nobody
//!   owns and everybody updates with `fetch_add`: slower, equally exact.
//!
//! [`ShardedCounter`] is the ready-made counter; [`PerSlot`] and [`Slot::add`] build other
//! sharded values (a histogram keeps its buckets and sum in a `PerSlot<Buckets>`).
//!
//! ```
//! use kms_core::sharded::ShardedCounter;
//!
//! let hits = ShardedCounter::new();
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| (0..1000).for_each(|_| hits.inc()));
//!     }
//! });
//! assert_eq!(hits.get(), 4000);
//! ```

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Slots per sharded value: [`SHARED_SLOT`] owned ones, then the shared one.
pub const SLOTS: usize = 32;

/// The index of the slot no thread owns: threads without a lease of their own write here with
/// a locked `fetch_add`.
pub const SHARED_SLOT: usize = SLOTS - 1;

/// Bit `i` set: owned index `i` is leased to a live thread. Bits at and above
/// [`SHARED_SLOT`] are never set.
static LEASED: AtomicU32 = AtomicU32::new(0);

// A power of two, so that indexing masks instead of bounds-checking; every owned index fits
// the bitmap.
const _: () = assert!(SLOTS.is_power_of_two() && SHARED_SLOT <= u32::BITS as usize);

/// This thread's lease: an index below [`SHARED_SLOT`], [`SHARED_SLOT`] when none was free,
/// or `NONE` before first use.
struct Lease(Cell<usize>);

const NONE: usize = usize::MAX;

impl Drop for Lease {
    fn drop(&mut self) {
        let index = self.0.get();
        if index < SHARED_SLOT {
            // Release: everything this thread stored into its slots happens-before the
            // acquiring `compare_exchange` in `take` of whichever thread leases the index next
            // (every later access to `LEASED` is a read-modify-write, so the release sequence
            // is not broken). That thread's first relaxed load of a slot therefore sees this
            // thread's last store, and its load-plus-store increments stay exact.
            LEASED.fetch_and(!(1 << index), Ordering::Release);
        }
    }
}

thread_local! {
    static LEASE: Lease = const { Lease(Cell::new(NONE)) };
}

/// Takes the lowest free owned index, or [`SHARED_SLOT`] if all are leased.
#[cold]
fn take() -> usize {
    let mut leased = LEASED.load(Ordering::Relaxed);
    loop {
        let index = leased.trailing_ones() as usize;
        if index >= SHARED_SLOT {
            return SHARED_SLOT;
        }
        // Acquire: pairs with the release in `Lease::drop` of the index's previous owner.
        match LEASED.compare_exchange_weak(
            leased,
            leased | (1 << index),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return index,
            Err(now) => leased = now,
        }
    }
}

/// A thread's slot in every sharded value: owned (only this thread writes it) or the shared
/// one. Get it with [`Slot::current`].
///
/// It is neither `Send` nor `Sync`: an owned index is only exclusive on the thread that leased
/// it, so it must not be carried to another thread (nor across an `.await` in a `Send`
/// future). Take it, use it, drop it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    index: usize,
    not_send: PhantomData<*const ()>,
}

impl Slot {
    /// This thread's slot, leased on first use; [`SHARED_SLOT`] when every owned index is
    /// leased or this thread's thread-locals are being destroyed.
    #[inline]
    pub fn current() -> Self {
        let index = LEASE
            .try_with(|lease| match lease.0.get() {
                NONE => {
                    let index = take();
                    lease.0.set(index);
                    index
                }
                index => index,
            })
            .unwrap_or(SHARED_SLOT);
        Self {
            index,
            not_send: PhantomData,
        }
    }

    /// The slot index, below [`SLOTS`].
    #[inline]
    pub fn index(self) -> usize {
        self.index
    }

    /// Whether this thread is the only writer of the slot (it is not [`SHARED_SLOT`]).
    #[inline]
    pub fn is_owned(self) -> bool {
        self.index != SHARED_SLOT
    }

    /// Adds `n` to `cell`, this slot's cell of some sharded value: a relaxed load and store in
    /// an owned slot, a relaxed `fetch_add` in the shared one. Wraps on overflow.
    #[inline]
    pub fn add(self, cell: &AtomicU64, n: u64) {
        if self.is_owned() {
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        } else {
            cell.fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("index", &self.index)
            .field("owned", &self.is_owned())
            .finish()
    }
}

/// A value on its own cache lines (128 bytes: adjacent-line prefetch pairs 64-byte lines).
#[derive(Default, Debug)]
#[repr(align(128))]
pub struct Padded<T>(pub T);

/// One `T` per slot, each on its own cache lines; a thread writes the one of its [`Slot`]
/// (with [`Slot::add`]) and readers visit them all. Put it behind an `Arc` or `Box`: it holds
/// [`SLOTS`] padded values inline.
pub struct PerSlot<T> {
    slots: [Padded<T>; SLOTS],
}

impl<T: Default> Default for PerSlot<T> {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| Padded::default()),
        }
    }
}

impl<T> PerSlot<T> {
    /// The value of `slot`.
    #[inline]
    pub fn get(&self, slot: Slot) -> &T {
        // `index < SLOTS` always; the mask lets the compiler see it.
        &self.slots[slot.index % SLOTS].0
    }

    /// Every slot's value, in index order, for readers to sum.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|p| &p.0)
    }
}

impl<T> fmt::Debug for PerSlot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerSlot").finish_non_exhaustive()
    }
}

/// A monotonic `u64` counter, sharded per thread: [`inc`](Self::inc) and [`add`](Self::add)
/// touch only this thread's slot (no locked instruction while it owns one),
/// [`get`](Self::get) sums the slots. Wraps on overflow.
#[derive(Default)]
pub struct ShardedCounter {
    cells: PerSlot<AtomicU64>,
}

impl ShardedCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.inc_in(Slot::current());
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        let slot = Slot::current();
        slot.add(self.cells.get(slot), n);
    }

    /// Adds one in `slot`, for a caller that updates several sharded values per event and
    /// takes [`Slot::current`] once.
    #[inline]
    pub fn inc_in(&self, slot: Slot) {
        slot.add(self.cells.get(slot), 1);
    }

    /// The total over every slot. Increments made concurrently may or may not be counted;
    /// increments that happened-before this call are.
    pub fn get(&self) -> u64 {
        self.cells
            .iter()
            .fold(0u64, |sum, c| sum.wrapping_add(c.load(Ordering::Relaxed)))
    }
}

impl fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ShardedCounter").field(&self.get()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    /// The owned indices currently leased.
    fn leased() -> u32 {
        LEASED.load(Ordering::Acquire)
    }

    #[test]
    fn a_thread_keeps_its_slot_and_owns_it() {
        let (a, b) = (Slot::current(), Slot::current());
        assert_eq!(a, b);
        assert!(a.index() < SLOTS);
        if a.is_owned() {
            assert_ne!(leased() & (1 << a.index()), 0);
        }
        assert_eq!(std::mem::align_of::<Padded<AtomicU64>>(), 128);
    }

    #[test]
    fn exact_with_more_threads_than_slots_and_threads_coming_and_going() {
        let counter = Arc::new(ShardedCounter::new());
        let threads = 2 * SLOTS;
        // Every thread of a wave is alive at once, so the later ones find no free owned index
        // and share SHARED_SLOT; the next wave reuses the indices the first one freed.
        for _wave in 0..3 {
            let barrier = Arc::new(Barrier::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (counter, barrier) = (counter.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        let slot = Slot::current();
                        for _ in 0..10_000 {
                            counter.inc();
                        }
                        counter.add(t as u64);
                        barrier.wait();
                        (slot.index(), slot.is_owned())
                    })
                })
                .collect();
            let slots: Vec<(usize, bool)> =
                handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert!(
                slots.iter().any(|&(i, owned)| !owned && i == SHARED_SLOT),
                "some of {threads} live threads share"
            );
            let mut owned: Vec<usize> = slots.iter().filter(|s| s.1).map(|s| s.0).collect();
            let n = owned.len();
            assert!(n > 0);
            owned.sort_unstable();
            owned.dedup();
            assert_eq!(owned.len(), n, "an owned index was leased twice at once");
        }
        let per_wave = threads as u64 * 10_000 + (0..threads as u64).sum::<u64>();
        assert_eq!(counter.get(), 3 * per_wave);
        assert!(counter.cells.slots[SHARED_SLOT].0.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn an_index_freed_at_thread_exit_is_leased_again() {
        let (index, still_leased) = std::thread::spawn(|| {
            let i = Slot::current().index();
            (i, i < SHARED_SLOT && leased() & (1 << i) != 0)
        })
        .join()
        .unwrap();
        if index == SHARED_SLOT {
            // Every owned index is taken by threads of other tests: nothing to observe here.
            return;
        }
        assert!(still_leased, "index {index} not marked leased while in use");
        // Other tests run threads concurrently and may take the index in between, so look
        // for it to come back over a number of short-lived threads.
        let reused = (0..1000).any(|_| {
            std::thread::spawn(move || Slot::current().index())
                .join()
                .unwrap()
                == index
        });
        assert!(reused, "index {index} never came back");
    }

    #[test]
    fn recording_during_thread_local_teardown_falls_back_to_the_shared_slot() {
        struct RecordsOnDrop(Arc<ShardedCounter>);
        impl Drop for RecordsOnDrop {
            fn drop(&mut self) {
                self.0.inc();
            }
        }
        thread_local! {
            static LATE: Cell<Option<RecordsOnDrop>> = const { Cell::new(None) };
        }
        let counter = Arc::new(ShardedCounter::new());
        let c = counter.clone();
        std::thread::spawn(move || {
            // LATE is registered before LEASE, and thread-local destructors run in reverse
            // order of registration: LEASE is gone when LATE's value records.
            LATE.with(|l| l.set(Some(RecordsOnDrop(c.clone()))));
            c.inc();
        })
        .join()
        .unwrap();
        assert_eq!(counter.get(), 2);
        assert!(counter.cells.slots[SHARED_SLOT].0.load(Ordering::Relaxed) >= 1);
    }
}
